package trackingpresenter

import (
	"fmt"
	"strings"
)

// Identity headers set by the API gateway (DESIGN §4.1). The gateway strips
// what clients send, so their content is trusted.
const (
	headerEatsUser   = "X-Eats-User"
	headerYaTaxiUser = "X-YaTaxi-User"
	headerLanguage   = "X-Request-Language"
)

// identityError is a malformed identity header: the request is answered
// 400 naming the header, never echoing its value (it holds personal ids).
type identityError struct {
	header string
	reason string
}

func (e *identityError) Error() string { return e.header + ": " + e.reason }

// eaterID reads the eater from the identity headers. X-Eats-User wins when
// it is present: its user_id, else its partner_user_id. Otherwise
// X-YaTaxi-User's eats_user_id. "" with a nil error means no identity (the
// answer is then an empty list). A header that is not comma-separated k=v
// pairs, an empty id, or one key given two different ids is an error.
func eaterID(eatsUser, yaTaxiUser string) (string, error) {
	if strings.TrimSpace(eatsUser) != "" {
		return idFromPairs(headerEatsUser, eatsUser, "user_id", "partner_user_id")
	}
	if strings.TrimSpace(yaTaxiUser) != "" {
		return idFromPairs(headerYaTaxiUser, yaTaxiUser, "eats_user_id")
	}
	return "", nil
}

// idFromPairs parses "k=v, k=v" and returns the value of the first of keys
// that is present.
func idFromPairs(header, value string, keys ...string) (string, error) {
	found := make([]string, len(keys))
	for part := range strings.SplitSeq(value, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue // "a=1," or "a=1, , b=2": tolerated
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || strings.Contains(v, "=") {
			return "", &identityError{header, "must be comma-separated key=value pairs"}
		}
		for i, want := range keys {
			if k != want {
				continue
			}
			if v == "" {
				return "", &identityError{header, fmt.Sprintf("%s is empty", k)}
			}
			if found[i] != "" && found[i] != v {
				return "", &identityError{header, fmt.Sprintf("%s is given twice with different values", k)}
			}
			found[i] = v
		}
	}
	for _, v := range found {
		if v != "" {
			return v, nil
		}
	}
	return "", nil
}
