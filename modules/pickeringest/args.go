package pickeringest

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"

	"github.com/eats/eats-orders-tracking/modules/tracking"
)

// Kind is the River job kind of picker-order events, and their queue.
const Kind = "eats_orders_tracking_picker_orders"

// Field names of the event, as procaas sends them (DESIGN §3.1).
const (
	fieldEventType  = "event_type"
	fieldOrderNr    = "order_nr"
	fieldStatus     = "order_status"
	fieldPlaceID    = "place_id"
	fieldCustomerID = "customer_id"
	fieldPickerID   = "picker_id"
	fieldForwarding = "customer_picker_phone_forwarding"
	fieldCreatedAt  = "created_at"
	fieldPhone      = "phone"
	fieldExpiresAt  = "expires_at"
)

// PickerOrderArgs is the job of queue eats_orders_tracking_picker_orders:
// one picker-order event in procaas' snake_case JSON (DESIGN §3.1).
//
// A Go producer fills the typed fields. A decoded job keeps the JSON it was
// inserted with, and the worker validates that with parse: unknown
// top-level fields are ignored, a wrong or missing field cancels the job
// with an error that names it. The typed fields of a decoded job are filled
// on a best-effort basis and are not validated.
type PickerOrderArgs struct {
	EventType   tracking.EventType    `json:"event_type"`
	OrderNr     string                `json:"order_nr"`
	OrderStatus tracking.PickerStatus `json:"order_status,omitempty"`
	PlaceID     string                `json:"place_id,omitempty"`
	CustomerID  string                `json:"customer_id,omitempty"`
	PickerID    string                `json:"picker_id,omitempty"`
	// CustomerPickerPhoneForwarding comes with PICKER_PHONE_FORWARDING_READY.
	CustomerPickerPhoneForwarding *Forwarding `json:"customer_picker_phone_forwarding,omitempty"`
	// CreatedAt is when the event happened; zero sends none, and the
	// job's insertion time is used.
	CreatedAt time.Time `json:"created_at,omitzero"`

	raw json.RawMessage // the JSON as stored in river_job.args
}

// Kind is the River job kind.
func (PickerOrderArgs) Kind() string { return Kind }

// InsertOpts puts the job on its queue.
func (PickerOrderArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: Kind} }

// UnmarshalJSON never fails: it keeps the JSON for parse, so a malformed
// event reaches the worker and is cancelled with a clear error instead of
// failing in River's decoder and being retried.
func (a *PickerOrderArgs) UnmarshalJSON(b []byte) error {
	type plain PickerOrderArgs
	var p plain
	_ = json.Unmarshal(b, &p) // best effort; parse reports what is wrong
	*a = PickerOrderArgs(p)
	a.raw = bytes.Clone(b)
	return nil
}

// MarshalJSON writes the JSON a decoded job came with (unknown fields
// included), or the typed fields of a job built in Go.
func (a PickerOrderArgs) MarshalJSON() ([]byte, error) {
	if a.raw != nil {
		return a.raw, nil
	}
	type plain PickerOrderArgs
	return json.Marshal(plain(a))
}

// Forwarding is the customer→picker forwarding phone of an event: the phone
// (normalized: no spaces, dashes or parentheses; "<number>,,<ext>" allowed)
// and when it stops working.
type Forwarding struct {
	Phone     string    `json:"phone"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Event is one picker event as Applier.Apply takes it: what parse returns
// for a job, or what picker-updater builds from eats-picker-orders' answer.
type Event struct {
	Type       tracking.EventType
	OrderNr    string
	Status     tracking.PickerStatus
	PlaceID    string
	CustomerID string
	PickerID   string // "" when the event named no picker
	Forwarding *Forwarding
	// CreatedAt is when the event happened, in UTC at microsecond precision.
	CreatedAt time.Time
	// CreatedAtFromJob reports that the event had no created_at and
	// CreatedAt is the job's insertion time (DESIGN §3.1).
	CreatedAtFromJob bool

	// createdAtSent is created_at as the producer wrote it, for the error
	// that refuses a time in the future; "" for events not parsed from JSON.
	createdAtSent string
}

// parse validates one picker event, given as the JSON of the job's args
// or of the HTTP body. jobCreatedAt stands in for a missing or null
// created_at. An event type this service does not apply (ITEM_*, or one
// unknown today) gives an Event with only Type set and no error: its other
// fields are not validated. Errors are *tracking.FieldError (joined when
// several fields are wrong), named by their JSON path, phone values masked;
// with an error the Event holds at most Type and OrderNr, for logs.
func parse(raw []byte, jobCreatedAt time.Time) (Event, error) {
	if !utf8.Valid(raw) {
		return Event{}, tracking.Invalid("event", "not valid UTF-8", "")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Event{}, tracking.Invalid("event", "not a JSON object", tracking.MaskPhone(string(raw)))
	}
	p := parser{fields: fields}
	eventType, ok := p.str(fieldEventType)
	if !ok {
		return Event{}, p.err()
	}
	if eventType == "" {
		return Event{}, tracking.Missing(fieldEventType)
	}
	ev := Event{Type: tracking.EventType(eventType)}
	if !ev.Type.Applied() {
		return ev, nil // ITEM_* and unknown types: accepted, ignored
	}
	ev.OrderNr = p.id(fieldOrderNr, true)
	ev.Status = p.status()
	ev.PlaceID = p.id(fieldPlaceID, true)
	ev.CustomerID = p.id(fieldCustomerID, false)
	isPhone := ev.Type == tracking.EventPickerPhoneForwardingReady
	ev.PickerID = p.id(fieldPickerID, isPhone)
	ev.Forwarding = p.forwarding(isPhone)
	ev.CreatedAt, ev.CreatedAtFromJob, ev.createdAtSent = p.createdAt(jobCreatedAt)
	if err := p.err(); err != nil {
		// Type and OrderNr (possibly invalid) only label metrics and logs.
		return Event{Type: ev.Type, OrderNr: ev.OrderNr}, err
	}
	return ev, nil
}

// parser collects every field error, so a producer learns all of them at once.
type parser struct {
	fields map[string]json.RawMessage
	errs   []error
}

func (p *parser) err() error { return errors.Join(p.errs...) }

func (p *parser) fail(err error) { p.errs = append(p.errs, err) }

// str reads an optional string field: absent and null give "", true; a
// value of another JSON type is an error.
func (p *parser) str(name string) (string, bool) {
	return p.strIn(p.fields, name, name, false)
}

func (p *parser) strIn(fields map[string]json.RawMessage, key, name string, masked bool) (string, bool) {
	v, present := fields[key]
	if !present || isNull(v) {
		return "", true
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		shown := tracking.Truncate(string(v))
		if masked {
			shown = tracking.MaskPhone(string(v))
		}
		p.fail(tracking.Invalid(name, "not a string", shown))
		return "", false
	}
	return s, true
}

// id reads an identifier: a non-empty string that passes tracking.CheckID.
func (p *parser) id(name string, required bool) string {
	s, ok := p.str(name)
	switch {
	case !ok:
		return ""
	case s == "":
		if required {
			p.fail(tracking.Missing(name))
		}
		return ""
	default:
		if err := tracking.CheckID(name, s); err != nil {
			p.fail(err)
		}
	}
	return s
}

func (p *parser) status() tracking.PickerStatus {
	s, ok := p.str(fieldStatus)
	switch {
	case !ok:
	case s == "":
		p.fail(tracking.Missing(fieldStatus))
	case !tracking.PickerStatus(s).Valid():
		p.fail(tracking.Invalid(fieldStatus, "unknown picker order status", tracking.Truncate(s)))
	}
	return tracking.PickerStatus(s)
}

// forwarding reads customer_picker_phone_forwarding: {phone, expires_at},
// both required, nothing else.
func (p *parser) forwarding(required bool) *Forwarding {
	v, present := p.fields[fieldForwarding]
	if !present || isNull(v) {
		if required {
			p.fail(tracking.Missing(fieldForwarding))
		}
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(v, &obj); err != nil || obj == nil {
		p.fail(tracking.Invalid(fieldForwarding, "not an object", tracking.MaskPhone(string(v))))
		return nil
	}
	before := len(p.errs)
	var extra []string
	for k := range obj {
		if k != fieldPhone && k != fieldExpiresAt {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		p.fail(tracking.Invalid(fieldForwarding+"."+k, "unknown field", tracking.MaskPhone(string(obj[k]))))
	}
	phoneField, expiresField := fieldForwarding+"."+fieldPhone, fieldForwarding+"."+fieldExpiresAt
	var f Forwarding
	if s, ok := p.strIn(obj, fieldPhone, phoneField, true); ok {
		phone, err := tracking.NormalizePhone(phoneField, s)
		if err != nil {
			p.fail(err)
		}
		f.Phone = phone
	}
	if s, ok := p.strIn(obj, fieldExpiresAt, expiresField, false); ok {
		f.ExpiresAt = p.time(expiresField, s)
	}
	if len(p.errs) > before {
		return nil
	}
	return &f
}

// createdAt reads created_at, and returns it also as sent; missing or null
// gives jobCreatedAt.
func (p *parser) createdAt(jobCreatedAt time.Time) (time.Time, bool, string) {
	v, present := p.fields[fieldCreatedAt]
	if !present || isNull(v) {
		return tracking.Normalize(jobCreatedAt), true, ""
	}
	s, ok := p.str(fieldCreatedAt)
	if !ok {
		return time.Time{}, false, ""
	}
	if s == "" {
		p.fail(tracking.Invalid(fieldCreatedAt, "not an RFC 3339 date-time", s))
		return time.Time{}, false, ""
	}
	return p.time(fieldCreatedAt, s), false, s
}

// time parses an RFC 3339 date-time within years 1–9999 (UTC), which
// PostgreSQL and RFC 3339 output both represent.
func (p *parser) time(name, s string) time.Time {
	t, err := tracking.ParseTime(name, s)
	if err != nil {
		p.fail(err)
		return time.Time{}
	}
	if y := t.Year(); y < 1 || y > 9999 {
		p.fail(tracking.Invalid(name, "year out of range 1–9999", tracking.Truncate(s)))
		return time.Time{}
	}
	return t
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }
