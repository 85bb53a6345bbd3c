// Package statecache is the tracking endpoint's in-process cache of eaters'
// order states. Polls far outnumber changes, so each replica answers from
// memory: it loads every listed order of every eater at start (the Loader
// the presenter supplies) and then applies the change feed, a LISTEN on the
// notifications that the triggers of migration 00003
// (00003_orders_and_change_feed.sql) send for every committed change of
// orders, picker_orders and picker_phones. A heartbeat through the same
// channel proves how far behind the feed can be; Get serves from memory
// only while that is under 900 ms, so an answer never lags a commit by more
// than a second, and the caller reads the database whenever the feed is
// down or behind. An entry holding a phone never outlives the phone. A
// caller may hear each applied change too (Options.OnChange: the live
// tracking streams) and ask how far behind the feed is (Cache.Lag).
//
// The cache knows states only through State (which order a state is of,
// and the phone it holds); what a state means and how it is read stays
// with the presenter. It imports no module but the vocabulary.
package statecache
