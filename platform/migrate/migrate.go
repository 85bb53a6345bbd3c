// Package migrate applies the embedded goose migrations. It takes a
// Postgres advisory lock (goose's session locker), so several replicas can
// start at once and only one migrates.
package migrate

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"go.uber.org/fx"
)

// Source is the set of migrations: SQL files plus migrations written in Go.
type Source struct {
	FS fs.FS
	Go []*goose.Migration
}

// Migrator runs a Source against a database.
type Migrator struct {
	provider *goose.Provider
}

// New builds a Migrator; it reads the migration files but not the database.
func New(db *sqlx.DB, src Source) (*Migrator, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("migrate: locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db.DB, src.FS,
		goose.WithGoMigrations(src.Go...),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return &Migrator{provider: p}, nil
}

// Up applies every pending migration.
func (m *Migrator) Up(ctx context.Context) ([]*goose.MigrationResult, error) {
	res, err := m.provider.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate up: %w", err)
	}
	return res, nil
}

// Down rolls back the latest migration.
func (m *Migrator) Down(ctx context.Context) (*goose.MigrationResult, error) {
	res, err := m.provider.Down(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate down: %w", err)
	}
	return res, nil
}

// DownTo rolls back every migration above version (0: all).
func (m *Migrator) DownTo(ctx context.Context, version int64) ([]*goose.MigrationResult, error) {
	res, err := m.provider.DownTo(ctx, version)
	if err != nil {
		return res, fmt.Errorf("migrate down to %d: %w", version, err)
	}
	return res, nil
}

// Status lists each migration and whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]*goose.MigrationStatus, error) {
	st, err := m.provider.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate status: %w", err)
	}
	return st, nil
}

// Pending reports whether any migration is still to apply; readiness uses it.
func (m *Migrator) Pending(ctx context.Context) (bool, error) {
	p, err := m.provider.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("migrate pending: %w", err)
	}
	return p, nil
}

// Module provides the Migrator. AutoMigrate (below) runs it at start.
var Module = fx.Module("migrate",
	fx.Provide(New),
)

// Applied is provided once migrations are scheduled to run at start; the
// queue depends on it so River starts only on a migrated schema.
type Applied struct{}

// AutoMigrate applies pending migrations when the app starts, after the
// database is reachable and before workers or the HTTP server start.
var AutoMigrate = fx.Provide(func(lc fx.Lifecycle, m *Migrator, logger *slog.Logger) Applied {
	lc.Append(fx.StartHook(func(ctx context.Context) error {
		res, err := m.Up(ctx)
		if err != nil {
			return err
		}
		for _, r := range res {
			logger.Info("migration applied", "version", r.Source.Version, "path", r.Source.Path, "duration", r.Duration)
		}
		return nil
	}))
	return Applied{}
})
