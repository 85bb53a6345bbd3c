package trackingpresenter

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eats/eats-orders-tracking/platform/metrics"
)

// Path is the app's tracking endpoint.
const Path = "/eats/v1/eats-orders-tracking/v1/tracking"

// maxLag is how far an answer may lag the last committed change (the
// issue's bound: one second), with room for the heartbeat's own trip. It
// also bounds an entry holding a phone filled right after a change (see
// stateCache.raceWindow).
const maxLag = 900 * time.Millisecond

type trackingInput struct {
	EatsUser   string `header:"X-Eats-User" doc:"Set by the API gateway: comma-separated k=v pairs; the eater is user_id (or partner_user_id). Wins over X-YaTaxi-User." example:"user_id=12345, personal_phone_id=abc"`
	YaTaxiUser string `header:"X-YaTaxi-User" doc:"Set by the API gateway: comma-separated k=v pairs; the eater is eats_user_id." example:"eats_user_id=12345"`
	Language   string `header:"X-Request-Language" doc:"en or en-* for English; anything else, or nothing, for Russian." example:"ru"`
}

type trackingOutput struct {
	CacheControl string `header:"Cache-Control" doc:"always no-store"`
	Body         TrackingResponse
}

// presenter answers the tracking endpoint.
type presenter struct {
	db      *sqlx.DB
	orders  *ordersStmt
	phones  phoneLookup
	cache   *stateCache // nil: off
	render  renderer
	log     *slog.Logger
	metrics *presenterMetrics
	now     func() time.Time
}

func (p *presenter) register(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "getTracking",
		Method:      http.MethodGet,
		Path:        Path,
		Summary:     "The eater's tracked orders",
		Description: "What the app shows for each of the eater's active orders (and those finished less than 15 minutes ago): " +
			"title, description, buttons and banners. The eater comes from the gateway's identity headers; without one the list is empty. " +
			"Poll again after meta.checkAfter seconds.",
		Errors: []int{http.StatusBadRequest, http.StatusInternalServerError},
		Responses: map[string]*huma.Response{
			"200": {
				Description: "The tracked orders, possibly none.",
				Content:     map[string]*huma.MediaType{"application/json": {Example: exampleResponse()}},
			},
		},
	}, p.get)
}

func (p *presenter) get(ctx context.Context, in *trackingInput) (*trackingOutput, error) {
	out := &trackingOutput{CacheControl: "no-store"}
	out.Body.Meta.CheckAfter = checkAfterSeconds
	out.Body.Payload.TrackedOrders = []TrackedOrder{}
	eater, err := eaterID(in.EatsUser, in.YaTaxiUser)
	var idErr *identityError
	if errors.As(err, &idErr) {
		return nil, huma.Error400BadRequest("malformed identity header", &huma.ErrorDetail{
			Location: "header." + idErr.header, Message: idErr.reason,
		})
	}
	if eater == "" {
		return out, nil
	}
	now := p.now()
	states, err := p.states(ctx, eater, now)
	if err != nil {
		if ctx.Err() == nil {
			p.log.ErrorContext(ctx, "tracking: read orders", "err", err)
		}
		return nil, huma.Error500InternalServerError("tracking is unavailable, try again")
	}
	out.Body.Payload.TrackedOrders = p.render.render(eater, states, languageOf(in.Language), now)
	out.Body.Meta.Count = len(out.Body.Payload.TrackedOrders)
	return out, nil
}

// states returns the eater's order states: from the cache when it holds a
// fresh entry, else from PostgreSQL (one query, plus the phone lookup of
// orders that may show P2), which then fills the cache.
func (p *presenter) states(ctx context.Context, eater string, now time.Time) ([]orderState, error) {
	if p.cache == nil {
		p.metrics.cache.WithLabelValues(string(cacheOff)).Inc()
		return p.load(ctx, eater, now)
	}
	states, res := p.cache.get(eater, now)
	p.metrics.cache.WithLabelValues(string(res)).Inc()
	if res == cacheHit {
		return states, nil
	}
	tok := p.cache.begin()
	states, err := p.load(ctx, eater, now)
	if err != nil {
		return nil, err
	}
	p.cache.put(eater, tok, states, now, p.expiry(states))
	return states, nil
}

func (p *presenter) load(ctx context.Context, eater string, now time.Time) ([]orderState, error) {
	states, err := p.orders.selectOrders(ctx, eater, now.Add(-finishedVisible))
	if err != nil {
		return nil, err
	}
	if err := attachPhones(ctx, p.phones, p.db, states, now); err != nil {
		return nil, err
	}
	return states, nil
}

// expiry is when states stop being right with no change at all: when a
// shown phone expires. Zero: only a change can make them wrong. (A
// finished order leaving the list after 15 minutes needs no expiry: render
// drops it.)
func (p *presenter) expiry(states []orderState) time.Time {
	var until time.Time
	for i := range states {
		if ph := states[i].phone(); ph != nil {
			until = earliest(until, ph.ExpiresAt)
		}
	}
	return until
}

// earliest returns the earlier of a and b, a zero a meaning "none yet".
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

type presenterMetrics struct {
	cache *prometheus.CounterVec
}

func newPresenterMetrics(reg prometheus.Registerer, c *stateCache) (*presenterMetrics, error) {
	m := &presenterMetrics{cache: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "tracking", Name: "state_cache_total",
		Help: "Tracking requests by where the state came from: hit (memory), miss (no valid entry), behind (change feed not proven fresh: database), off (cache disabled).",
	}, []string{"result"})}
	for _, r := range []cacheResult{cacheHit, cacheMiss, cacheBehind, cacheOff} {
		m.cache.WithLabelValues(string(r))
	}
	collectors := []prometheus.Collector{m.cache}
	if c != nil {
		collectors = append(collectors,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: metrics.Namespace, Subsystem: "tracking", Name: "change_feed_lag_seconds",
				Help: "How far behind committed changes the tracking cache may be; -1 while unproven (the cache is then bypassed).",
			}, func() float64 {
				l := c.lag(time.Now())
				if l < 0 {
					return -1
				}
				return l.Seconds()
			}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Namespace: metrics.Namespace, Subsystem: "tracking", Name: "state_cache_entries",
				Help: "Eaters whose tracking state this replica holds in memory.",
			}, func() float64 { return float64(c.size()) }),
		)
	}
	for _, col := range collectors {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// exampleResponse is the OpenAPI example: a retail order in P2.
func exampleResponse() any {
	const example = `{
  "meta": {"checkAfter": 15, "count": 1},
  "payload": {"trackedOrders": [{
    "order": {"orderNr": "230101-100001", "flowType": "retail", "status": "place_confirmed",
              "createdAt": "2026-01-01T10:00:00Z", "eta": "2026-01-01T11:00:00Z"},
    "status": "picker_call",
    "title": "Забыли самое нужное?",
    "description": "Просто позвоните сборщику и попросите добавить товар в заказ",
    "actions": [{"type": "call", "title": "Позвонить сборщику",
                 "payload": {"contact_type": "picker", "phone": "+79991234567,123"}}],
    "banners": {"design": "wide_and_short",
                "banners": [{"id": "retail_forgot_item", "kind": "info",
                             "text": "Позвони нам, если забыл что-то купить. Мы все сделаем",
                             "appLink": ""}]},
    "place": {"id": "40", "name": "Перекрёсток"},
    "checkAfter": 15
  }]}
}`
	var v any
	if err := json.Unmarshal([]byte(example), &v); err != nil {
		panic(err) // a constant: caught by any test that builds the API
	}
	return v
}
