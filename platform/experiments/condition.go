package experiments

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"

	"gopkg.in/yaml.v3"
)

// op is what a compiled condition does.
type op uint8

const (
	opAll op = iota // every kid holds (an if mapping; no kids: true)
	opAny           // some kid holds
	opNot           // the only kid does not hold
	opEq
	opIn
	opExists
	opPercent
)

// cond is a compiled if. It is one concrete struct rather than an interface
// per operator so evaluation is a switch and the *Kwargs it is given never
// escapes to the heap.
type cond struct {
	op     op
	kwarg  Kwarg
	exists bool                // opExists: the wanted presence
	value  string              // opEq
	values []string            // opIn, for short lists
	set    map[string]struct{} // opIn, for long lists
	prefix string              // opPercent: salt + "."
	from   uint64              // opPercent: bucket range [from, to)
	to     uint64
	kids   []cond
}

// inSetFrom is the length from which in: uses a map; below it a linear scan
// of a few strings is faster than hashing.
const inSetFrom = 8

func (c *cond) holds(kw *Kwargs) bool {
	switch c.op {
	case opAll:
		for i := range c.kids {
			if !c.kids[i].holds(kw) {
				return false
			}
		}
		return true
	case opAny:
		for i := range c.kids {
			if c.kids[i].holds(kw) {
				return true
			}
		}
		return false
	case opNot:
		return !c.kids[0].holds(kw)
	}
	v, ok := kw.get(c.kwarg)
	if c.op == opExists {
		return ok == c.exists
	}
	if !ok {
		return false // an absent kwarg fails every condition but exists: false
	}
	switch c.op {
	case opEq:
		return v == c.value
	case opIn:
		if c.set != nil {
			_, hit := c.set[v]
			return hit
		}
		for _, x := range c.values {
			if x == v {
				return true
			}
		}
		return false
	case opPercent:
		b := bucket(c.prefix, v)
		return b >= c.from && b < c.to
	}
	return false
}

// bucket is the percent bucket of DESIGN §7: the first 8 bytes of
// sha256(salt + "." + value) as a big-endian uint64, mod 100. prefix is
// salt + ".", precomputed at load.
func bucket(prefix, value string) uint64 {
	// A stack buffer keeps the hash input off the heap for any realistic
	// salt and id; longer inputs just make append allocate.
	var buf [128]byte
	in := append(append(buf[:0], prefix...), value...)
	sum := sha256.Sum256(in)
	return binary.BigEndian.Uint64(sum[:8]) % 100
}

const (
	wantIfKeys   = "eater_id, order_nr, place_id, flow_type, language, any or not"
	wantCondKeys = "eq, in, exists or percent"
)

// compileIf compiles an if mapping found at path (e.g. "if.any[1]").
func compileIf(n *yaml.Node, path string) (cond, error) {
	if n.Kind != yaml.MappingNode {
		return cond{}, errAt(path, "must be a mapping of kwargs to conditions (got %s)", describe(n))
	}
	pairs, err := mappingPairs(n, path)
	if err != nil {
		return cond{}, err
	}
	all := cond{op: opAll, kids: make([]cond, 0, len(pairs))}
	for _, p := range pairs {
		at := joinPath(path, p.key)
		switch p.key {
		case "any":
			if p.value.Kind != yaml.SequenceNode {
				return cond{}, errAt(at, "must be a list of ifs (got %s)", describe(p.value))
			}
			// An empty any never holds: its clause would be dead, which is
			// a mistake rather than a way to switch the clause off.
			if len(p.value.Content) == 0 {
				return cond{}, errAt(at, "must list at least one if (an empty any never holds)")
			}
			c := cond{op: opAny, kids: make([]cond, 0, len(p.value.Content))}
			for i, item := range p.value.Content {
				kid, err := compileIf(item, indexPath(at, i))
				if err != nil {
					return cond{}, err
				}
				c.kids = append(c.kids, kid)
			}
			all.kids = append(all.kids, c)
		case "not":
			// not: {} negates an empty if, which always holds.
			if p.value.Kind == yaml.MappingNode && len(p.value.Content) == 0 {
				return cond{}, errAt(at, "must not be empty (not: {} never holds)")
			}
			kid, err := compileIf(p.value, at)
			if err != nil {
				return cond{}, err
			}
			all.kids = append(all.kids, cond{op: opNot, kids: []cond{kid}})
		default:
			kw, ok := kwargByName(p.key)
			if !ok {
				return cond{}, errAt(path, "unknown kwarg %q (want %s)", p.key, wantIfKeys)
			}
			cs, err := compileKwarg(kw, p.value, at)
			if err != nil {
				return cond{}, err
			}
			all.kids = append(all.kids, cs...)
		}
	}
	if len(all.kids) == 1 {
		return all.kids[0], nil // skip a level of the tree for the common case
	}
	return all, nil
}

// compileKwarg compiles the conditions on one kwarg, e.g.
// {percent: {salt: s, from: 0, to: 50}, in: [...]}, all of which must hold.
func compileKwarg(kw Kwarg, n *yaml.Node, path string) ([]cond, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(path, "must be a mapping of conditions, %s (got %s)", wantCondKeys, describe(n))
	}
	pairs, err := mappingPairs(n, path)
	if err != nil {
		return nil, err
	}
	if len(pairs) == 0 {
		return nil, errAt(path, "no condition (want %s)", wantCondKeys)
	}
	cs := make([]cond, 0, len(pairs))
	for _, p := range pairs {
		at := joinPath(path, p.key)
		c := cond{kwarg: kw}
		switch p.key {
		case "eq":
			c.op = opEq
			if c.value, err = scalarString(p.value, at); err != nil {
				return nil, err
			}
		case "in":
			c.op = opIn
			if p.value.Kind != yaml.SequenceNode {
				return nil, errAt(at, "must be a list of values (got %s)", describe(p.value))
			}
			if len(p.value.Content) == 0 {
				return nil, errAt(at, "must list at least one value (an empty in never holds)")
			}
			for i, item := range p.value.Content {
				s, err := scalarString(item, indexPath(at, i))
				if err != nil {
					return nil, err
				}
				c.values = append(c.values, s)
			}
			if len(c.values) >= inSetFrom {
				c.set = make(map[string]struct{}, len(c.values))
				for _, s := range c.values {
					c.set[s] = struct{}{}
				}
			}
		case "exists":
			c.op = opExists
			if p.value.Kind != yaml.ScalarNode || p.value.ShortTag() != boolTag {
				return nil, errAt(at, "must be true or false (got %s)", describe(p.value))
			}
			c.exists = strings.EqualFold(p.value.Value, "true") // true, True or TRUE
		case "percent":
			c.op = opPercent
			if err := compilePercent(&c, p.value, at); err != nil {
				return nil, err
			}
		default:
			return nil, errAt(path, "unknown condition %q (want %s)", p.key, wantCondKeys)
		}
		cs = append(cs, c)
	}
	return cs, nil
}

func compilePercent(c *cond, n *yaml.Node, path string) error {
	if n.Kind != yaml.MappingNode {
		return errAt(path, "must be a mapping {salt, from, to} (got %s)", describe(n))
	}
	pairs, err := mappingPairs(n, path)
	if err != nil {
		return err
	}
	var salt, from, to *yaml.Node
	for _, p := range pairs {
		switch p.key {
		case "salt":
			salt = p.value
		case "from":
			from = p.value
		case "to":
			to = p.value
		default:
			return errAt(path, "unknown field %q (want salt, from and to)", p.key)
		}
	}
	for _, f := range []struct {
		name string
		n    *yaml.Node
	}{{"salt", salt}, {"from", from}, {"to", to}} {
		if f.n == nil {
			return errAt(joinPath(path, f.name), "required field is missing")
		}
	}
	s, err := scalarString(salt, joinPath(path, "salt"))
	if err != nil {
		return err
	}
	if s == "" {
		return errAt(joinPath(path, "salt"), "must not be empty")
	}
	c.prefix = s + "."
	if c.from, err = percentBound(from, joinPath(path, "from")); err != nil {
		return err
	}
	if c.to, err = percentBound(to, joinPath(path, "to")); err != nil {
		return err
	}
	if c.from > c.to {
		return errAt(path, "from must not exceed to (got from %d, to %d)", c.from, c.to)
	}
	return nil
}

func percentBound(n *yaml.Node, path string) (uint64, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != intTag {
		return 0, errAt(path, "must be an integer within 0..100 (got %s)", describe(n))
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		return 0, errAt(path, "must be an integer within 0..100 (got %s)", describe(n))
	}
	if v < 0 || v > 100 {
		return 0, errAt(path, "must be within 0..100 (got %d)", v)
	}
	return uint64(v), nil
}

// scalarString reads a value that conditions compare as a string, exactly
// as written: `eq: 40` and `eq: "40"` both give "40".
func scalarString(n *yaml.Node, path string) (string, error) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", errAt(path, "must be a scalar (got %s)", describe(n))
	}
	return n.Value, nil
}
