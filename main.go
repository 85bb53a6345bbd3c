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
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/modules/app"
	"github.com/eats/eats-orders-tracking/platform/config"
	"github.com/eats/eats-orders-tracking/platform/gctune"
	"github.com/eats/eats-orders-tracking/platform/logging"
	"github.com/eats/eats-orders-tracking/platform/migrate"
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
	var err error
	switch cmd {
	case "serve":
		err = serve(fx.Options(app.Serve(environ), gctune.Module))
	case "demo":
		err = demo(environ, stdout)
	case "migrate":
		err = migrateCmd(environ, args, stdout)
	case "openapi":
		var spec []byte
		if spec, err = app.OpenAPI(environ); err == nil {
			_, err = stdout.Write(spec)
		}
	case "experiments":
		err = experimentsCmd(environ, args, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprint(stderr, usage)
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintf(stderr, "eats-orders-tracking %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// serve starts the app, waits for SIGINT/SIGTERM, then shuts down
// gracefully: requests and jobs in flight finish within SHUTDOWN_TIMEOUT.
func serve(opts fx.Option) error {
	a := fx.New(opts)
	if err := a.Err(); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(context.Background(), a.StartTimeout())
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	signal.Stop(sig)
	stopCtx, cancelStop := context.WithTimeout(context.Background(), a.StopTimeout())
	defer cancelStop()
	return a.Stop(stopCtx)
}

func migrateCmd(environ config.Environment, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("want one of: migrate up, migrate down, migrate status")
	}
	var m *migrate.Migrator
	a := fx.New(
		fx.Supply(environ, app.MigrationSource()),
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
