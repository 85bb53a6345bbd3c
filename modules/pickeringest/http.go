package pickeringest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/jmoiron/sqlx"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// eventsPath is where producers without River access post picker events.
const eventsPath = "/internal/eats-orders-tracking/v1/picker-orders/events"

// enqueuedEvent is the 202 answer: the River job that will apply the event.
type enqueuedEvent struct {
	JobID int64 `json:"job_id" doc:"ID of the River job in queue eats_orders_tracking_picker_orders (see /riverui/)"`
}

type postEventInput struct {
	Body eventBody
}

type postEventOutput struct {
	Body enqueuedEvent
}

// eventBody keeps the request body as sent: parse validates it (the same
// rules as the worker), and the job stores it as is, unknown fields
// included. huma only documents it.
type eventBody struct{ raw []byte }

func (b *eventBody) UnmarshalJSON(p []byte) error {
	b.raw = bytes.Clone(p) // huma reuses its read buffer after decoding
	return nil
}

// Schema documents the event (DESIGN §3.1); see eventSchema.
func (eventBody) Schema(r huma.Registry) *huma.Schema {
	const name = "PickerOrderEvent"
	if _, ok := r.Map()[name]; !ok {
		r.Map()[name] = eventSchema()
	}
	return &huma.Schema{Ref: "#/components/schemas/" + name}
}

func eventSchema() *huma.Schema {
	eventTypes := make([]any, len(tracking.EventTypes))
	for i, t := range tracking.EventTypes {
		eventTypes[i] = string(t)
	}
	statuses := make([]any, len(tracking.PickerStatuses))
	for i, s := range tracking.PickerStatuses {
		statuses[i] = string(s)
	}
	id := func(doc string) *huma.Schema {
		return &huma.Schema{Type: "string", MinLength: ptr(1), MaxLength: ptr(tracking.MaxIDLen), Description: doc}
	}
	return &huma.Schema{
		Type: "object",
		Description: "A picker-order event, as procaas puts it in queue eats_orders_tracking_picker_orders. " +
			"Unknown fields are ignored. Event types other than STATUS_CHANGE and PICKER_PHONE_FORWARDING_READY " +
			"(ITEM_*, and types added later) are accepted and ignored without validating their other fields.",
		Required: []string{fieldEventType, fieldOrderNr, fieldStatus, fieldPlaceID},
		Properties: map[string]*huma.Schema{
			fieldEventType: {Type: "string", Enum: eventTypes, Description: "What happened; unknown values are accepted and ignored."},
			fieldOrderNr:   id("The order's number."),
			fieldStatus: {Type: "string", Enum: statuses,
				Description: "The picker order's status after the event; on equal created_at the later status in this list wins."},
			fieldPlaceID:    id("The store."),
			fieldCustomerID: id("The customer (optional)."),
			fieldPickerID: id("The picker (optional; required for PICKER_PHONE_FORWARDING_READY). " +
				"Absent on a STATUS_CHANGE means the stored picker stays."),
			fieldForwarding: {
				Type:        "object",
				Description: "The customer→picker forwarding phone; required for PICKER_PHONE_FORWARDING_READY. No other fields allowed.",
				Required:    []string{fieldPhone, fieldExpiresAt},
				Properties: map[string]*huma.Schema{
					fieldPhone: {Type: "string",
						Description: `After dropping spaces, dashes and parentheses: ^\+?[0-9]{5,15}(,,[0-9]{1,10})?$ (",," precedes an extension).`,
						Examples:    []any{"+7 999 123-45-67,,123"}},
					fieldExpiresAt: {Type: "string", Format: "date-time", Description: "When the forwarding number stops working (RFC 3339)."},
				},
				AdditionalProperties: false,
			},
			fieldCreatedAt: {Type: "string", Format: "date-time", Nullable: true,
				Description: "When the event happened (RFC 3339). Missing or null: the time the job is enqueued."},
		},
		AdditionalProperties: true,
		Examples: []any{map[string]any{
			fieldEventType: "STATUS_CHANGE", fieldOrderNr: "230101-100001", fieldStatus: "picking",
			fieldPlaceID: "40", fieldPickerID: "picker-7", fieldCreatedAt: "2025-01-01T10:00:00Z",
		}},
	}
}

func ptr[T any](v T) *T { return &v }

// newOperations registers the internal endpoint that validates an event
// with parse and enqueues it.
func newOperations(db *sqlx.DB, client *queue.Client, logger *slog.Logger) httpapi.Operations {
	return func(api huma.API) {
		huma.Register(api, httpapi.Internal(huma.Operation{
			OperationID: "postPickerOrderEvent",
			Method:      http.MethodPost,
			Path:        eventsPath,
			Summary:     "Enqueue a picker-order event",
			Description: "Validates the event with the same rules as the queue's worker (422 names the field in errors[].location, " +
				"e.g. body.order_nr) and enqueues it in queue eats_orders_tracking_picker_orders. " +
				"A missing created_at is allowed: the job's insertion time is used.",
			DefaultStatus: http.StatusAccepted,
			// parse validates, so that unknown event types and fields pass
			// and every error reads like the worker's.
			SkipValidateBody: true,
			MaxBodyBytes:     64 << 10,
			Errors:           []int{http.StatusUnauthorized, http.StatusNotFound, http.StatusUnprocessableEntity},
		}), func(ctx context.Context, in *postEventInput) (*postEventOutput, error) {
			ev, err := parse(in.Body.raw, time.Now())
			if err != nil {
				return nil, invalidEvent(err)
			}
			id, err := enqueue(ctx, db, client, PickerOrderArgs{raw: in.Body.raw}, ev)
			switch {
			case errors.Is(err, tracking.ErrInvalid): // a time in the future, by the database's clock
				return nil, invalidEvent(err)
			case err != nil:
				logger.ErrorContext(ctx, "enqueue picker event", "err", err)
				return nil, huma.Error500InternalServerError("could not enqueue the event; retry later")
			}
			return &postEventOutput{Body: enqueuedEvent{JobID: id}}, nil
		})
	}
}

// invalidEvent is the 422 problem: one errors[] entry per field, located as
// body.<json path>, the message being the FieldError's text.
func invalidEvent(err error) error {
	var details []error
	for _, e := range flatten(err) {
		var fe *tracking.FieldError
		if !errors.As(e, &fe) {
			continue
		}
		loc := "body"
		if fe.Field != "event" {
			loc += "." + fe.Field
		}
		d := &huma.ErrorDetail{Location: loc, Message: fe.Error()}
		if fe.Value != "" {
			d.Value = fe.Value
		}
		details = append(details, d)
	}
	return huma.Error422UnprocessableEntity("invalid picker event", details...)
}

// flatten undoes errors.Join.
func flatten(err error) []error {
	// A join at the top only: a join wrapped deeper is one error.
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
