// Package postgres opens the service's PostgreSQL pool (sqlx over lib/pq),
// creates the database on first start, and fails fast with a message that
// names the database when it cannot be reached.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"go.uber.org/fx"

	"github.com/eats/eats-orders-tracking/platform/config"
)

// connectTimeout bounds the first contact, so a wrong DATABASE_URL fails the
// start in seconds, not after fx's start timeout.
const connectTimeout = 5 * time.Second

// Open returns a pool for dsn without connecting (constructors do no I/O).
func Open(dsn string, maxConns int) (*sqlx.DB, error) {
	db, err := sqlx.Open("postgres", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open %s: %w", config.MaskURL(dsn), err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	// Recycle connections now and then so a failover or a restarted server
	// does not leave the pool holding dead sockets for long.
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return db, nil
}

// Target describes where a DSN points, for error messages.
func Target(dsn string) (host, dbname string) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "?", "?"
	}
	return u.Host, strings.Trim(u.Path, "/")
}

// maintenanceDB is where a missing database is created from.
const maintenanceDB = "postgres"

// EnsureDatabase creates the DSN's database if it does not exist, through
// the server's maintenance database.
func EnsureDatabase(ctx context.Context, dsn string) error {
	return ensureDatabase(ctx, dsn, maintenanceDB)
}

func ensureDatabase(ctx context.Context, dsn, maintenance string) error {
	host, name := Target(dsn)
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("postgres: parse DATABASE_URL: %w", err)
	}
	u.Path = "/" + maintenance
	admin, err := sqlx.Open("postgres", u.String())
	if err != nil {
		return fmt.Errorf("postgres: open maintenance database at %s: %w", host, err)
	}
	defer admin.Close()
	var exists bool
	if err := admin.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		return fmt.Errorf("postgres: cannot reach database %q at %s: %w", name, host, err)
	}
	if exists {
		return nil
	}
	_, err = admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "42P04" { // another replica won the race
		return nil
	}
	if err != nil {
		return fmt.Errorf("postgres: create database %q at %s: %w", name, host, err)
	}
	return nil
}

// Connect checks the pool can reach its database, creating the database
// first if the server says it does not exist. The maintenance database is
// used only then: a role or a pooler that sees nothing but the service's
// own database must still start.
func Connect(ctx context.Context, db *sqlx.DB, dsn string) error {
	return connect(ctx, db, dsn, maintenanceDB)
}

func connect(ctx context.Context, db *sqlx.DB, dsn, maintenance string) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	host, name := Target(dsn)
	err := db.PingContext(ctx)
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "3D000" { // invalid_catalog_name
		if err := ensureDatabase(ctx, dsn, maintenance); err != nil {
			return err
		}
		err = db.PingContext(ctx)
	}
	if err != nil {
		return fmt.Errorf("postgres: cannot reach database %q at %s: %w", name, host, err)
	}
	return nil
}

// Module provides *sqlx.DB; it connects on start and closes on stop.
var Module = fx.Module("postgres",
	fx.Provide(func(lc fx.Lifecycle, cfg config.Platform, logger *slog.Logger) (*sqlx.DB, error) {
		db, err := Open(cfg.DatabaseURL, cfg.DatabaseMaxConns)
		if err != nil {
			return nil, err
		}
		lc.Append(fx.Hook{
			OnStart: func(ctx context.Context) error {
				if err := Connect(ctx, db, cfg.DatabaseURL); err != nil {
					return err
				}
				host, name := Target(cfg.DatabaseURL)
				logger.Info("postgres connected", "host", host, "database", name)
				return nil
			},
			OnStop: func(context.Context) error { return db.Close() },
		})
		return db, nil
	}),
)
