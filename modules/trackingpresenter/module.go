package trackingpresenter

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/trackingpresenter/internal/statecache"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/experiments"
	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/logging"
)

// Module is tracking-presenter: the app's tracking endpoint, its state
// cache and the experiments it reads. It needs a Phones (bound in
// modules/modules.go).
var Module = fx.Module("tracking-presenter",
	fx.Decorate(func(l *slog.Logger) *slog.Logger { return logging.ForModule(l, "tracking-presenter") }),
	experiments.AsDefinition(CallPicker.Definition()),
	experiments.AsDefinition(ContactUs.Definition()),
	fx.Provide(fx.Private, parseConfig, newMetrics, newStore, newStreamHub, newCache, newPresenter),
	fx.Invoke(runCache, runStreams),
	httpapi.AsOperations(func(p *presenter) httpapi.Operations { return p.register }),
)

type cacheParams struct {
	fx.In

	Platform config.Platform
	Config   Config
	Store    *store
	Registry prometheus.Registerer
	Hub      *streamHub
	Logger   *slog.Logger
}

// newCache returns the state cache, or nil when TRACKING_CACHE_ENTRIES=0.
func newCache(p cacheParams) (*statecache.Cache[orderState], error) {
	if p.Config.CacheEntries == 0 {
		return nil, nil
	}
	return statecache.New(statecache.Options[orderState]{
		Entries: p.Config.CacheEntries, MaxAge: p.Config.CacheMaxAge, DSN: p.Platform.DatabaseURL,
		Load: p.Store.loadAll, Registerer: p.Registry, Logger: p.Logger,
		OnChange: p.Hub.changed,
	})
}

type presenterParams struct {
	fx.In

	Config      Config
	Store       *store
	Experiments *experiments.Store
	Cache       *statecache.Cache[orderState]
	Hub         *streamHub
	Metrics     *presenterMetrics
	Logger      *slog.Logger
}

func newPresenter(p presenterParams) (*presenter, error) {
	texts, err := loadCatalog(messageFiles)
	if err != nil {
		return nil, err
	}
	pr := &presenter{
		store: p.Store, cache: p.Cache, hub: p.Hub,
		render:  renderer{texts: texts, experiments: p.Experiments, maxOrders: p.Config.MaxOrdersPerEater},
		log:     p.Logger,
		metrics: p.Metrics,
		now:     time.Now,
	}
	p.Hub.p = pr
	return pr, nil
}

// runCache keeps the cache's change feed and loader running from start to
// stop.
func runCache(lc fx.Lifecycle, c *statecache.Cache[orderState], logger *slog.Logger) {
	if c == nil {
		logger.Info("tracking cache off (TRACKING_CACHE_ENTRIES=0): every poll reads PostgreSQL")
		return
	}
	lc.Append(fx.Hook{OnStart: c.Start, OnStop: c.Stop})
}

// runStreams runs the streams' workers, and ends every stream when the
// drain starts: the hook is appended after the HTTP server's (it takes the
// *httpapi.Server), so fx runs it before the server's Shutdown, which
// would otherwise wait for the streams until its deadline.
func runStreams(lc fx.Lifecycle, h *streamHub, _ *httpapi.Server) {
	lc.Append(fx.Hook{OnStart: h.start, OnStop: h.shutdown})
}
