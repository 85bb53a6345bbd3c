package tracking

import "time"

// Phone is a customer→picker forwarding number as stored: "<number>" or
// "<number>,,<ext>" (DisplayPhone renders it for the app).
type Phone struct {
	Number    string
	ExpiresAt time.Time
	// FreshUntil, when not zero, is the latest a copy of this lookup may be
	// shown without looking again: when the Redis entry it came from ends,
	// or PHONE_CACHE_TTL after the PostgreSQL read (DESIGN §6). A newer
	// phone may have replaced it by then.
	FreshUntil time.Time
}

// PhoneKey names the phone of one picker on one order.
type PhoneKey struct{ OrderNr, PickerID string }
