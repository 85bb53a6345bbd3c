package experiments

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// YAML core-schema tags, as yaml.Node.ShortTag reports them.
const (
	strTag   = "!!str"
	intTag   = "!!int"
	floatTag = "!!float"
	boolTag  = "!!bool"
	nullTag  = "!!null"
	mergeTag = "!!merge"
)

// errAt builds the error "PATH: MESSAGE"; with an empty path just MESSAGE.
// Callers prefix outer paths the same way, so a message reads from the
// experiment down to the field.
func errAt(path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path == "" {
		return errors.New(msg)
	}
	return errors.New(path + ": " + msg)
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// describe shows a node in an error's "(got ...)".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case nullTag:
			return "null"
		case strTag:
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return "nothing"
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == nullTag }

// pair is one key: value entry of a mapping node.
type pair struct {
	key   string
	keyAt *yaml.Node
	value *yaml.Node
}

// mappingPairs lists a mapping's entries in file order. yaml.v3 keeps
// duplicate keys in a Node (it only rejects them when decoding into Go
// values), so they are refused here: the second one would silently win.
func mappingPairs(n *yaml.Node, path string) ([]pair, error) {
	pairs := make([]pair, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, errAt(path, "keys must be scalars (got %s)", describe(k))
		}
		if k.ShortTag() == mergeTag {
			return nil, errAt(path, "merge keys (<<) are not supported")
		}
		for _, p := range pairs {
			if p.key == k.Value {
				return nil, errAt(path, "duplicate key %q (lines %d and %d)", k.Value, p.keyAt.Line, k.Line)
			}
		}
		pairs = append(pairs, pair{key: k.Value, keyAt: k, value: v})
	}
	return pairs, nil
}

// rejectAliases refuses anchors' aliases anywhere in the tree: they would
// make the strict check and the status tree follow shared (possibly
// exponentially repeated) subtrees, for little gain in a small file.
func rejectAliases(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		return fmt.Errorf("line %d: YAML aliases (*%s) are not supported", n.Line, n.Value)
	}
	for _, c := range n.Content {
		if err := rejectAliases(c); err != nil {
			return err
		}
	}
	return nil
}

var (
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
)

func implements(t, iface reflect.Type) bool {
	return t.Implements(iface) || reflect.PointerTo(t).Implements(iface)
}

// decodeStrict decodes n into a new T. yaml.v3 alone is lax in ways that
// matter for a config operators edit by hand: it truncates 1.5 into an int,
// reads "yes" as true, leaves missing fields at their zero value and ignores
// unknown ones inside a Node. So the tree is first checked against T: scalars
// must have the YAML type of the Go field, struct fields are required unless
// they are pointers or tagged omitempty, and unknown fields are errors.
// Types implementing yaml.Unmarshaler are left to their own method.
func decodeStrict[T any](n *yaml.Node) (T, error) {
	var v T
	if err := checkStrict(reflect.TypeFor[T](), n, ""); err != nil {
		return v, err
	}
	if err := n.Decode(&v); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return v, errors.New(strings.Join(te.Errors, "; "))
		}
		return v, err
	}
	return v, nil
}

// checkStrict reports the first place where n does not fit Go type t.
func checkStrict(t reflect.Type, n *yaml.Node, path string) error {
	if implements(t, yamlUnmarshalerType) {
		return nil
	}
	if isNull(n) {
		switch t.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Slice, reflect.Map:
			return nil
		}
		return errAt(path, "must be %s (got null)", want(t))
	}
	if t.Kind() == reflect.Pointer {
		return checkStrict(t.Elem(), n, path)
	}
	mismatch := func() error { return errAt(path, "must be %s (got %s)", want(t), describe(n)) }
	if implements(t, textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			return mismatch()
		}
		return nil
	}
	tag := n.ShortTag()
	switch t.Kind() {
	case reflect.Interface:
		return nil
	case reflect.Bool:
		if tag != boolTag {
			return mismatch()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if t == durationType && tag == strTag {
			return nil
		}
		if tag != intTag {
			return mismatch()
		}
		return checkRange(t, n, path)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if tag != intTag {
			return mismatch()
		}
		return checkRange(t, n, path)
	case reflect.Float32, reflect.Float64:
		if tag != intTag && tag != floatTag {
			return mismatch()
		}
	case reflect.String:
		// Any scalar, as written: `language: no` or `id: 0042` stay strings.
		if n.Kind != yaml.ScalarNode {
			return mismatch()
		}
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return mismatch()
		}
		for i, c := range n.Content {
			if err := checkStrict(t.Elem(), c, indexPath(path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return mismatch()
		}
		pairs, err := mappingPairs(n, path)
		if err != nil {
			return err
		}
		for _, p := range pairs {
			if err := checkStrict(t.Key(), p.keyAt, path); err != nil {
				return err
			}
			if err := checkStrict(t.Elem(), p.value, joinPath(path, p.key)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return mismatch()
		}
		return checkStruct(t, n, path)
	default:
		return errAt(path, "Go type %s cannot be decoded from YAML", t)
	}
	return nil
}

// checkRange reports an integer that does not fit t. yaml.v3's own error
// for it ("line 3: cannot unmarshal !!int `9223372...` into int") names
// neither the field nor the limit.
func checkRange(t reflect.Type, n *yaml.Node, path string) error {
	if err := n.Decode(reflect.New(t).Interface()); err == nil {
		return nil
	}
	maxU := ^uint64(0) >> (64 - t.Bits())
	if t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64 {
		return errAt(path, "must be an integer within 0..%d (got %s)", maxU, describe(n))
	}
	maxI := int64(maxU >> 1)
	return errAt(path, "must be an integer within %d..%d (got %s)", -maxI-1, maxI, describe(n))
}

func checkStruct(t reflect.Type, n *yaml.Node, path string) error {
	pairs, err := mappingPairs(n, path)
	if err != nil {
		return err
	}
	fields, open := yamlFields(t)
	given := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		i := slices.IndexFunc(fields, func(f yamlField) bool { return f.name == p.key })
		if i < 0 {
			if open {
				continue
			}
			return errAt(path, "unknown field %q", p.key)
		}
		given[p.key] = true
		if err := checkStrict(fields[i].typ, p.value, joinPath(path, p.key)); err != nil {
			return err
		}
	}
	for _, f := range fields {
		if f.required && !given[f.name] {
			return errAt(joinPath(path, f.name), "required field is missing")
		}
	}
	return nil
}

// yamlField is a struct field as yaml.v3 maps it.
type yamlField struct {
	name     string
	typ      reflect.Type
	required bool
}

// yamlFields lists t's fields the way yaml.v3 names them (tag, else the
// lowercased Go name); open reports an inline map, which takes any other key.
func yamlFields(t reflect.Type) (fields []yamlField, open bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		flags := strings.Split(opts, ",")
		if slices.Contains(flags, "inline") {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				inner, innerOpen := yamlFields(ft)
				fields = append(fields, inner...)
				open = open || innerOpen
			case reflect.Map:
				open = true
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		required := !slices.Contains(flags, "omitempty") && f.Type.Kind() != reflect.Pointer
		fields = append(fields, yamlField{name: name, typ: f.Type, required: required})
	}
	return fields, open
}

// want names what a Go type needs, for "must be ...".
func want(t reflect.Type) string {
	if implements(t, textUnmarshalerType) {
		return "a scalar"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// toTree turns a checked node into plain Go values (map[string]any, []any,
// scalars) for Status, which is served as JSON.
func toTree(n *yaml.Node) any {
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = toTree(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			s[i] = toTree(c)
		}
		return s
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return n.Value
		}
		if f, ok := v.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
			return n.Value // JSON has no infinities
		}
		return v
	}
	return nil
}
