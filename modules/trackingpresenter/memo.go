package trackingpresenter

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/eats/eats-orders-tracking/modules/trackingpresenter/internal/statecache"
)

// Compute once, serve many: an eater's answer changes only when its cache
// entry does (a change the feed applied) or at a time its states say
// (a phone's expiry, a finished order's 15-minute mark), so it is rendered
// and encoded once per entry, language and experiments version, kept on
// the entry (statecache's derived values, dropped with the entry), and
// those bytes go to every poll and every stream of the eater.

// Results of the memo, the label of eot_tracking_answer_memo_total.
const (
	memoHit  = "hit"  // served pre-encoded bytes
	memoMiss = "miss" // rendered and encoded for this answer
)

// emptyAnswer is the body of an eater without listed orders: the same
// whatever the language and the experiments.
var emptyAnswer = append(encodeAnswer(nil), '\n')

// memoKey names an answer on the entry: the language and the experiments
// version it was rendered with (a reload is a new key, so bytes rendered
// with the old set are never served after it is noticed).
func (p *presenter) memoKey(lang language) string {
	var v int64
	if p.render.experiments != nil {
		v = p.render.experiments.LoadedAt().UnixNano()
	}
	return string(lang) + "@" + strconv.FormatInt(v, 36)
}

// answer is the eater's answer at now in lang, encoded as the polling body
// (huma's bytes, trailing newline included), and the states it was built
// from. With the cache on it comes from the memo when the entry holds it;
// otherwise it is built, and stored on the entry it was built from if
// that is still the eater's. onlyHit leaves a state-cache miss to the
// caller (ok false, nothing counted): the polling route lets huma answer
// it as before.
func (p *presenter) answer(ctx context.Context, eater string, lang language, now time.Time, onlyHit bool) (body []byte, states []orderState, ok bool, err error) {
	if p.cache == nil {
		if onlyHit {
			return nil, nil, false, nil
		}
		if states, err = p.states(ctx, eater, now); err != nil {
			return nil, nil, false, err
		}
		return p.encode(eater, states, lang, now), states, true, nil
	}
	key := p.memoKey(lang)
	states, body, ref, res := p.cache.Lookup(eater, key, now)
	if res != statecache.Hit {
		if onlyHit {
			return nil, nil, false, nil
		}
		p.metrics.cache.WithLabelValues(string(res)).Inc()
		tok := p.cache.Begin()
		if states, err = p.store.load(ctx, eater, now); err != nil {
			return nil, nil, false, err
		}
		ref, _ = p.cache.Put(eater, tok, states, now)
	} else {
		p.metrics.cache.WithLabelValues(string(res)).Inc()
	}
	switch {
	case body != nil:
		p.metrics.memo.WithLabelValues(memoHit).Inc()
		p.countCapped(states, now)
		return body, states, true, nil
	case len(states) == 0:
		p.metrics.memo.WithLabelValues(memoHit).Inc()
		return emptyAnswer, states, true, nil
	}
	p.metrics.memo.WithLabelValues(memoMiss).Inc()
	body = p.encode(eater, states, lang, now)
	if p.beforeMemoStore != nil {
		p.beforeMemoStore(eater)
	}
	// Refused when a change replaced the entry meanwhile: this answer
	// shows the states as they were when it was asked, as any answer
	// computed then would, but is not kept past the change.
	p.cache.SetDerived(ref, key, body, now, nextChange(states, now))
	return body, states, true, nil
}

// encode renders and encodes the answer as huma does.
func (p *presenter) encode(eater string, states []orderState, lang language, now time.Time) []byte {
	orders, capped := p.render.render(eater, states, lang, now)
	if capped {
		p.metrics.capped.Inc()
	}
	return append(encodeAnswer(orders), '\n')
}

// countCapped counts an answer served from the memo that was cut, as
// rendering it would have (eot_tracking_answers_capped_total counts
// answers, not renders).
func (p *presenter) countCapped(states []orderState, now time.Time) {
	if len(states) <= p.render.maxOrders {
		return // the usual case
	}
	n := 0
	for i := range states {
		if states[i].visible(now) {
			n++
		}
	}
	if n > p.render.maxOrders {
		p.metrics.capped.Inc()
	}
}

// nextChange is the earliest time after now the answer of states changes
// with no change committed: a shown phone's expiry (or the end of the copy
// it was read from), a finished order leaving the list. Zero: none.
func nextChange(states []orderState, now time.Time) time.Time {
	var next time.Time
	for i := range states {
		o := &states[i]
		if at, ok := o.PhoneExpiry(); ok && at.After(now) {
			next = earliestAfter(next, at)
		}
		if o.Status.Finished() {
			if gone := o.EventAt.Add(finishedVisible); gone.After(now) {
				next = earliestAfter(next, gone)
			}
		}
	}
	return next
}

// fastPath is the polling route's middleware: an answer whose states the
// cache holds is written from its pre-encoded bytes, exactly as huma would
// write it (status, Content-Type, Cache-Control, body with its newline),
// past huma's per-request encoding. Everything else (identity errors, no
// identity, the cache off or missing, a format other than JSON) goes on
// to the operation as before. It runs inside the route's handler, so the
// request metrics and the trace name it as any other request of the route.
func (p *presenter) fastPath(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		if p.cache == nil {
			next(ctx)
			return
		}
		eater, err := eaterID(ctx.Header("X-Eats-User"), ctx.Header("X-YaTaxi-User"))
		if err != nil || eater == "" {
			next(ctx)
			return
		}
		if ct, err := api.Negotiate(ctx.Header("Accept")); err != nil || ct != jsonType {
			next(ctx)
			return
		}
		body, _, ok, _ := p.answer(ctx.Context(), eater, languageOf(ctx.Header("X-Request-Language")), p.now(), true)
		if !ok {
			next(ctx)
			return
		}
		ctx.SetHeader("Cache-Control", "no-store")
		ctx.SetHeader("Content-Type", jsonType)
		ctx.SetStatus(http.StatusOK)
		_, _ = ctx.BodyWriter().Write(body)
	}
}

// jsonType is the polling body's media type, as huma negotiates it.
const jsonType = "application/json"
