// Package pickerupdater is the picker-updater module: the fallback for lost
// picker events (DESIGN §5). The periodic job picker_orders_updater (leader
// only) selects the picker orders whose status has been quiet for longer than
// the experiment eats_orders_tracking_picker_statuses_timeout allows and
// enqueues one picker_order_refresh job per order; each refresh asks
// eats-picker-orders for the order and applies the answer through
// picker-ingest's apply function, like a STATUS_CHANGE event.
//
// A tick skips the orders whose refresh is still pending, enqueues at most
// PICKER_UPDATER_MAX_ENQUEUE jobs shared fairly among the listed statuses
// (a larger backlog is worked through over the next ticks), is bounded by
// a timeout that follows the interval, and is unique while it waits or
// runs, so ticks never overlap across replicas.
//
// The upstream client retries timeouts and 5xx with backoff and jitter, puts
// a deadline on every attempt and every call, and stops calling through a
// circuit breaker while the upstream is down. Package pickerfake is a fake
// eats-picker-orders for tests and the demo.
package pickerupdater
