package migrate_test

import (
	"context"
	"testing"

	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/migrations"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/platform/postgres"
)

// TestRiverSchemaVersionIsLatest: the River schema our migrations pin is
// the latest migration of the River version in go.mod. An upgrade of River
// that brings a new migration fails here until a goose migration runs
// River's migrations up to it and RiverSchemaVersion is raised.
func TestRiverSchemaVersionIsLatest(t *testing.T) {
	t.Parallel()
	m, err := rivermigrate.New(riverdatabasesql.New(nil), nil)
	require.NoError(t, err)
	all := m.AllVersions()
	require.NotEmpty(t, all)
	latest := all[len(all)-1].Version
	require.Equal(t, migrations.RiverSchemaVersion, latest,
		"River in go.mod has migrations up to %d but migrations.RiverSchemaVersion is %d: "+
			"add a goose migration that migrates River to %d and raise RiverSchemaVersion", latest, migrations.RiverSchemaVersion, latest)
}

// TestMigratedRiverSchemaIsPinned: a database migrated by our migrations
// holds River's schema exactly at RiverSchemaVersion.
func TestMigratedRiverSchemaIsPinned(t *testing.T) {
	t.Parallel()
	db, err := postgres.Open(pgtest.Clone(t), 2)
	require.NoError(t, err)
	defer db.Close()
	m, err := rivermigrate.New(riverdatabasesql.New(db.DB), nil)
	require.NoError(t, err)
	existing, err := m.ExistingVersions(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, existing)
	require.Equal(t, migrations.RiverSchemaVersion, existing[len(existing)-1].Version)
}
