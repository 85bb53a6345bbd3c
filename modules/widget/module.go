package widget

import (
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/web"
)

// prefix is where the widget is served.
const prefix = "/app/"

// Module mounts the widget and the /app redirect on the service's mux.
var Module = fx.Module("widget",
	httpapi.AsHandler(func() (httpapi.Handler, error) {
		s, err := newSite(web.Dist())
		if err != nil {
			return httpapi.Handler{}, err
		}
		return httpapi.Handler{Pattern: "GET " + prefix, Handler: s}, nil
	}),
	httpapi.AsHandler(func() httpapi.Handler {
		return httpapi.Handler{Pattern: "GET /app", Handler: redirect{}}
	}),
)
