// Package pickeringest is the picker-ingest module (DESIGN §3.1, §4.3, §6):
// it works the River queue eats_orders_tracking_picker_orders, into which
// procaas puts every picker status change and every new customer→picker
// forwarding phone, and keeps the tables picker_orders and picker_phones.
//
// # One path for every event
//
// parse is the only validation of outside input: the worker, the internal
// HTTP endpoint (POST /internal/eats-orders-tracking/v1/picker-orders/events)
// and the fuzz target all call it. It returns an Event or tracking.FieldErrors
// that name the field and the (masked) value.
//
// Applier.Apply is the only code that changes picker_orders and picker_phones
// for an event; picker-updater applies eats-picker-orders' answers through it
// too. Each table is written by one INSERT … ON CONFLICT … DO UPDATE … WHERE
// statement whose conflict rule is the DESIGN's ordering rule, so the result
// does not depend on delivery order, duplicates or how many workers run at
// once:
//
//   - picker_orders: the status comes from the event with the latest
//     (created_at, status rank); the picker_id from the latest such event that
//     named a picker (then the greater picker_id); status_history keeps the
//     earliest time per status. A row is rewritten, and updated_at moved, only
//     when one of these changes.
//   - picker_phones (order_nr, picker_id): the later expires_at wins, then the
//     later created_at, then the greater phone.
//
// The worker applies the event and completes the job in one transaction,
// shared with other waiting events by queue.GroupCommit (one commit for
// many jobs), so a crash leaves both or neither. After the commit,
// Applied.AfterCommit writes the Redis phone cache entry by a
// compare-and-set that never replaces a winner (readers' fills use it too);
// a failed write is logged and counted, never retried: PHONE_CACHE_TTL
// bounds what it costs. PhoneLookup is the read-through side of that cache
// for the tracking presenter (phones.go says how the bound holds).
//
// Invalid input cancels the job (river.JobCancel) with the field error, so
// the job row keeps it for an operator; transient database errors are
// returned and River retries them.
package pickeringest
