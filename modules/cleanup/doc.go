// Package cleanup is the cleanup module: the periodic job cleanup (leader
// only, every CLEANUP_INTERVAL) keeps the service's tables small (DESIGN §6).
// It deletes picker_orders and orders created more than RETENTION ago (by
// created_at, so an order the updater keeps polling still goes) and
// picker_phones whose expiry passed more than an hour ago.
//
// Deletes run in batches of CLEANUP_BATCH_SIZE rows, each its own short
// transaction with a statement timeout, found through the tables'
// created_at / expires_at indexes and deleted by ctid, so no statement holds
// locks for long and concurrent writers wait milliseconds at most. River
// prunes its own finished jobs.
package cleanup
