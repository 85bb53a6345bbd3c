package trackingpresenter

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/eats/eats-orders-tracking/modules/trackingpresenter/internal/statecache"
)

// trackingPath is the app's tracking endpoint.
const trackingPath = "/eats/v1/eats-orders-tracking/v1/tracking"

type trackingInput struct {
	EatsUser   string `header:"X-Eats-User" doc:"Set by the API gateway: comma-separated k=v pairs; the eater is user_id (or partner_user_id). Consulted first: when it names an eater, X-YaTaxi-User is neither read nor validated; when it holds only other keys, X-YaTaxi-User is consulted. Malformed, or an empty id: 400." example:"user_id=12345, personal_phone_id=abc"`
	YaTaxiUser string `header:"X-YaTaxi-User" doc:"Set by the API gateway: comma-separated k=v pairs; the eater is eats_user_id. Consulted only when X-Eats-User is absent or names no eater; then malformed, or an empty id: 400." example:"eats_user_id=12345"`
	Language   string `header:"X-Request-Language" doc:"en or en-* for English; anything else, or nothing, for Russian." example:"ru"`
}

type trackingOutput struct {
	CacheControl string `header:"Cache-Control" doc:"always no-store"`
	Body         trackingResponse
}

// presenter answers the tracking endpoint.
type presenter struct {
	store   *store
	cache   *statecache.Cache[orderState] // nil: off
	hub     *streamHub
	render  renderer
	log     *slog.Logger
	metrics *presenterMetrics
	now     func() time.Time
	// beforeMemoStore, when set (tests), runs between building an answer
	// and storing it on the cache entry it was built from.
	beforeMemoStore func(eater string)
}

func (p *presenter) register(api huma.API) {
	huma.Register(api, huma.Operation{
		OperationID: "getTracking",
		Method:      http.MethodGet,
		Path:        trackingPath,
		Summary:     "The eater's tracked orders",
		Description: "What the app shows for each of the eater's active orders (and those finished less than 15 minutes ago): " +
			"title, description, buttons and banners. " +
			"At most TRACKING_MAX_ORDERS_PER_EATER orders (50 unless configured otherwise): when an eater has more, " +
			"active orders are kept before finished ones, newest (by createdAt) first, and the kept ones are shown in the usual order; " +
			"meta.count counts what is shown. The eater comes from the gateway's identity headers, consulted in order (X-Eats-User, then X-YaTaxi-User) until one names an eater; without one the list is empty. " +
			"Poll again after meta.checkAfter seconds.",
		Errors:      []int{http.StatusBadRequest, http.StatusInternalServerError},
		Middlewares: huma.Middlewares{p.fastPath(api)},
		Responses: map[string]*huma.Response{
			"200": {
				Description: "The tracked orders, possibly none.",
				Content:     map[string]*huma.MediaType{"application/json": {Example: exampleResponse()}},
			},
		},
	}, p.get)
	p.registerStream(api)
}

func (p *presenter) get(ctx context.Context, in *trackingInput) (*trackingOutput, error) {
	out := &trackingOutput{CacheControl: "no-store"}
	out.Body.Meta.CheckAfter = checkAfterSeconds
	out.Body.Payload.TrackedOrders = []trackedOrder{}
	eater, err := eaterID(in.EatsUser, in.YaTaxiUser)
	if err != nil {
		return nil, identityProblem(err)
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
	var capped bool
	out.Body.Payload.TrackedOrders, capped = p.render.render(eater, states, languageOf(in.Language), now)
	if capped {
		p.metrics.capped.Inc()
	}
	out.Body.Meta.Count = len(out.Body.Payload.TrackedOrders)
	return out, nil
}

// identityProblem is the 400 of a malformed identity header, naming the
// header and never echoing its value.
func identityProblem(err error) error {
	var idErr *identityError
	if errors.As(err, &idErr) {
		return huma.Error400BadRequest("malformed identity header", &huma.ErrorDetail{
			Location: "header." + idErr.header, Message: idErr.reason,
		})
	}
	return err
}

// states returns the eater's order states: from the cache when it holds a
// fresh entry, else from PostgreSQL (one query, plus the phone lookup of
// orders that may show P2), which then fills the cache.
func (p *presenter) states(ctx context.Context, eater string, now time.Time) ([]orderState, error) {
	if p.cache == nil {
		p.metrics.cache.WithLabelValues(cacheOff).Inc()
		return p.store.load(ctx, eater, now)
	}
	states, res := p.cache.Get(eater, now)
	p.metrics.cache.WithLabelValues(string(res)).Inc()
	if res == statecache.Hit {
		return states, nil
	}
	tok := p.cache.Begin()
	states, err := p.store.load(ctx, eater, now)
	if err != nil {
		return nil, err
	}
	p.cache.Put(eater, tok, states, now)
	return states, nil
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
