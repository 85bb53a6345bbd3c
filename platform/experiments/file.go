package experiments

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// experiment is one compiled experiment: values decoded once, conditions
// compiled once, so evaluation only compares strings and hashes.
type experiment struct {
	clauses    []clause
	def        any
	hasDefault bool
	raw        *yaml.Node // as loaded, for Status
}

type clause struct {
	cond  cond
	value any
}

// evaluate returns the value of the first clause that holds, else the
// default; false when there is neither.
func (e *experiment) evaluate(kw *Kwargs) (any, bool) {
	for i := range e.clauses {
		if e.clauses[i].cond.holds(kw) {
			return e.clauses[i].value, true
		}
	}
	return e.def, e.hasDefault
}

// maxFileSize bounds what is read: the real file is a few kilobytes, and a
// huge one is a mistake that should not eat memory twice a second.
const maxFileSize = 4 << 20

// ValidateFile checks the file at path against defs exactly as the Store
// would load it, without starting anything (the `experiments validate FILE`
// subcommand, for CI of the config repository).
func ValidateFile(path string, defs []Definition) error {
	byName, err := checkDefinitions(defs)
	if err != nil {
		return err
	}
	_, data, err := readFile(path)
	if err != nil {
		return err
	}
	_, unknown, err := compile(data, byName)
	if err == nil && len(unknown) > 0 {
		// Strict here, lenient in the service: the CLI is where a typo
		// in a name should stop a change.
		err = unknownError(unknown, byName)
	}
	if err != nil {
		return &fileError{path: path, err: err}
	}
	return nil
}

// unknownError names every experiment no module defines.
func unknownError(unknown []string, defs map[string]Definition) error {
	known := slices.Sorted(maps.Keys(defs))
	errs := make([]error, 0, len(unknown))
	for _, name := range unknown {
		if len(known) == 0 {
			errs = append(errs, fmt.Errorf("experiment %s: unknown experiment (this service defines none)", name))
			continue
		}
		errs = append(errs, fmt.Errorf("experiment %s: unknown experiment (known: %s)", name, strings.Join(known, ", ")))
	}
	return errors.Join(errs...)
}

// fileError prefixes each line of a file's error (one per experiment) with
// the file's path, like a compiler's output.
type fileError struct {
	path string
	err  error
}

func (e *fileError) Error() string {
	lines := strings.Split(e.err.Error(), "\n")
	for i, l := range lines {
		lines[i] = e.path + ": " + l
	}
	return strings.Join(lines, "\n")
}

func (e *fileError) Unwrap() error { return e.err }

// readFile reads the file and what identifies this version of it. The stat
// comes from the opened file, so it describes the bytes read even if the
// path is swapped meanwhile.
func readFile(path string) (observation, []byte, error) {
	f, err := os.Open(path) //nolint:gosec // G304: the path is the operator's EXPERIMENTS_FILE, not request input
	if err != nil {
		return observation{}, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return observation{}, nil, err
	}
	if info.IsDir() {
		return observation{}, nil, fmt.Errorf("%s: is a directory", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return observation{}, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return observation{}, nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	return observation{info: info, readAt: time.Now(), hash: sha256.Sum256(data)}, data, nil
}

// compile parses and checks a whole file. It returns every experiment's
// first error, so one run of the validator shows them all, and the names of
// experiments no module defines: the service ignores those (a file may name
// an experiment for a newer version before every replica runs it), the
// validator refuses them.
func compile(data []byte, defs map[string]Definition) (map[string]*experiment, []string, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, err // yaml.v3 says "yaml: line N: ..."
	}
	if len(doc.Content) == 0 {
		// Refused rather than read as "no experiments": an empty file is
		// far more often a truncated write than an intent to turn all off.
		return nil, nil, errors.New("the file is empty (want a mapping with the key experiments; write experiments: {} for none)")
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("line %d: more than one YAML document", extra.Line)
	}
	if err := rejectAliases(&doc); err != nil {
		return nil, nil, err
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("the file must be a mapping with the key experiments (got %s)", describe(root))
	}
	top, err := mappingPairs(root, "")
	if err != nil {
		return nil, nil, err
	}
	var list *yaml.Node
	for _, p := range top {
		if p.key != "experiments" {
			return nil, nil, fmt.Errorf("line %d: unknown top-level key %q (want experiments)", p.keyAt.Line, p.key)
		}
		list = p.value
	}
	if list == nil {
		return nil, nil, errors.New("missing the top-level key experiments")
	}
	if list.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("experiments: must be a mapping of experiment names to experiments (got %s)", describe(list))
	}
	pairs, err := mappingPairs(list, "experiments")
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]*experiment, len(pairs))
	var errs []error
	var unknown []string
	for _, p := range pairs {
		if _, ok := defs[p.key]; !ok {
			unknown = append(unknown, p.key)
			continue
		}
		e, err := compileExperiment(p.key, p.value, defs)
		if err != nil {
			errs = append(errs, fmt.Errorf("experiment %s: %w", p.key, err))
			continue
		}
		out[p.key] = e
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return out, unknown, nil
}

func compileExperiment(name string, n *yaml.Node, defs map[string]Definition) (*experiment, error) {
	def := defs[name] // compile passes only defined names
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("must be a mapping with default and/or clauses (got %s)", describe(n))
	}
	pairs, err := mappingPairs(n, "")
	if err != nil {
		return nil, err
	}
	e := &experiment{raw: n}
	for _, p := range pairs {
		switch p.key {
		case "default":
			v, err := def.decode(p.value)
			if err != nil {
				return nil, fmt.Errorf("default: %w", err)
			}
			e.def, e.hasDefault = v, true
		case "clauses":
			if e.clauses, err = compileClauses(def, p.value); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("unknown field %q (want default or clauses)", p.key)
		}
	}
	return e, nil
}

func compileClauses(def Definition, n *yaml.Node) ([]clause, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("clauses: must be a list (got %s)", describe(n))
	}
	clauses := make([]clause, 0, len(n.Content))
	names := make(map[string]string, len(n.Content)) // clause name -> label of its first use
	for i, item := range n.Content {
		label := "clauses[" + strconv.Itoa(i) + "]"
		if item.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: must be a mapping with name, if and value (got %s)", label, describe(item))
		}
		pairs, err := mappingPairs(item, label)
		if err != nil {
			return nil, err
		}
		var nameNode, ifNode, valueNode *yaml.Node
		var unknown *pair
		for _, p := range pairs {
			switch p.key {
			case "name":
				nameNode = p.value
			case "if":
				ifNode = p.value
			case "value":
				valueNode = p.value
			default:
				if unknown == nil {
					unknown = &p
				}
			}
		}
		if nameNode != nil {
			if nameNode.Kind != yaml.ScalarNode || isNull(nameNode) || nameNode.Value == "" {
				return nil, fmt.Errorf("%s: name: must be a non-empty string (got %s)", label, describe(nameNode))
			}
			if first, dup := names[nameNode.Value]; dup {
				return nil, fmt.Errorf("%s: name: duplicate %q (also %s)", label, nameNode.Value, first)
			}
			names[nameNode.Value] = label
			// Named clauses are named in errors: indexes shift on edits.
			label = "clause " + strconv.Quote(nameNode.Value)
		}
		if unknown != nil {
			return nil, fmt.Errorf("%s: unknown field %q (want name, if and value)", label, unknown.key)
		}
		if ifNode == nil {
			return nil, fmt.Errorf("%s: if: required field is missing", label)
		}
		if valueNode == nil {
			return nil, fmt.Errorf("%s: value: required field is missing", label)
		}
		c, err := compileIf(ifNode, "if")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		v, err := def.decode(valueNode)
		if err != nil {
			return nil, fmt.Errorf("%s: value: %w", label, err)
		}
		clauses = append(clauses, clause{cond: c, value: v})
	}
	return clauses, nil
}

// Command is `experiments validate FILE`: the check the config repository's
// CI runs before a file reaches any replica. It reads no environment: the
// file is checked against defs, the experiments this version defines,
// whatever the rest of the config says.
func Command(args []string, defs []Definition, stdout io.Writer) error {
	if len(args) != 2 || args[0] != "validate" {
		return errors.New("usage: experiments validate FILE")
	}
	if err := ValidateFile(args[1], defs); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (%d experiments known)\n", args[1], len(defs))
	return nil
}
