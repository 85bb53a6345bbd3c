package trackingpresenter

import (
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/experiments"
	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/logging"
)

// pingEvery is the change feed's heartbeat interval: the cache is fresh
// enough to serve while the last heartbeat is younger than maxLag.
const pingEvery = 200 * time.Millisecond

// Module is tracking-presenter: the app's tracking endpoint and the
// experiments it reads.
var Module = fx.Module("tracking-presenter",
	fx.Decorate(func(l *slog.Logger) *slog.Logger { return logging.ForModule(l, "tracking-presenter") }),
	experiments.AsDefinition(CallPicker.Definition()),
	experiments.AsDefinition(ContactUs.Definition()),
	fx.Provide(fx.Private, parseConfig, newCache, newPresenterMetrics, newPresenter),
	fx.Invoke(runCache),
	httpapi.AsOperations(func(p *presenter) httpapi.Operations { return p.register }),
)

// newCache returns the state cache, or nil when TRACKING_CACHE_ENTRIES=0.
func newCache(cfg Config) *stateCache {
	if cfg.CacheEntries == 0 {
		return nil
	}
	return newStateCache(cfg.CacheEntries, maxLag, cfg.CacheMaxAge)
}

type presenterParams struct {
	fx.In

	DB          *sqlx.DB
	Phones      *pickeringest.PhoneLookup
	Experiments *experiments.Store
	Cache       *stateCache
	Metrics     *presenterMetrics
	Logger      *slog.Logger
}

func newPresenter(p presenterParams) (*presenter, error) {
	texts, err := loadCatalog(messageFiles)
	if err != nil {
		return nil, err
	}
	return &presenter{
		db: p.DB, orders: &ordersStmt{db: p.DB}, phones: p.Phones, cache: p.Cache,
		render:  renderer{texts: texts, experiments: p.Experiments},
		log:     p.Logger,
		metrics: p.Metrics,
		now:     time.Now,
	}, nil
}

type cacheParams struct {
	fx.In

	Lifecycle fx.Lifecycle
	Platform  config.Platform
	Config    Config
	Cache     *stateCache
	Presenter *presenter
	Logger    *slog.Logger
}

// runCache keeps the cache's change feed and loader running from start to
// stop. The loader stops first: it uses the feed's cache.
func runCache(p cacheParams) {
	if p.Cache == nil {
		p.Logger.Info("tracking cache off (TRACKING_CACHE_ENTRIES=0): every poll reads PostgreSQL")
		return
	}
	f := newChangeFeed(p.Platform.DatabaseURL, p.Cache, p.Logger, pingEvery)
	l := newLoader(p.Presenter, p.Logger, p.Config.CacheMaxAge)
	f.listening = l.request
	p.Lifecycle.Append(fx.Hook{OnStart: f.Start, OnStop: f.Stop})
	p.Lifecycle.Append(fx.Hook{OnStart: l.Start, OnStop: l.Stop})
}
