package orderingest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/eats/eats-orders-tracking/modules/tracking"
)

// Kind is the River kind and the queue of order events (DESIGN §3.2).
const Kind = "eats_orders_tracking_orders"

// OrderArgs is one event of the core order pipeline: a full snapshot of the
// order at CreatedAt. Every field keeps its snake_case name; times are
// RFC 3339 strings (a malformed one cancels the job with a clear error
// rather than failing to decode).
type OrderArgs struct {
	OrderNr  string               `json:"order_nr"`
	EaterID  string               `json:"eater_id"`
	FlowType tracking.FlowType    `json:"flow_type"`
	Status   tracking.OrderStatus `json:"status"`
	Place    *Place               `json:"place"`
	// Courier is absent until a courier is assigned; a snapshot without it
	// clears the stored one.
	Courier *Courier `json:"courier,omitempty"`
	// ETA is the promised delivery time; absent clears the stored one.
	ETA string `json:"eta,omitempty"`
	// CreatedAt is when the event happened. Required.
	CreatedAt string `json:"created_at"`

	// decodeErr keeps a JSON type mismatch (e.g. a number for place.id) so
	// Work can cancel the job naming the field, instead of River retrying
	// a job that can never decode.
	decodeErr error
}

// Place is where the order is prepared.
type Place struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Phone   string `json:"phone,omitempty"`
	Address string `json:"address,omitempty"`
}

// Courier is who delivers the order.
type Courier struct {
	Name  string `json:"name"`
	Phone string `json:"phone,omitempty"`
}

// Kind implements river.JobArgs.
func (OrderArgs) Kind() string { return Kind }

// InsertOpts puts the job on its own queue.
func (OrderArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: Kind} }

// UnmarshalJSON decodes like encoding/json but never fails: a value of the
// wrong JSON type is kept as a validation error for Work to report.
func (a *OrderArgs) UnmarshalJSON(b []byte) error {
	type plain OrderArgs // no methods: no recursion
	var p plain
	err := json.Unmarshal(b, &p)
	*a = OrderArgs(p)
	a.decodeErr = decodeError(err)
	return nil
}

func decodeError(err error) error {
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "args"
		}
		return tracking.Invalid(field, "must be "+jsonKind(te.Type), te.Value)
	}
	return tracking.Invalid("args", "not a JSON object", tracking.Truncate(err.Error()))
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Struct, reflect.Pointer:
		return "an object"
	default:
		return "a " + t.Kind().String()
	}
}

// snapshot is a validated event in the form the orders table stores.
type snapshot struct {
	OrderNr string
	EaterID string
	Payload payload
	// EventAt is the event's created_at, UTC, microseconds.
	EventAt time.Time
	// SentAt is created_at as the producer wrote it, for the error that
	// refuses a time in the future.
	SentAt string
}

// payload is the orders.payload JSON: the latest snapshot of the order.
// Optional parts are absent (not null) when unknown.
type payload struct {
	FlowType tracking.FlowType    `json:"flow_type"`
	Status   tracking.OrderStatus `json:"status"`
	Place    Place                `json:"place"`
	Courier  *Courier             `json:"courier,omitempty"`
	ETA      *time.Time           `json:"eta,omitempty"`
}

// snapshot validates the event. Every problem is reported, each as a
// *tracking.FieldError (all wrap tracking.ErrInvalid).
func (a *OrderArgs) snapshot() (snapshot, error) {
	if a.decodeErr != nil {
		return snapshot{}, a.decodeErr
	}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	required := func(field, value string) {
		if value == "" {
			check(tracking.Missing(field))
		}
	}
	s := snapshot{OrderNr: a.OrderNr, EaterID: a.EaterID}
	required("order_nr", a.OrderNr)
	required("eater_id", a.EaterID)
	switch {
	case a.FlowType == "":
		check(tracking.Missing("flow_type"))
	case !a.FlowType.Valid():
		check(tracking.Invalid("flow_type", "unknown flow type", tracking.Truncate(string(a.FlowType))))
	}
	switch {
	case a.Status == "":
		check(tracking.Missing("status"))
	case !a.Status.Valid():
		check(tracking.Invalid("status", "unknown order status", tracking.Truncate(string(a.Status))))
	}
	s.Payload.FlowType, s.Payload.Status = a.FlowType, a.Status
	if a.Place == nil {
		check(tracking.Missing("place"))
	} else {
		p := *a.Place
		required("place.id", p.ID)
		required("place.name", p.Name)
		if p.Phone != "" {
			phone, err := tracking.NormalizePhone("place.phone", p.Phone)
			check(err)
			p.Phone = phone
		}
		s.Payload.Place = p
	}
	if a.Courier != nil {
		c := *a.Courier
		required("courier.name", c.Name)
		if c.Phone != "" {
			phone, err := tracking.NormalizePhone("courier.phone", c.Phone)
			check(err)
			c.Phone = phone
		}
		s.Payload.Courier = &c
	}
	if a.ETA != "" {
		eta, err := tracking.ParseTime("eta", a.ETA)
		check(err)
		s.Payload.ETA = &eta
	}
	at, err := tracking.ParseTime("created_at", a.CreatedAt)
	check(err)
	s.EventAt, s.SentAt = at, a.CreatedAt
	// Keys too long for an index, or a NUL anywhere (PostgreSQL text cannot
	// hold one), would fail on every retry: cancel them as invalid instead.
	for _, id := range [][2]string{{"order_nr", a.OrderNr}, {"eater_id", a.EaterID}, {"place.id", s.Payload.Place.ID}} {
		check(tracking.CheckID(id[0], id[1]))
	}
	texts := [][2]string{
		{"place.name", s.Payload.Place.Name}, {"place.address", s.Payload.Place.Address},
	}
	if s.Payload.Courier != nil {
		texts = append(texts, [2]string{"courier.name", s.Payload.Courier.Name})
	}
	for _, fv := range texts {
		if strings.ContainsRune(fv[1], 0) {
			check(tracking.Invalid(fv[0], "contains a NUL character", tracking.Truncate(strings.ReplaceAll(fv[1], "\x00", `\0`))))
		}
	}
	if len(errs) > 0 {
		return snapshot{}, errors.Join(errs...)
	}
	return s, nil
}
