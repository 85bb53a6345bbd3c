// Command eats-orders-tracking serves the order-tracking API and works the
// picker and order queues. Subcommands:
//
//	serve                      migrate, then run everything (the default)
//	migrate up|down|status     manage the schema
//	openapi                    print the OpenAPI document (YAML)
//	experiments validate FILE  check an experiments file without starting
//	demo                       serve plus simulated producers (see README)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"go.uber.org/dig"
	"go.uber.org/fx"

	"github.com/danielgtaylor/huma/v2"

	"github.com/eats/eats-orders-tracking/migrations"
	"github.com/eats/eats-orders-tracking/modules"
	"github.com/eats/eats-orders-tracking/modules/demo"
	"github.com/eats/eats-orders-tracking/platform"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/experiments"
	"github.com/eats/eats-orders-tracking/platform/gctune"
	"github.com/eats/eats-orders-tracking/platform/logging"
	"github.com/eats/eats-orders-tracking/platform/migrate"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/postgres"
)

const usage = `usage: eats-orders-tracking [command]

commands:
  serve                       migrate, then run the service (default)
  migrate up|down|status      manage the database schema
  openapi                     print the OpenAPI document as YAML
  experiments validate FILE   check an experiments file
  demo                        serve plus simulated producers for a walkthrough
`

func main() {
	os.Exit(run(os.Args[1:], config.FromOS(), os.Stdout, os.Stderr))
}

func run(args []string, environ config.Environment, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	if err := dispatch(cmd, args, environ, stdout, stderr); err != nil {
		// dig wraps a constructor's error in the whole chain of what needed
		// it; the operator needs only the cause ("CLEANUP_BATCH_SIZE: …").
		fmt.Fprintf(stderr, "eats-orders-tracking %s: %v\n", cmd, dig.RootCause(err))
		return 1
	}
	return 0
}

func dispatch(cmd string, args []string, environ config.Environment, stdout, stderr io.Writer) error {
	switch cmd {
	case "serve", "demo", "migrate":
		// Checked before the graph is built: fx's logger needs this config,
		// and without a logger fx prints its whole wiring to stderr.
		if _, err := config.ParsePlatform(environ); err != nil {
			return err
		}
	}
	switch cmd {
	case "serve":
		return serve(fx.Options(graph(environ), platform.Serve(environ)))
	case "demo":
		return demoCmd(environ, stdout)
	case "migrate":
		return migrateCmd(environ, args, stdout)
	case "openapi":
		spec, err := openAPI(environ)
		if err == nil {
			_, err = stdout.Write(spec)
		}
		return err
	case "experiments":
		return experiments.Command(args, modules.ExperimentDefinitions(), stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// graph is the whole service: the platform and every module. It builds
// nothing until started.
func graph(environ config.Environment) fx.Option {
	return fx.Options(fx.Supply(environ, migrations.Source()), platform.Module, modules.Module)
}

// openAPI builds the graph only to read the API document; nothing starts.
func openAPI(environ config.Environment) ([]byte, error) {
	var api huma.API
	a := fx.New(graph(environ), fx.NopLogger, fx.Populate(&api))
	if err := a.Err(); err != nil {
		return nil, err
	}
	return api.OpenAPI().YAML()
}

// serve starts the app with the collector tuned for serving (gctune), waits
// for SIGINT/SIGTERM, then shuts down gracefully: requests and jobs in
// flight finish within SHUTDOWN_TIMEOUT.
func serve(opts fx.Option) error {
	// Signals are caught from before the graph is built, so a SIGTERM
	// during the start (the migrations, say) rolls it back instead of
	// killing the process.
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	began := time.Now()
	var logger *slog.Logger
	a := fx.New(opts, gctune.Module, fx.Populate(&logger))
	if err := a.Err(); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(sigCtx, a.StartTimeout())
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		if sigCtx.Err() != nil {
			return fmt.Errorf("start interrupted by a signal: %w", err)
		}
		return err
	}
	// Every component is running: from here a signal means a drain.
	logger.Info("started", "took", time.Since(began).Round(time.Millisecond))
	var failed error
	select {
	case <-sigCtx.Done():
	case s := <-a.Wait():
		// A component asked to stop (the HTTP listener failed): drain, then
		// exit with its code so the orchestrator restarts the replica.
		if s.ExitCode != 0 {
			failed = fmt.Errorf("stopped by a failing component (exit code %d); see the log above", s.ExitCode)
		}
	}
	stopCtx, cancelStop := context.WithTimeout(context.Background(), a.StopTimeout())
	defer cancelStop()
	return errors.Join(failed, a.Stop(stopCtx))
}

// demoCmd serves the service with the demo's walk (modules/demo).
func demoCmd(environ config.Environment, stdout io.Writer) error {
	d, err := demo.New(environ, stdout)
	if err != nil {
		return err
	}
	defer d.Close()
	return serve(fx.Options(graph(d.Env), platform.Serve(d.Env), d.Option()))
}

func migrateCmd(environ config.Environment, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("want one of: migrate up, migrate down, migrate status")
	}
	var m *migrate.Migrator
	a := fx.New(
		fx.Supply(environ, pgtest.Source()),
		config.Module, logging.Module, postgres.Module, migrate.Module,
		fx.Populate(&m),
		fx.NopLogger,
	)
	if err := a.Err(); err != nil {
		return err
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		return err
	}
	defer a.Stop(ctx) //nolint:errcheck
	switch args[0] {
	case "up":
		res, err := m.Up(ctx)
		for _, r := range res {
			fmt.Fprintf(stdout, "applied %d %s (%s)\n", r.Source.Version, r.Source.Path, r.Duration)
		}
		if err == nil && len(res) == 0 {
			fmt.Fprintln(stdout, "nothing to apply")
		}
		return err
	case "down":
		r, err := m.Down(ctx)
		if r != nil {
			fmt.Fprintf(stdout, "rolled back %d %s\n", r.Source.Version, r.Source.Path)
		}
		return err
	case "status":
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "VERSION\tSTATE\tAPPLIED AT\tSOURCE")
		for _, s := range st {
			applied := "-"
			if !s.AppliedAt.IsZero() {
				applied = s.AppliedAt.UTC().Format("2006-01-02 15:04:05")
			}
			src := s.Source.Path
			if src == "" {
				src = "(go)"
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", s.Source.Version, s.State, applied, src)
		}
		return w.Flush()
	default:
		return fmt.Errorf("unknown migrate command %q: want up, down or status", args[0])
	}
}
