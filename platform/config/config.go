// Package config reads the service's configuration from environment
// variables. Each module declares its own documented struct with `env` tags;
// Parse fills it, applies defaults that work on a developer's machine, and
// runs the struct's Validate method, so a bad value stops the service at
// start with an error that names the variable.
package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// Environment is the set of variables the service reads. Production passes
// the process environment; tests pass their own map so parallel apps never
// share os.Environ.
type Environment map[string]string

// FromOS returns the process environment.
func FromOS() Environment { return Environment(env.ToMap(os.Environ())) }

// With returns a copy of e with the overrides applied.
func (e Environment) With(overrides map[string]string) Environment {
	out := maps.Clone(e)
	if out == nil {
		out = Environment{}
	}
	maps.Copy(out, overrides)
	return out
}

// Lookup reports a variable's value and whether it is set at all, which
// matters for variables where "set but empty" means "off".
func (e Environment) Lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

// Validator is implemented by config structs that check their values after
// parsing. Errors should name the variable.
type Validator interface{ Validate() error }

// Parse fills a T from environ. Errors name the offending variable.
func Parse[T any](environ Environment) (T, error) {
	var cfg T
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return cfg, fmt.Errorf("config: %w", renameFieldErrors[T](err))
	}
	if v, ok := any(&cfg).(Validator); ok {
		if err := v.Validate(); err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
	}
	return cfg, nil
}

// renameFieldErrors turns the library's "field X of type Y" messages into
// messages that name the environment variable an operator actually sets.
func renameFieldErrors[T any](err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	t := reflect.TypeFor[T]()
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
				name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
				msgs = append(msgs, fmt.Sprintf("%s: invalid value: %v", name, pe.Err))
				continue
			}
		}
		msgs = append(msgs, e.Error())
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Secret is a string that never prints itself, so a config logged at start
// cannot leak a token.
type Secret string

// String masks the value.
func (s Secret) String() string {
	if s == "" {
		return "(unset)"
	}
	return "(set)"
}

// MaskURL hides the secrets of a URL such as a database DSN: the password
// in user:pass@ and the values of query parameters that carry one (libpq
// takes password=… there too). A value that is not a scheme://… URL, such as
// a keyword DSN, may hold a password anywhere, so none of it is shown.
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "(hidden: not a URL)"
	}
	if q := u.Query(); len(q) > 0 {
		masked := false
		for k := range q {
			if isSecretParam(k) {
				q[k] = []string{"xxxxx"}
				masked = true
			}
		}
		if masked {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// isSecretParam tells whether a URL query parameter carries a secret
// (password, sslpassword, passfile is a path and stays visible).
func isSecretParam(name string) bool {
	n := strings.ToLower(name)
	return (strings.Contains(n, "password") || strings.Contains(n, "secret") || strings.Contains(n, "token")) && n != "passfile"
}
