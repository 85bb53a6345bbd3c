// Package orderingest is the order-ingest module: it works the River queue
// eats_orders_tracking_orders (DESIGN §3.2) into the orders table, the base
// data of every tracked order.
//
// Each event is a full snapshot of the order. The rules are those of
// picker-ingest and use the same vocabulary (modules/tracking):
//   - the snapshot with the latest created_at wins; on equal times the status
//     later in tracking.OrderStatuses wins, then the greater snapshot, so any
//     delivery order of the same events ends in the same row; an older event
//     never overwrites a newer one;
//   - a field a newer snapshot omits (courier, eta) is cleared;
//   - first_event_at (the order's createdAt in the tracking answer) is the
//     earliest created_at seen, whatever the delivery order;
//   - invalid input (a required field missing, an unknown enum value, a
//     malformed date, a phone that is not a phone, a value of the wrong JSON
//     type) cancels the job with tracking.FieldErrors naming each field and
//     value, phones masked; the job stays in river_job for an operator;
//   - other failures return an error and River retries with backoff;
//   - the row and the job's completion are written in one transaction.
//
// The one upsert statement states the conflict rule, so concurrent workers
// and replicas need no locking of their own.
package orderingest
