// Package cleanup is the cleanup module: the periodic job cleanup (leader
// only, every CLEANUP_INTERVAL) keeps the service's tables small (DESIGN §6).
// It deletes picker_orders and orders created more than RETENTION ago (by
// created_at, so an order the updater keeps polling still goes) and
// picker_phones whose expiry passed more than an hour ago.
//
// Deletes run in batches of CLEANUP_BATCH_SIZE rows, each its own short
// transaction with a statement timeout, found through the tables'
// created_at / expires_at indexes and deleted by ctid, so no statement holds
// locks for long and concurrent writers wait milliseconds at most. A table
// is done when its index range below the cut-off is exhausted, not at the
// first short batch: a row updated during its batch is skipped by the
// delete's ctid recheck and looked at again.
//
// Each table's run starts where the previous run in the same process
// stopped (its high-water mark), so a run right after a big one does not
// walk the dead index entries autovacuum has not removed yet; every
// CLEANUP_FULL_SWEEP_INTERVAL, and whenever a process has no mark, a run
// starts from the lowest key instead, so a row that lands below a mark (a
// late phone event whose expiry is long past) goes too (see worker). River
// prunes its own finished jobs.
package cleanup
