// Package pgtest gives each test a fresh PostgreSQL database cloned from a
// migrated template (CREATE DATABASE … TEMPLATE), which takes tens of
// milliseconds instead of re-running every migration. The template's name
// carries a hash of the migrations (SQL files, Go migration versions, and
// the River schema version they pin with River's SQL up to it), so a changed
// migration or River pin builds a new template, and an advisory lock makes
// concurrent test binaries (go test runs packages in parallel) build it once.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/migrations"
	"github.com/eats/eats-orders-tracking/platform/migrate"
	"github.com/eats/eats-orders-tracking/platform/postgres"
)

// ServerURL is the server tests use; TEST_DATABASE_URL overrides it (its
// database part is ignored).
func ServerURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://root@127.0.0.1:5432/postgres?sslmode=disable"
}

// Source is the service's schema, the one every test database is cloned
// from.
func Source() migrate.Source { return migrations.Source() }

// URLFor returns the server URL pointing at database name.
func URLFor(name string) string {
	u, err := url.Parse(ServerURL())
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

// templateLock is an arbitrary advisory-lock key shared by all test binaries.
const templateLock = 7261_0001

// Template returns the name of a migrated template database for src,
// creating it if needed.
func Template(tb testing.TB, src migrate.Source) string {
	tb.Helper()
	name := "eot_tmpl_" + sourceHash(tb, src, migrations.RiverSchemaVersion)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := sqlx.Open("postgres", ServerURL())
	require.NoError(tb, err)
	defer admin.Close()
	conn, err := admin.Connx(ctx)
	require.NoError(tb, err, "pgtest: PostgreSQL must be reachable at %s", ServerURL())
	defer conn.Close()
	_, err = conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, templateLock)
	require.NoError(tb, err)
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, templateLock) //nolint:errcheck
	var exists bool
	require.NoError(tb, conn.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)`, name))
	if exists {
		return name
	}
	// Build under a scratch name and mark it a template only when complete,
	// so a crash half-way never leaves a broken template behind.
	_, err = conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
	require.NoError(tb, err)
	_, err = conn.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	require.NoError(tb, err)
	db, err := postgres.Open(URLFor(name), 4)
	require.NoError(tb, err)
	m, err := migrate.New(db, src)
	require.NoError(tb, err)
	_, err = m.Up(ctx)
	require.NoError(tb, err, "pgtest: migrate template")
	require.NoError(tb, db.Close())
	_, err = conn.ExecContext(ctx, "ALTER DATABASE "+pq.QuoteIdentifier(name)+" WITH IS_TEMPLATE true")
	require.NoError(tb, err)
	return name
}

// sourceHash identifies a migration set by its SQL files, its Go
// migrations' versions, and River's schema: a Go migration's code cannot be
// hashed, so the River version it migrates to (riverVersion) and River's SQL
// up to that version (which changes with River in go.mod) stand for it.
func sourceHash(tb testing.TB, src migrate.Source, riverVersion int) string {
	h := sha256.New()
	err := fs.WalkDir(src.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src.FS, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\n%s\n", path, b)
		return nil
	})
	require.NoError(tb, err)
	for _, g := range src.Go {
		fmt.Fprintf(h, "go:%d\n", g.Version)
	}
	fmt.Fprintf(h, "river:%d\n", riverVersion)
	rm, err := rivermigrate.New(riverdatabasesql.New(nil), nil)
	require.NoError(tb, err)
	for _, v := range rm.AllVersions() {
		if v.Version <= riverVersion {
			fmt.Fprintf(h, "river:%d\n%s\n", v.Version, v.SQLUp)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// NewDatabase creates an empty database (no migrations) and drops it when
// the test ends. It returns the database's URL.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	return create(tb, "")
}

// Clone creates a fresh database from the service's migrated template
// (migrations.Source) and drops it when the test ends. It returns the
// database's URL.
func Clone(tb testing.TB) string {
	tb.Helper()
	return create(tb, Template(tb, Source()))
}

// Open is Clone plus an open pool, closed when the test ends.
func Open(tb testing.TB) (*sqlx.DB, string) {
	tb.Helper()
	dsn := Clone(tb)
	db, err := postgres.Open(dsn, 20)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = db.Close() })
	return db, dsn
}

func create(tb testing.TB, template string) string {
	name := "eot_test_" + randomHex(6)
	admin, err := sqlx.Open("postgres", ServerURL())
	require.NoError(tb, err)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(tb, createDatabase(ctx, admin, name, template), "pgtest: create database")
	tb.Cleanup(func() {
		admin, err := sqlx.Open("postgres", ServerURL())
		if err != nil {
			return
		}
		defer admin.Close()
		_ = dropDatabase(context.Background(), admin, name)
	})
	return URLFor(name)
}

// createDatabase creates name, as a copy of template unless it is empty.
func createDatabase(ctx context.Context, admin *sqlx.DB, name, template string) error {
	q := "CREATE DATABASE " + pq.QuoteIdentifier(name)
	if template != "" {
		q += " TEMPLATE " + pq.QuoteIdentifier(template)
	}
	// Two clones of one template at the same instant can collide on the
	// template's lock ("being accessed by other users"); retry briefly.
	for attempt := 0; ; attempt++ {
		_, err := admin.ExecContext(ctx, q)
		var pqErr *pq.Error
		if err == nil || attempt >= 50 || !asPQ(err, &pqErr) || pqErr.Code != "55006" {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dropDatabase(ctx context.Context, admin *sqlx.DB, name string) error {
	_, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
	return err
}

func asPQ(err error, target **pq.Error) bool {
	e, ok := err.(*pq.Error) //nolint:errorlint // lib/pq returns it unwrapped
	if ok {
		*target = e
	}
	return ok
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
