package pickeringest_test

import (
	"context"
	"database/sql"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
)

// The code between the markers is quoted verbatim in docs/producers.md;
// TestProducersGuide fails when the two differ, and runs it.

// producers.md:begin

// pickerOrderEvent is the producer's own copy of the job's args: only the
// kind, the queue and the snake_case fields of the contract are shared.
type pickerOrderEvent struct {
	EventType   string      `json:"event_type"`
	OrderNr     string      `json:"order_nr"`
	OrderStatus string      `json:"order_status"`
	PlaceID     string      `json:"place_id"`
	CustomerID  string      `json:"customer_id,omitempty"`
	PickerID    string      `json:"picker_id,omitempty"`
	Forwarding  *forwarding `json:"customer_picker_phone_forwarding,omitempty"`
	CreatedAt   time.Time   `json:"created_at"`
}

type forwarding struct {
	Phone     string    `json:"phone"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (pickerOrderEvent) Kind() string { return "eats_orders_tracking_picker_orders" }

// newProducerClient is an insert-only River client on the producer's
// database/sql pool (riverpgxv5 works the same way with a pgx pool).
func newProducerClient(db *sql.DB) (*river.Client[*sql.Tx], error) {
	return river.NewClient(riverdatabasesql.New(db), &river.Config{})
}

// publishPickerStatus enqueues the event in the producer's own transaction:
// the event exists if and only if the producer's change is committed.
func publishPickerStatus(ctx context.Context, db *sql.DB, client *river.Client[*sql.Tx], orderNr, status, pickerID string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit (sql.ErrTxDone)

	// ... the producer's own writes on tx ...

	_, err = client.InsertTx(ctx, tx, pickerOrderEvent{
		EventType:   "STATUS_CHANGE",
		OrderNr:     orderNr,
		OrderStatus: status,
		PlaceID:     "40",
		PickerID:    pickerID,
		CreatedAt:   time.Now(),
	}, &river.InsertOpts{Queue: "eats_orders_tracking_picker_orders"})
	if err != nil {
		return err
	}
	return tx.Commit()
}

// producers.md:end
