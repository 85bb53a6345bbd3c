// Package migrations holds the database schema as goose migrations embedded
// in the binary: River's own schema (a Go migration pinned to the River
// version in go.mod) followed by our SQL files.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/eats/eats-orders-tracking/platform/migrate"
)

//go:embed *.sql
var sqlFiles embed.FS

// RiverSchemaVersion is River's migration version that migration 1 applies.
// Upgrading River to a version with a newer schema means a new goose
// migration that raises it, so every environment moves in step.
const RiverSchemaVersion = 8

// Source is the schema embedded in the binary: what `serve` and `migrate`
// apply and what every test database is cloned from.
func Source() migrate.Source { return migrate.Source{FS: FS(), Go: Go()} }

// FS returns the SQL migrations.
func FS() fs.FS { return sqlFiles }

// Go returns the migrations written in Go: River's schema. River's
// migrations cannot run inside one transaction (Postgres 55P04), so this one
// runs without goose's transaction.
func Go() []*goose.Migration {
	return []*goose.Migration{
		goose.NewGoMigration(1,
			&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error {
				return migrateRiver(ctx, db, rivermigrate.DirectionUp, RiverSchemaVersion)
			}},
			&goose.GoFunc{RunDB: func(ctx context.Context, db *sql.DB) error {
				return migrateRiver(ctx, db, rivermigrate.DirectionDown, -1)
			}},
		),
	}
}

func migrateRiver(ctx context.Context, db *sql.DB, dir rivermigrate.Direction, target int) error {
	m, err := rivermigrate.New(riverdatabasesql.New(db), nil)
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	if _, err := m.Migrate(ctx, dir, &rivermigrate.MigrateOpts{TargetVersion: target}); err != nil {
		return fmt.Errorf("river migrate %s to %d: %w", dir, target, err)
	}
	return nil
}
