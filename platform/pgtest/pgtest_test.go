package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/migrations"
)

// TestTemplateNameFollowsRiverSchema: the River schema version the Go
// migration pins is part of the template's name, so raising it builds a
// new template instead of cloning a stale one.
func TestTemplateNameFollowsRiverSchema(t *testing.T) {
	t.Parallel()
	pinned := sourceHash(t, Source(), migrations.RiverSchemaVersion)
	require.Equal(t, pinned, sourceHash(t, Source(), migrations.RiverSchemaVersion), "the hash must be stable")
	require.NotEqual(t, pinned, sourceHash(t, Source(), migrations.RiverSchemaVersion-1))
	require.NotEqual(t, pinned, sourceHash(t, Source(), migrations.RiverSchemaVersion+1))
}

// TestCloneCopiesTheTemplate: a clone is a copy of the migrated template
// (the fast path), not a database migrated again: its goose history is the
// template's, to the timestamp, and it is independent of other clones.
func TestCloneCopiesTheTemplate(t *testing.T) {
	t.Parallel()
	tmpl := Template(t, Source())
	history := func(dsn string) []string {
		db, err := sqlx.Open("postgres", dsn)
		require.NoError(t, err)
		defer db.Close()
		var rows []string
		require.NoError(t, db.Select(&rows, `SELECT version_id || '@' || tstamp::text FROM goose_db_version ORDER BY id`))
		return rows
	}
	want := history(URLFor(tmpl))
	require.NotEmpty(t, want)

	a, b := Clone(t), Clone(t)
	require.Equal(t, want, history(a))
	dbA, err := sqlx.Open("postgres", a)
	require.NoError(t, err)
	defer dbA.Close()
	_, err = dbA.Exec(`INSERT INTO river_queue (name) VALUES ('only_in_a')`)
	require.NoError(t, err)
	dbB, err := sqlx.Open("postgres", b)
	require.NoError(t, err)
	defer dbB.Close()
	var n int
	require.NoError(t, dbB.Get(&n, `SELECT count(*) FROM river_queue WHERE name = 'only_in_a'`))
	require.Zero(t, n)
}

// BenchmarkClone measures creating a database from the migrated template,
// the cost every database test pays (the target: well under a second;
// tens of milliseconds on a quiet machine), beside the baseline of an empty
// database from template0. Dropping it is not timed.
func BenchmarkClone(b *testing.B) {
	tmpl := Template(b, Source())
	admin, err := sqlx.Open("postgres", ServerURL())
	require.NoError(b, err)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, from := range []struct{ name, template string }{
		{"migrated-template", tmpl},
		{"template0-baseline", "template0"},
	} {
		b.Run(from.name, func(b *testing.B) {
			for b.Loop() {
				name := "eot_bench_" + randomHex(6)
				require.NoError(b, createDatabase(ctx, admin, name, from.template))
				b.StopTimer()
				require.NoError(b, dropDatabase(ctx, admin, name))
				b.StartTimer()
			}
		})
	}
}
