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

// eaterID reads the eater from the identity headers (DESIGN §4.1). They
// are consulted in order until one names an eater: X-Eats-User's user_id,
// else its partner_user_id; then X-YaTaxi-User's eats_user_id. So an
// X-Eats-User holding only other keys (personal_phone_id, …) falls
// through. "" with a nil error means no identity (the answer is then an
// empty list). A consulted header that is not comma-separated k=v pairs,
// names an empty id, or gives one key two different ids is an error; a
// header never consulted is not validated. A blank header is absent.
func eaterID(eatsUser, yaTaxiUser string) (string, error) {
	if strings.TrimSpace(eatsUser) != "" {
		id, err := idFromPairs(headerEatsUser, eatsUser, "user_id", "partner_user_id")
		if err != nil || id != "" {
			return id, err
		}
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
