package trackingpresenter

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform"
	"github.com/eats/eats-orders-tracking/platform/experiments"
	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// fakePhones stands in for picker-ingest's phone cache: it knows the
// phones it holds and records what it was asked.
type fakePhones map[tracking.PhoneKey]tracking.Phone

func (f fakePhones) LookupMany(_ context.Context, _ sqlx.QueryerContext, keys []tracking.PhoneKey, _ time.Time) (map[tracking.PhoneKey]tracking.Phone, error) {
	out := make(map[tracking.PhoneKey]tracking.Phone)
	for _, k := range keys {
		if p, ok := f[k]; ok {
			out[k] = p
		}
	}
	return out, nil
}

// fxtest smoke test: the module starts and stops with the platform and a
// Phones, and answers.
func TestModuleStartsAndStops(t *testing.T) {
	t.Parallel()
	var srv *httpapi.Server
	var db *sqlx.DB
	app := fxtest.New(t,
		pgtest.Inputs(pgtest.Env(t, map[string]string{"LOG_LEVEL": "warn", "SHUTDOWN_TIMEOUT": "5s"}), nil),
		platform.Module,
		fx.Provide(fx.Annotate(func() fakePhones { return fakePhones{} }, fx.As(new(Phones)))),
		// Another module's experiment in the shared file.
		experiments.AsDefinition(experiments.NewKey[any]("eats_orders_tracking_picker_statuses_timeout", nil).Definition()),
		Module,
		fx.Populate(&srv, &db),
	)
	app.RequireStart()
	_, err := db.Exec(`INSERT INTO orders (order_nr, eater_id, payload, event_at, first_event_at)
		VALUES ('o1', 'e1', '{"flow_type":"native","status":"created","place":{"id":"1","name":"P"}}', now(), now())`)
	require.NoError(t, err)
	// An answer may lag a commit by up to a second (the cache's bound).
	pgtest.Eventually(t, 5*time.Second, func() bool {
		req, err := http.NewRequest(http.MethodGet, "http://"+srv.Addr()+trackingPath, nil)
		require.NoError(t, err)
		req.Header.Set("X-Eats-User", "user_id=e1")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		return strings.Contains(string(body), `"title":"Заказ оформлен"`)
	}, "the order is listed")
	app.RequireStop()
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig(nil)
	require.NoError(t, err)
	require.Equal(t, Config{CacheEntries: 500000, CacheMaxAge: 5 * time.Minute, MaxOrdersPerEater: 50,
		StreamsMax: 10000, StreamsPerEater: 5, StreamMaxAge: 10 * time.Minute}, cfg)
	for env, bad := range map[string][]string{
		"TRACKING_STREAMS_MAX":       {"0", "-1"},
		"TRACKING_STREAMS_PER_EATER": {"0", "x"},
		"TRACKING_STREAM_MAX_AGE":    {"500ms", "25h"},
	} {
		for _, v := range bad {
			_, err = parseConfig(map[string]string{env: v})
			require.ErrorContains(t, err, env, v)
		}
	}
	_, err = parseConfig(map[string]string{"TRACKING_CACHE_ENTRIES": "-1"})
	require.ErrorContains(t, err, "TRACKING_CACHE_ENTRIES")
	for _, bad := range []string{"0", "-1", "many"} {
		_, err = parseConfig(map[string]string{"TRACKING_MAX_ORDERS_PER_EATER": bad})
		require.ErrorContains(t, err, "TRACKING_MAX_ORDERS_PER_EATER", bad)
	}
	cfg, err = parseConfig(map[string]string{"TRACKING_MAX_ORDERS_PER_EATER": "1"})
	require.NoError(t, err)
	require.Equal(t, 1, cfg.MaxOrdersPerEater)
}
