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
// phone (store.go), looked up through Phones: picker-ingest's Redis-backed
// PhoneLookup, bound in modules/modules.go.
//
// Polls far outnumber changes, so each replica answers from memory: the
// change-feed cache in internal/statecache holds every listed order of
// every eater, kept exact by the notifications the triggers of migration
// 00003 send, and serves only while it can prove it lags commits by less
// than a second; otherwise, or on a miss, the handler reads PostgreSQL
// and fills it. An entry holding a phone never outlives the phone, and
// the renderer checks the expiry again, so an expired phone is never
// shown. The renderer also cuts an answer to TRACKING_MAX_ORDERS_PER_EATER
// orders, whichever path the states came from.
//
// GET …/tracking/stream (DESIGN §4.4, stream.go, streamhttp.go) pushes the
// same answer as server-sent events. The cache's change feed tells the
// stream hub each change it applied (statecache Options.OnChange); the hub
// recomputes a named eater's answer once per change and language for all
// of the eater's streams, and again when the answer changes by itself (a
// phone's expiry, a finished order's 15 minutes, an experiments reload).
// Each stream keeps only its latest unwritten body, so a slow reader
// costs one body and holds up no one.
package trackingpresenter
