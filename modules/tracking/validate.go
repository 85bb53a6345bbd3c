package tracking

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// ErrInvalid is wrapped by every validation error of outside input; a job
// whose args wrap it is cancelled, a request 4xx'd.
var ErrInvalid = errors.New("invalid input")

// FieldError names the field and the value that made input invalid, in the
// form the DESIGN fixes: `invalid <field>: <reason> (got "<value>")`.
type FieldError struct {
	Field  string // JSON name, dotted for nested fields: customer_picker_phone_forwarding.phone
	Reason string
	Value  string // already masked where it is a phone number
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("invalid %s: %s (got %q)", e.Field, e.Reason, e.Value)
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Invalid builds a *FieldError.
func Invalid(field, reason, value string) error {
	return &FieldError{Field: field, Reason: reason, Value: value}
}

// Missing is the error for a required field that is absent or empty.
func Missing(field string) error { return Invalid(field, "required", "") }

// ParseTime parses an RFC 3339 time, truncated to Postgres' microsecond
// precision and in UTC, so what is stored equals what was compared.
func ParseTime(field, value string) (time.Time, error) {
	if value == "" {
		return time.Time{}, Missing(field)
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}, Invalid(field, "not an RFC 3339 date-time", Truncate(value))
	}
	return Normalize(t), nil
}

// Normalize puts t in UTC at microsecond precision.
func Normalize(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

var phonePattern = regexp.MustCompile(`^\+?[0-9]{5,15}(,,[0-9]{1,10})?$`)

// phoneNoise is what people put in phone numbers for readability.
var phoneNoise = strings.NewReplacer(" ", "", "-", "", "(", "", ")", "")

// NormalizePhone drops spaces, dashes and parentheses and checks the result
// against the contract's pattern: +digits, optionally ,,extension.
func NormalizePhone(field, value string) (string, error) {
	if value == "" {
		return "", Missing(field)
	}
	p := phoneNoise.Replace(value)
	if !phonePattern.MatchString(p) {
		return "", Invalid(field, "not a phone number", MaskPhone(value))
	}
	return p, nil
}

// MaskPhone keeps only the last 4 digits visible, for logs and errors.
func MaskPhone(p string) string {
	r := []rune(p)
	digits := 0
	for i := len(r) - 1; i >= 0; i-- {
		if unicode.IsDigit(r[i]) { // not only ASCII: "８９９９…" is a phone too
			digits++
			if digits > 4 {
				r[i] = '*'
			}
		}
	}
	return Truncate(string(r))
}

// DisplayPhone renders a stored "<number>,,<ext>" as "<number>,<ext>", the
// form the app dials.
func DisplayPhone(p string) string { return strings.Replace(p, ",,", ",", 1) }

// Truncate bounds a value quoted in an error, so a huge bad value cannot
// bloat a job row or a log line.
func Truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// MaxIDLen bounds identifiers (order_nr, eater_id, place_id, picker_id): a
// key longer than a btree entry can hold would fail on every retry instead
// of being cancelled as invalid.
const MaxIDLen = 256

// CheckID rejects an identifier that is too long or holds a NUL (which
// PostgreSQL text cannot store); both would otherwise fail forever.
func CheckID(field, value string) error {
	switch {
	case len(value) > MaxIDLen:
		return Invalid(field, "longer than 256 bytes", Truncate(value))
	case strings.ContainsRune(value, 0):
		return Invalid(field, "contains a NUL character", Truncate(value)) // quoted: shows \x00
	}
	return nil
}
