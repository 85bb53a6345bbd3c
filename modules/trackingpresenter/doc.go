// Package trackingpresenter is the tracking-presenter module: the app's
// only call, GET /eats/v1/eats-orders-tracking/v1/tracking (DESIGN §4.1,
// §4.2). It turns each of the eater's listed orders into a card: the base
// view by order status and flow type, and for retail orders the picker
// states P1–P3 ("contact us", "call the picker", "paying"), which the
// experiments CallPicker and ContactUs switch on per eater, order, store,
// flow type and language. Every text comes from the message catalog in
// messages/ (ru, the default, and en).
//
// The eater comes from the gateway's identity headers (identity.go); the
// answer is built from orders, picker_orders and the current picker's
// phone, looked up through picker-ingest's Redis-backed PhoneLookup.
//
// Polls far outnumber changes, so each replica answers from memory
// (cache.go): it loads every listed order of every eater at start and then
// applies the change feed (feed.go), a LISTEN on notifications that
// triggers of migration 00003 send for every committed change of the three
// tables. A heartbeat through the same channel proves how far behind the
// feed can be; answers are served from memory only while that is under
// 900 ms, so an answer never lags a commit by more than a second, and the
// database answers whenever the feed is down or behind. An entry holding a
// phone never outlives the phone, and the renderer checks the expiry again,
// so an expired phone is never shown.
package trackingpresenter
