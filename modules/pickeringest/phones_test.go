package pickeringest

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/cache"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

func TestAfterCommitWritesTheCacheEntry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rdb := b.redis.Client
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	b.apply(t, ready("230101-1", "p-1", "+79991234567,,12", expires, t0))

	key := b.redis.Prefix + "eot:picker_phone:230101-1:p-1"
	got, err := rdb.Get(ctx, key).Result()
	require.NoError(t, err)
	require.JSONEq(t, `{"phone":"+79991234567,,12","expires_at":"`+expires.Format(time.RFC3339Nano)+`"}`, got)
	ttl, err := rdb.PTTL(ctx, key).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 50*time.Second)
	require.LessOrEqual(t, ttl, 60*time.Second)

	// A phone that expires sooner than 60 s is cached no longer than it lives.
	b.apply(t, ready("230101-2", "p-1", "+79991234567", time.Now().Add(5*time.Second), t0))
	ttl, err = rdb.PTTL(ctx, b.redis.Prefix+"eot:picker_phone:230101-2:p-1").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0))
	require.LessOrEqual(t, ttl, 5*time.Second)

	// An event that loses (earlier expiry) leaves the entry alone.
	require.NoError(t, rdb.Del(ctx, key).Err())
	require.False(t, b.apply(t, ready("230101-1", "p-1", "+79990000000", expires.Add(-time.Minute), t0)).Changed)
	require.Equal(t, int64(0), rdb.Exists(ctx, key).Val())
}

func TestExpiredPhoneIsStoredNotCachedAndCounted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	expired := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	require.True(t, b.apply(t, ready("o-1", "p-1", "+79991234567", expired, t0)).Changed)
	require.Len(t, b.phoneRows(t, "o-1"), 1, "stored anyway")
	require.Equal(t, int64(0), b.redis.Client.Exists(ctx, b.redis.Prefix+"eot:picker_phone:o-1:p-1").Val())
	require.Equal(t, 1.0, value(t, b.applier.metrics.expiredOnArrival))
	_, ok, err := b.phones.Lookup(ctx, b.db, "o-1", "p-1", time.Now())
	require.NoError(t, err)
	require.False(t, ok, "an expired phone is never shown")
	require.Equal(t, int64(0), b.redis.Client.Exists(ctx, b.redis.Prefix+"eot:picker_phone:o-1:p-1").Val(), "nor cached by a reader")
}

func TestLookupReadsThroughTheCache(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	b.apply(t, ready("o-1", "p-1", "+79991234567", expires, t0))
	key := b.redis.Prefix + "eot:picker_phone:o-1:p-1"
	hits, misses := b.phones.metrics.phoneLookups.WithLabelValues(cacheHit), b.phones.metrics.phoneLookups.WithLabelValues(cacheMiss)

	// The writer's entry answers.
	p, ok, err := b.phones.Lookup(ctx, b.db, "o-1", "p-1", time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, tracking.Phone{Number: "+79991234567", ExpiresAt: expires}, p)
	require.Equal(t, 1.0, value(t, hits))

	// Gone from Redis: read from PostgreSQL and put back, same TTL rule.
	require.NoError(t, b.redis.Client.Del(ctx, key).Err())
	p, ok, err = b.phones.Lookup(ctx, b.db, "o-1", "p-1", time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, tracking.Phone{Number: "+79991234567", ExpiresAt: expires}, p)
	require.Equal(t, 1.0, value(t, misses))
	ttl := b.redis.Client.PTTL(ctx, key).Val()
	require.Greater(t, ttl, 50*time.Second)
	require.LessOrEqual(t, ttl, 60*time.Second)
	_, _, err = b.phones.Lookup(ctx, b.db, "o-1", "p-1", time.Now())
	require.NoError(t, err)
	require.Equal(t, 2.0, value(t, hits))

	// Valid at now only: asked for a time after expiry, the phone is not valid.
	_, ok, err = b.phones.Lookup(ctx, b.db, "o-1", "p-1", expires)
	require.NoError(t, err)
	require.False(t, ok)

	// No row at all.
	_, ok, err = b.phones.Lookup(ctx, b.db, "o-1", "p-2", time.Now())
	require.NoError(t, err)
	require.False(t, ok)

	// A cached entry that has expired is not trusted: PostgreSQL may know a newer phone.
	newer := expires.Add(time.Hour)
	b.apply(t, ready("o-2", "p-1", "+79990000002", newer, t0))
	require.NoError(t, b.redis.Client.Set(ctx, b.redis.Prefix+"eot:picker_phone:o-2:p-1",
		`{"phone":"+79990000001","expires_at":"2000-01-01T00:00:00Z"}`, time.Minute).Err())
	p, ok, err = b.phones.Lookup(ctx, b.db, "o-2", "p-1", time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "+79990000002", p.Number)
}

// countingDB counts queries, to prove LookupMany reads PostgreSQL once.
type countingDB struct {
	sqlx.QueryerContext
	queries int
}

func (c *countingDB) QueryxContext(ctx context.Context, q string, args ...any) (*sqlx.Rows, error) {
	c.queries++
	return c.QueryerContext.QueryxContext(ctx, q, args...)
}

func TestLookupManyReadsMissesInOneQuery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	later := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	b.apply(t, ready("cached", "p-1", "+79990000001", later, t0))
	b.apply(t, ready("stored", "p-1", "+79990000002", later, t0))
	b.apply(t, ready("stored", "p-2", "+79990000003", later, t0))
	b.apply(t, ready("expired", "p-1", "+79990000004", time.Now().Add(-time.Minute), t0))
	for _, k := range []string{"stored:p-1", "stored:p-2"} {
		require.NoError(t, b.redis.Client.Del(ctx, b.redis.Prefix+"eot:picker_phone:"+k).Err())
	}
	db := &countingDB{QueryerContext: b.db}
	got, err := b.phones.LookupMany(ctx, db, []tracking.PhoneKey{
		{OrderNr: "cached", PickerID: "p-1"}, {OrderNr: "stored", PickerID: "p-1"}, {OrderNr: "stored", PickerID: "p-2"}, {OrderNr: "expired", PickerID: "p-1"}, {OrderNr: "absent", PickerID: "p-1"}, {OrderNr: "stored", PickerID: "p-1"},
	}, time.Now())
	require.NoError(t, err)
	require.Equal(t, map[tracking.PhoneKey]tracking.Phone{
		{OrderNr: "cached", PickerID: "p-1"}: {Number: "+79990000001", ExpiresAt: later},
		{OrderNr: "stored", PickerID: "p-1"}: {Number: "+79990000002", ExpiresAt: later},
		{OrderNr: "stored", PickerID: "p-2"}: {Number: "+79990000003", ExpiresAt: later},
	}, got)
	require.Equal(t, 1, db.queries)
	require.Equal(t, int64(2), b.redis.Client.Exists(ctx, b.redis.Prefix+"eot:picker_phone:stored:p-1", b.redis.Prefix+"eot:picker_phone:stored:p-2").Val(), "misses filled")

	db.queries = 0
	got, err = b.phones.LookupMany(ctx, db, []tracking.PhoneKey{{OrderNr: "cached", PickerID: "p-1"}, {OrderNr: "stored", PickerID: "p-2"}}, time.Now())
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, 0, db.queries, "all hits: no SQL")

	got, err = b.phones.LookupMany(ctx, db, nil, time.Now())
	require.NoError(t, err)
	require.Empty(t, got)
}

// TestLookupWithRedisDownOrOff: the cache failing or absent costs nothing
// but the cache; writes that fail are counted and logged with the phone masked.
func TestLookupWithRedisDownOrOff(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	down := &cache.Redis{Client: redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1,
	}), Prefix: "eot_test_down:"}
	t.Cleanup(func() { _ = down.Client.Close() })

	for name, r := range map[string]*cache.Redis{"down": down, "off": nil} {
		b := setupWith(t, db, r)
		ctx := context.Background()
		order := "o-" + name
		expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		require.True(t, b.apply(t, ready(order, "p-1", "+79991234567", expires, t0)).Changed)
		if name == "down" {
			require.Equal(t, 1.0, value(t, b.phones.metrics.phoneWriteErrors), "the write after commit failed")
		}
		p, ok, err := b.phones.Lookup(ctx, b.db, order, "p-1", time.Now())
		require.NoError(t, err, name)
		require.True(t, ok, name)
		require.Equal(t, "+79991234567", p.Number)
		many, err := b.phones.LookupMany(ctx, b.db, []tracking.PhoneKey{{OrderNr: order, PickerID: "p-1"}, {OrderNr: order, PickerID: "p-2"}}, time.Now())
		require.NoError(t, err, name)
		require.Len(t, many, 1, name)
		if name == "down" {
			require.Equal(t, 1.0, value(t, b.phones.metrics.phoneWriteErrors), "no fill is tried after a failed read")
			require.Equal(t, 3.0, value(t, b.phones.metrics.phoneLookups.WithLabelValues(cacheError)))
			require.Contains(t, b.logs.String(), "phone cache write failed")
			require.Contains(t, b.logs.String(), "*******4567")
			require.NotContains(t, b.logs.String(), "9991234567")
		} else {
			require.Equal(t, 0.0, value(t, b.phones.metrics.phoneWriteErrors))
			require.Equal(t, 0.0, value(t, b.phones.metrics.phoneLookups.WithLabelValues(cacheError)))
		}
	}
}

func TestLookupReturnsDatabaseErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	closed, err := sqlx.Open("postgres", "postgres://root@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	require.NoError(t, err)
	require.NoError(t, closed.Close())
	_, _, err = b.phones.Lookup(context.Background(), closed, "o", "p", time.Now())
	require.ErrorContains(t, err, "select picker_phones: sql: database is closed")
}
