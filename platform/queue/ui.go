package queue

import (
	"context"
	"fmt"
	"log/slog"

	"go.uber.org/fx"
	"riverqueue.com/riverui"

	"github.com/eats/eats-orders-tracking/platform/httpapi"
)

// UIPrefix is where River's job dashboard is mounted.
const UIPrefix = "/riverui"

// NewUI builds River's job dashboard as an internal handler: it has no auth
// of its own, so the internal token guards it.
func NewUI(lc fx.Lifecycle, client *Client, logger *slog.Logger) (httpapi.Handler, error) {
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    logger.With("component", "riverui"),
		Prefix:    UIPrefix,
	})
	if err != nil {
		return httpapi.Handler{}, fmt.Errorf("queue: riverui: %w", err)
	}
	// The start context ends after start-up, so the dashboard gets its own,
	// cancelled on stop so its goroutines end with the app.
	uiCtx, cancel := context.WithCancel(context.Background())
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			return h.Start(uiCtx)
		},
		OnStop: func(context.Context) error {
			cancel()
			return nil
		},
	})
	return httpapi.Handler{Pattern: UIPrefix + "/", Handler: h, Internal: true}, nil
}

// UIModule mounts the dashboard.
var UIModule = fx.Module("riverui", httpapi.AsHandler(NewUI))
