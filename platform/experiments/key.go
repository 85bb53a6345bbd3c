package experiments

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Definition is what a module hands to the Store so it can decode and check
// one experiment. Only Key implements it.
type Definition interface {
	// Name is the experiment's name in the file.
	Name() string
	// decode turns one default or clause value into the key's type, checked
	// by the key's validator. The result is stored boxed and unboxed by Get.
	decode(n *yaml.Node) (any, error)
}

// Key is a typed handle on one experiment. A module declares it once, as a
// package variable, registers its Definition and reads values with Get.
type Key[T any] struct {
	name     string
	validate func(T) error
}

// NewKey declares the experiment name whose values decode into T.
//
// Decoding is strict: a struct field is required unless it is a pointer or
// tagged omitempty, unknown fields are errors, and a scalar must have the
// YAML type of its Go field (1.5 is not an int, "yes" is not a bool).
// validate, which may be nil, then checks the decoded value; its error should
// start with the path inside the value, like "[1].timeout: must be ...".
func NewKey[T any](name string, validate func(T) error) Key[T] {
	return Key[T]{name: name, validate: validate}
}

// Name returns the experiment's name in the file.
func (k Key[T]) Name() string { return k.name }

// Definition returns what the Store needs to load this experiment; hand it
// over with AsDefinition.
func (k Key[T]) Definition() Definition { return k }

func (k Key[T]) decode(n *yaml.Node) (any, error) {
	v, err := decodeStrict[T](n)
	if err != nil {
		return nil, err
	}
	if k.validate != nil {
		if err := k.validate(v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Get returns the value in force for kw: the value of the first clause whose
// if holds, else the default. It reports false when the experiment is absent
// (not in the file, or no clause holds and there is no default); callers then
// treat flags as off and lists as empty. The value is shared with other
// callers and must not be modified. Get allocates nothing.
func (k Key[T]) Get(s *Store, kw Kwargs) (T, bool) {
	var zero T
	if s == nil {
		return zero, false
	}
	e := s.current.Load().experiments[k.name]
	if e == nil {
		return zero, false
	}
	v, ok := e.evaluate(&kw)
	if !ok {
		return zero, false
	}
	// v was decoded by the registered Key of this name; only a second Key
	// declared with the same name but another type could fail this.
	t, ok := v.(T)
	return t, ok
}

// checkDefinitions refuses definitions the Store could not tell apart.
func checkDefinitions(defs []Definition) (map[string]Definition, error) {
	byName := make(map[string]Definition, len(defs))
	for i, d := range defs {
		if d == nil {
			return nil, fmt.Errorf("experiment definition %d is nil", i)
		}
		name := d.Name()
		if name == "" {
			return nil, fmt.Errorf("experiment definition %d has no name", i)
		}
		if _, dup := byName[name]; dup {
			return nil, fmt.Errorf("experiment %s is defined twice", name)
		}
		byName[name] = d
	}
	return byName, nil
}
