package postgres

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/lib/pq"
	"github.com/stretchr/testify/require"
)

const server = "postgres://root@127.0.0.1:5432/%s?sslmode=disable"

func uniqueName(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("eot_pgtest_%s", strings.ToLower(rand.Text()[:10]))
}

func dropAfter(t *testing.T, name string) {
	t.Cleanup(func() {
		admin, err := sql.Open("postgres", fmt.Sprintf(server, "postgres"))
		require.NoError(t, err)
		defer admin.Close()
		_, err = admin.Exec("DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(name) + " WITH (FORCE)")
		require.NoError(t, err)
	})
}

func TestConnectCreatesAMissingDatabase(t *testing.T) {
	t.Parallel()
	name := uniqueName(t)
	dropAfter(t, name)
	dsn := fmt.Sprintf(server, name)
	db, err := Open(dsn, 2)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, Connect(context.Background(), db, dsn))
	var got string
	require.NoError(t, db.Get(&got, `SELECT current_database()`))
	require.Equal(t, name, got)
	// A second start finds it there.
	require.NoError(t, Connect(context.Background(), db, dsn))
}

func TestConnectToAnExistingDatabaseNeedsNoMaintenanceDatabase(t *testing.T) {
	t.Parallel()
	name := uniqueName(t)
	dropAfter(t, name)
	dsn := fmt.Sprintf(server, name)
	require.NoError(t, EnsureDatabase(context.Background(), dsn))
	db, err := Open(dsn, 2)
	require.NoError(t, err)
	defer db.Close()
	// As if the role (or a pooler) could reach only its own database.
	require.NoError(t, connect(context.Background(), db, dsn, "no_maintenance_db_here"))
	// The same server with the database missing does need it, and says so.
	missing := fmt.Sprintf(server, uniqueName(t))
	db2, err := Open(missing, 2)
	require.NoError(t, err)
	defer db2.Close()
	err = connect(context.Background(), db2, missing, "no_maintenance_db_here")
	require.ErrorContains(t, err, "cannot reach database")
}

func TestConnectFailsFastNamingTheDatabase(t *testing.T) {
	t.Parallel()
	dsn := "postgres://root@127.0.0.1:1/eot_nowhere?sslmode=disable"
	db, err := Open(dsn, 2)
	require.NoError(t, err)
	defer db.Close()
	err = Connect(context.Background(), db, dsn)
	require.ErrorContains(t, err, `cannot reach database "eot_nowhere" at 127.0.0.1:1`)
}
