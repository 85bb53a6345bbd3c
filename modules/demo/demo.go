// Package demo walks a few orders of eater "demo" through every state of
// DESIGN §4.2 on the running service: a simulated procaas inserts River jobs
// into both event queues, and a simulated eats-picker-orders (pickerfake on
// loopback) answers the picker updater. `eats-orders-tracking demo` runs it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/orderingest"
	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/modules/pickerupdater/pickerfake"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// demoEater is the customer whose orders the demo walks.
const demoEater = "demo"

// demoDatabase is used when DATABASE_URL is not set, so the demo never
// mixes its orders into the database `serve` uses by default.
const demoDatabase = "postgres://root@127.0.0.1:5432/eats_orders_tracking_demo?sslmode=disable"

// demoExperiments turns both picker cards on and lets the updater refresh
// a picker order after 5 s of quiet (scaled by the demo's speed, at least
// 1 s), so the fallback shows within the walk.
const demoExperiments = `# written by "eats-orders-tracking demo"
experiments:
  eats_orders_tracking_picker_statuses_timeout:
    default:
      - {status: new, timeout: %[1]d}
      - {status: assigned, timeout: %[1]d}
      - {status: picking, timeout: %[1]d}
      - {status: picked_up, timeout: %[1]d}
  eats_orders_tracking_retail_call_picker:
    default: {enabled: true}
  eats_orders_tracking_retail_contact_us:
    default: {enabled: true}
`

// New prepares a demo for environ: DEMO_SPEED (default 1) compresses the
// clock. Serve the service with Env plus Option; Close when done. It
// serves the whole service plus a simulated procaas and eats-picker-orders
// and walks a few orders of eater "demo" through every state.
func New(environ config.Environment, stdout io.Writer) (*Run, error) {
	speed := 1.0
	if s, ok := environ.Lookup("DEMO_SPEED"); ok && s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 || v > 1000 {
			return nil, fmt.Errorf("DEMO_SPEED: must be a number in (0, 1000] (got %q)", s)
		}
		speed = v
	}
	return newRun(environ, stdout, speed)
}

// Run is one demo: its environment, the fake upstream and the walk.
type Run struct {
	Env config.Environment
	// AfterStep, when set, runs after each step (tests await the step's
	// expected states here); the walk goes on when it returns.
	AfterStep func(ctx context.Context, s demoStep)

	out    io.Writer
	speed  float64
	fake   *pickerfake.Server
	tmpDir string
	steps  []demoStep
	// statusAt is when each order's picker status last changed: a phone
	// event keeps it, as eats-picker-orders' status_updated_at does.
	statusAt map[string]time.Time
	done     chan struct{}
	stopped  sync.Once
}

// newRun starts the fake eats-picker-orders and prepares the environment:
// PICKER_ORDERS_URL points at the fake, and unless set, the updater runs
// every 2 s, the experiments come from a demo file, the database is the
// demo's own and logs are quiet enough to read the walk.
func newRun(environ config.Environment, out io.Writer, speed float64) (*Run, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: listen for the fake eats-picker-orders: %w", err)
	}
	fake := pickerfake.New()
	fake.Serve(l)
	d := &Run{out: out, speed: speed, fake: fake, done: make(chan struct{})}
	d.tmpDir, err = os.MkdirTemp("", "eot-demo-")
	if err != nil {
		fake.Close()
		return nil, fmt.Errorf("demo: temp dir: %w", err)
	}
	experimentsFile := filepath.Join(d.tmpDir, "experiments.yaml")
	timeout := max(1, int(5/speed))
	if err := os.WriteFile(experimentsFile, fmt.Appendf(nil, demoExperiments, timeout), 0o600); err != nil {
		d.Close()
		return nil, fmt.Errorf("demo: write experiments: %w", err)
	}
	defaults := map[string]string{
		"DATABASE_URL":            demoDatabase,
		"EXPERIMENTS_FILE":        experimentsFile,
		"PICKER_UPDATER_INTERVAL": "2s",
		"LOG_LEVEL":               "warn",
	}
	env := config.Environment{}
	for k, v := range defaults {
		if cur, ok := environ.Lookup(k); !ok || cur == "" {
			env[k] = v
		}
	}
	env["PICKER_ORDERS_URL"] = fake.URL()
	d.Env = environ.With(env)
	d.steps = demoSteps(newDemoOrders(time.Now()))
	d.statusAt = make(map[string]time.Time)
	return d, nil
}

// Close stops the fake and removes the demo's files.
func (d *Run) Close() {
	d.fake.Close()
	if d.tmpDir != "" {
		_ = os.RemoveAll(d.tmpDir)
	}
}

// Done is closed when the walk has finished (or was stopped).
func (d *Run) Done() <-chan struct{} { return d.done }

// Option starts the walk once the service is up and stops it first on
// shutdown.
func (d *Run) Option() fx.Option {
	return fx.Invoke(func(lc fx.Lifecycle, client *queue.Client, db *sqlx.DB, srv *httpapi.Server, logger *slog.Logger) {
		ctx, cancel := context.WithCancel(context.Background())
		lc.Append(fx.Hook{
			OnStart: func(startCtx context.Context) error {
				if err := d.forgetEarlierRuns(startCtx, db); err != nil {
					cancel()
					return err
				}
				d.banner(srv.Addr())
				go func() {
					defer d.stopped.Do(func() { close(d.done) })
					if err := d.walk(ctx, client); err != nil && !errors.Is(err, context.Canceled) {
						logger.Error("demo walk stopped", "err", err)
						fmt.Fprintf(d.out, "demo: the walk stopped: %v\n", err)
					}
				}()
				return nil
			},
			OnStop: func(stopCtx context.Context) error {
				cancel()
				select {
				case <-d.done:
				case <-stopCtx.Done():
				}
				return nil
			},
		})
	})
}

// forgetEarlierRuns deletes eater demo's orders of earlier runs, so a
// restarted demo starts from an empty list (finished orders otherwise stay
// listed for 15 minutes).
func (d *Run) forgetEarlierRuns(ctx context.Context, db *sqlx.DB) error {
	const q = `
WITH gone AS (
    DELETE FROM orders WHERE eater_id = $1 RETURNING order_nr
), phones AS (
    DELETE FROM picker_phones WHERE order_nr IN (SELECT order_nr FROM gone)
)
DELETE FROM picker_orders WHERE order_nr IN (SELECT order_nr FROM gone)`
	if _, err := db.ExecContext(ctx, q, demoEater); err != nil {
		return fmt.Errorf("demo: forget earlier demo orders: %w", err)
	}
	return nil
}

func (d *Run) banner(addr string) {
	port := "8080"
	if _, p, err := net.SplitHostPort(addr); err == nil {
		port = p
	}
	total := d.scaled(d.steps[len(d.steps)-1].At)
	fmt.Fprintf(d.out, `
eats-orders-tracking demo: eater %q, %d orders, about %s

  open  %s
%s
  simulated procaas:            River jobs into %s and %s
  simulated eats-picker-orders: %s (the picker updater polls it every %s)
  Ctrl-C stops the demo.

`, demoEater, 4, total.Round(time.Second), demoURL(port, d.speed), demoSpeedNote(d.speed),
		pickeringest.Kind, orderingest.Kind, d.fake.URL(), d.Env["PICKER_UPDATER_INTERVAL"])
}

// demoPoll is how often the widget polls (meta.checkAfter, DESIGN §4.1);
// at speed 1 every state of the walk lasts at least this long for some
// order (TestDemoStatesLastAPoll).
const demoPoll = 15 * time.Second

// demoURL is the page to open. Faster than speed 1 the states change
// quicker than the service's checkAfter, so the page is told to poll every
// 15 s / speed (each state lasts at least that long for some order):
// ?poll=<seconds>, the widget's local-only override (whole seconds, ≥ 1).
func demoURL(port string, speed float64) string {
	u := fmt.Sprintf("http://localhost:%s/app/?eater=%s", port, demoEater)
	if speed <= 1 {
		return u
	}
	return fmt.Sprintf("%s&poll=%d", u, max(1, int(demoPoll.Seconds()/speed)))
}

// demoSpeedNote says when states pass quicker than the fastest poll.
func demoSpeedNote(speed float64) string {
	if demoPoll.Seconds()/speed >= 1 {
		return ""
	}
	return "  (at this DEMO_SPEED states last under a second: the page skips some; the log below has them all)\n"
}

func (d *Run) scaled(at time.Duration) time.Duration {
	return time.Duration(float64(at) / d.speed)
}

// walk runs the steps at their (scaled) times.
func (d *Run) walk(ctx context.Context, client *queue.Client) error {
	start := time.Now()
	for _, s := range d.steps {
		t := time.NewTimer(time.Until(start.Add(d.scaled(s.At))))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		for _, ev := range s.Events {
			if err := d.send(ctx, client, ev); err != nil {
				return err
			}
		}
		fmt.Fprintf(d.out, "[%s] %s %s\n", fmtClock(time.Since(start)), s.Order, s.Say)
		if d.AfterStep != nil {
			d.AfterStep(ctx, s)
		}
	}
	fmt.Fprintf(d.out, "[%s] the walk is over; the service keeps running (Ctrl-C stops it, run the demo again to replay)\n",
		fmtClock(time.Since(start)))
	return nil
}

func fmtClock(d time.Duration) string {
	s := int(d.Seconds())
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// send inserts one event as a River job, as procaas and the order
// pipeline do, and keeps the fake eats-picker-orders in step with the
// picker events (it is where procaas' events come from). A lost event is
// only known to the fake: the updater finds it there.
func (d *Run) send(ctx context.Context, client *queue.Client, ev demoEvent) error {
	now := time.Now().UTC()
	switch {
	case ev.Order != nil:
		args := *ev.Order
		args.EaterID = demoEater
		args.CreatedAt = now.Format(time.RFC3339Nano)
		if args.Status != tracking.OrderDelivered && args.Status != tracking.OrderCancelled {
			args.ETA = now.Add(35 * time.Minute).Format(time.RFC3339)
		}
		if _, err := client.Insert(ctx, args, nil); err != nil {
			return fmt.Errorf("demo: insert order event %s: %w", args.OrderNr, err)
		}
	case ev.Picker != nil:
		p := ev.Picker
		if p.Phone == "" || d.statusAt[p.OrderNr].IsZero() {
			d.statusAt[p.OrderNr] = now
		}
		fo := pickerfake.Order{Status: string(p.Status), PickerID: p.PickerID, StatusUpdatedAt: d.statusAt[p.OrderNr], PlaceID: 40}
		if p.Phone != "" {
			fo.Phone, fo.PhoneExpiresAt = p.Phone, now.Add(time.Hour)
		}
		d.fake.Set(p.OrderNr, fo)
		if p.Lost {
			return nil
		}
		args := pickeringest.PickerOrderArgs{
			EventType: tracking.EventStatusChange, OrderNr: p.OrderNr, OrderStatus: p.Status,
			PlaceID: "40", CustomerID: demoEater, PickerID: p.PickerID, CreatedAt: now,
		}
		if p.Phone != "" {
			args.EventType = tracking.EventPickerPhoneForwardingReady
			args.CustomerPickerPhoneForwarding = &pickeringest.Forwarding{Phone: p.Phone, ExpiresAt: fo.PhoneExpiresAt}
		}
		if _, err := client.Insert(ctx, args, nil); err != nil {
			return fmt.Errorf("demo: insert picker event %s: %w", p.OrderNr, err)
		}
	}
	return nil
}
