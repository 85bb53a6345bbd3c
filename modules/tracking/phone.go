package tracking

import "time"

// Phone is a customer→picker forwarding number as stored: "<number>" or
// "<number>,,<ext>" (DisplayPhone renders it for the app).
type Phone struct {
	Number    string
	ExpiresAt time.Time
}

// PhoneKey names the phone of one picker on one order.
type PhoneKey struct{ OrderNr, PickerID string }
