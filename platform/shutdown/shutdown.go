// Package shutdown shares one SHUTDOWN_TIMEOUT between the components that
// let in-flight work finish on stop (the HTTP server, then River), so the
// whole drain takes at most SHUTDOWN_TIMEOUT, not one timeout per component.
package shutdown

import (
	"context"
	"sync"
	"time"

	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/config"
)

// Grace is what the process may need after the drain budget ran out: River
// cancelling the jobs still running and the pools closing. fx's stop
// timeout is SHUTDOWN_TIMEOUT plus this; the orchestrator's grace period
// (Kubernetes terminationGracePeriodSeconds) should be at least as long.
const Grace = 10 * time.Second

// Budget is the drain deadline. Its clock starts when the first component
// asks for it, i.e. when stopping begins.
type Budget struct {
	timeout  time.Duration
	once     sync.Once
	deadline time.Time
}

// NewBudget returns a budget of timeout.
func NewBudget(timeout time.Duration) *Budget {
	return &Budget{timeout: timeout}
}

// Context bounds ctx by the shared drain deadline.
func (b *Budget) Context(ctx context.Context) (context.Context, context.CancelFunc) {
	b.once.Do(func() { b.deadline = time.Now().Add(b.timeout) })
	return context.WithDeadline(ctx, b.deadline)
}

// Timeout is the whole budget, for logs.
func (b *Budget) Timeout() time.Duration { return b.timeout }

// Module provides the budget from SHUTDOWN_TIMEOUT.
var Module = fx.Module("shutdown",
	fx.Provide(func(cfg config.Platform) *Budget { return NewBudget(cfg.ShutdownTimeout) }),
)
