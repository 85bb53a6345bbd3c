package pickeringest

import (
	"context"
	"errors"
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

	key := b.phoneKey("230101-1", "p-1")
	got, err := rdb.Get(ctx, key).Result()
	require.NoError(t, err)
	require.JSONEq(t, `{"phone":"+79991234567,,12","expires_at":"`+expires.Format("2006-01-02T15:04:05.000000Z07:00")+
		`","event_at":"2025-03-01T10:00:00.000000Z"}`, got)
	ttl, err := rdb.PTTL(ctx, key).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 50*time.Second)
	require.LessOrEqual(t, ttl, 60*time.Second)

	// A phone that expires sooner than 60 s is cached no longer than it lives.
	b.apply(t, ready("230101-2", "p-1", "+79991234567", time.Now().Add(5*time.Second), t0))
	ttl, err = rdb.PTTL(ctx, b.phoneKey("230101-2", "p-1")).Result()
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
	require.Equal(t, int64(0), b.redis.Client.Exists(ctx, b.phoneKey("o-1", "p-1")).Val())
	require.Equal(t, 1.0, value(t, b.applier.metrics.expiredOnArrival))
	_, ok, err := b.phones.Lookup(ctx, b.db, "o-1", "p-1", time.Now())
	require.NoError(t, err)
	require.False(t, ok, "an expired phone is never shown")
	require.Equal(t, int64(0), b.redis.Client.Exists(ctx, b.phoneKey("o-1", "p-1")).Val(), "nor cached by a reader")
}

func TestLookupReadsThroughTheCache(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	b.apply(t, ready("o-1", "p-1", "+79991234567", expires, t0))
	key := b.phoneKey("o-1", "p-1")
	hits, misses := b.phones.metrics.phoneLookups.WithLabelValues(cacheHit), b.phones.metrics.phoneLookups.WithLabelValues(cacheMiss)

	// The writer's entry answers, fresh until the entry ends: its PTTL,
	// read with it.
	before := time.Now()
	p, ok, err := b.phones.Lookup(ctx, b.db, "o-1", "p-1", time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	requirePhone(t, "+79991234567", expires, p)
	require.Equal(t, 1.0, value(t, hits))
	left := b.redis.Client.PTTL(ctx, key).Val() // whole ms: allow for the rounding
	require.WithinRange(t, p.FreshUntil, before.Add(left-time.Second), time.Now().Add(left+10*time.Millisecond))

	// An entry that ends sooner makes the copy end sooner.
	require.NoError(t, b.redis.Client.PExpire(ctx, key, 2*time.Second).Err())
	before = time.Now()
	p, ok, err = b.phones.Lookup(ctx, b.db, "o-1", "p-1", time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	require.WithinRange(t, p.FreshUntil, before.Add(time.Second), time.Now().Add(2*time.Second))

	// Gone from Redis: read from PostgreSQL and put back, same TTL rule;
	// fresh until PHONE_CACHE_TTL after the read.
	require.NoError(t, b.redis.Client.Del(ctx, key).Err())
	before = time.Now()
	p, ok, err = b.phones.Lookup(ctx, b.db, "o-1", "p-1", time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	requirePhone(t, "+79991234567", expires, p)
	require.WithinRange(t, p.FreshUntil, before.Add(60*time.Second), time.Now().Add(60*time.Second))
	require.Equal(t, 1.0, value(t, misses))
	ttl := b.redis.Client.PTTL(ctx, key).Val()
	require.Greater(t, ttl, 50*time.Second)
	require.LessOrEqual(t, ttl, 60*time.Second)
	_, _, err = b.phones.Lookup(ctx, b.db, "o-1", "p-1", time.Now())
	require.NoError(t, err)
	require.Equal(t, 3.0, value(t, hits))

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
	require.NoError(t, b.redis.Client.Set(ctx, b.phoneKey("o-2", "p-1"),
		`{"phone":"+79990000001","expires_at":"2000-01-01T00:00:00.000000Z","event_at":"2000-01-01T00:00:00.000000Z"}`, time.Minute).Err())
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
	require.NoError(t, b.redis.Client.Del(ctx, b.phoneKey("stored", "p-1"), b.phoneKey("stored", "p-2")).Err())
	db := &countingDB{QueryerContext: b.db}
	got, err := b.phones.LookupMany(ctx, db, []tracking.PhoneKey{
		{OrderNr: "cached", PickerID: "p-1"}, {OrderNr: "stored", PickerID: "p-1"}, {OrderNr: "stored", PickerID: "p-2"}, {OrderNr: "expired", PickerID: "p-1"}, {OrderNr: "absent", PickerID: "p-1"}, {OrderNr: "stored", PickerID: "p-1"},
	}, time.Now())
	require.NoError(t, err)
	for k, p := range got {
		require.False(t, p.FreshUntil.IsZero(), k)
		p.FreshUntil = time.Time{}
		got[k] = p
	}
	require.Equal(t, map[tracking.PhoneKey]tracking.Phone{
		{OrderNr: "cached", PickerID: "p-1"}: {Number: "+79990000001", ExpiresAt: later},
		{OrderNr: "stored", PickerID: "p-1"}: {Number: "+79990000002", ExpiresAt: later},
		{OrderNr: "stored", PickerID: "p-2"}: {Number: "+79990000003", ExpiresAt: later},
	}, got)
	require.Equal(t, 1, db.queries)
	require.Equal(t, int64(2), b.redis.Client.Exists(ctx, b.phoneKey("stored", "p-1"), b.phoneKey("stored", "p-2")).Val(), "misses filled")

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

// TestPhoneKeysNeverCollide is issue 13's second report: order "N:1" with
// picker "2" and order "N" with picker "1:2" had one cache key, so one
// customer was shown the other's number. Each id is escaped, and the key
// carries its format version (DESIGN §6).
func TestPhoneKeysNeverCollide(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	b.apply(t, ready("N:1", "2", "+79990000001", expires, t0))
	b.apply(t, ready("N", "1:2", "+79990000002", expires, t0))

	for _, fromDB := range []bool{false, true} {
		if fromDB { // and when readers fill the cache from PostgreSQL
			require.NoError(t, b.redis.Client.Del(ctx, b.phoneKey("N:1", "2"), b.phoneKey("N", "1:2")).Err())
		}
		for _, k := range []struct{ order, picker, want string }{{"N:1", "2", "+79990000001"}, {"N", "1:2", "+79990000002"}} {
			p, ok, err := b.phones.Lookup(ctx, b.db, k.order, k.picker, time.Now())
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, k.want, p.Number, "order %q picker %q", k.order, k.picker)
		}
	}
	require.Equal(t, b.redis.Prefix+"eot:v2:picker_phone:N%3A1:2", b.phoneKey("N:1", "2"))
	require.Equal(t, b.redis.Prefix+"eot:v2:picker_phone:N:1%3A2", b.phoneKey("N", "1:2"))
	require.Equal(t, int64(2), b.redis.Client.Exists(ctx, b.phoneKey("N:1", "2"), b.phoneKey("N", "1:2")).Val())
}

func requirePhone(t *testing.T, number string, expires time.Time, p tracking.Phone) {
	t.Helper()
	require.Equal(t, number, p.Number)
	require.True(t, expires.Equal(p.ExpiresAt), "expires %s, got %s", expires, p.ExpiresAt)
}

// cached reads the entry of (order, picker) as readers see it ("" when none).
func (b *testBundle) cached(t *testing.T, order, picker string) string {
	t.Helper()
	v, err := b.redis.Client.Get(context.Background(), b.phoneKey(order, picker)).Result()
	if errors.Is(err, redis.Nil) {
		return ""
	}
	require.NoError(t, err)
	p, ok := decodeCached(v)
	require.True(t, ok, v)
	return p.Number
}

// TestCacheWritesNeverReplaceAWinner: whatever order the writes after
// commit and the fills of readers land in, the entry ends as the winner of
// DESIGN §3.1's rule (later expires_at, then later event_at, then greater
// phone), as picker_phones does.
func TestCacheWritesNeverReplaceAWinner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := time.Now()
	exp := now.Add(time.Hour).UTC().Truncate(time.Microsecond)
	entry := func(order, phone string, expires, eventAt time.Time) phoneEntry {
		return phoneEntry{key: tracking.PhoneKey{OrderNr: order, PickerID: "p:1"},
			phone: tracking.Phone{Number: phone, ExpiresAt: expires}, eventAt: eventAt, readAt: time.Now()}
	}
	for name, c := range map[string]struct{ winner, loser phoneEntry }{
		"LaterExpiry":       {entry("o-exp", "+79990000001", exp.Add(time.Minute), t0), entry("o-exp", "+79990000002", exp, t0.Add(time.Hour))},
		"ThenLaterEvent":    {entry("o-at", "+79990000001", exp, t0.Add(time.Microsecond)), entry("o-at", "+79990000002", exp, t0)},
		"ThenGreaterPhone":  {entry("o-ph", "+79990000002", exp, t0), entry("o-ph", "+79990000001", exp, t0)},
		"ByBytesNotLocale":  {entry("o-b", "79990000001", exp, t0), entry("o-b", "+79990000009", exp, t0)},
		"ExtensionIsLonger": {entry("o-x", "+79990000001,,1", exp, t0), entry("o-x", "+79990000001", exp, t0)},
	} {
		order := c.winner.key.OrderNr
		for _, writes := range [][]func(){
			{func() { b.phones.store(t.Context(), c.loser) }, func() { b.phones.store(t.Context(), c.winner) }},
			{func() { b.phones.store(t.Context(), c.winner) }, func() { b.phones.store(t.Context(), c.loser) }},
			{func() { b.phones.fill(t.Context(), []phoneEntry{c.winner}) }, func() { b.phones.fill(t.Context(), []phoneEntry{c.loser}) }},
			{func() { b.phones.store(t.Context(), c.winner) }, func() { b.phones.fill(t.Context(), []phoneEntry{c.loser}) }},
			{func() { b.phones.fill(t.Context(), []phoneEntry{c.loser}) }, func() { b.phones.store(t.Context(), c.winner) }},
		} {
			require.NoError(t, b.redis.Client.Del(t.Context(), b.phoneKey(order, "p:1")).Err())
			for _, w := range writes {
				w()
			}
			require.Equal(t, c.winner.phone.Number, b.cached(t, order, "p:1"), name)
		}
	}
	require.Zero(t, value(t, b.phones.metrics.phoneWriteErrors))

	// An entry the script cannot read (another format) is replaced.
	require.NoError(t, b.redis.Client.Set(t.Context(), b.phoneKey("o-old", "p:1"), `{"phone":"+79990000009"}`, time.Minute).Err())
	b.phones.store(t.Context(), entry("o-old", "+79990000001", exp, t0))
	require.Equal(t, "+79990000001", b.cached(t, "o-old", "p:1"))

	// The server forgetting the script (a restart) costs a resend, not a write.
	require.NoError(t, b.redis.Client.ScriptFlush(t.Context()).Err())
	b.phones.store(t.Context(), entry("o-old", "+79990000002", exp, t0))
	require.Equal(t, "+79990000002", b.cached(t, "o-old", "p:1"))
	require.Zero(t, value(t, b.phones.metrics.phoneWriteErrors))
}

// TestCacheEntryLivesTTLFromItsRead: an entry counts PHONE_CACHE_TTL from
// the upsert or read that produced it, not from the (possibly late) write,
// so a loser committed before the winner is gone within the bound even
// when the winner's write failed.
func TestCacheEntryLivesTTLFromItsRead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := phoneEntry{key: tracking.PhoneKey{OrderNr: "o-1", PickerID: "p-1"},
		phone:   tracking.Phone{Number: "+79990000001", ExpiresAt: time.Now().Add(time.Hour)},
		eventAt: t0, readAt: time.Now().Add(-58 * time.Second)}
	b.phones.store(t.Context(), e)
	ttl := b.redis.Client.PTTL(t.Context(), b.phoneKey("o-1", "p-1")).Val()
	require.Greater(t, ttl, time.Duration(0))
	require.LessOrEqual(t, ttl, 2*time.Second)

	e.key.OrderNr, e.readAt = "o-2", time.Now().Add(-61*time.Second)
	b.phones.fill(t.Context(), []phoneEntry{e})
	require.Equal(t, int64(0), b.redis.Client.Exists(t.Context(), b.phoneKey("o-2", "p-1")).Val(), "read too long ago: not cached")
}

// TestRacingWritersEndWithTheWinner: two phone events for one (order,
// picker) applied in one transaction, or by two replicas, whose cache
// writes land in the wrong order: the winner stays cached.
func TestRacingWritersEndWithTheWinner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	other := setupWith(t, b.db, b.redis) // a second replica
	ctx := t.Context()
	exp := time.Now().Add(30 * time.Minute).UTC().Truncate(time.Microsecond)

	// One transaction: +30 min then +60 min, both change the row.
	tx, err := b.db.BeginTxx(ctx, nil)
	require.NoError(t, err)
	loser, err := b.applier.Apply(ctx, tx, ready("one-tx", "p-1", "+79990000030", exp, t0))
	require.NoError(t, err)
	winner, err := b.applier.Apply(ctx, tx, ready("one-tx", "p-1", "+79990000060", exp.Add(30*time.Minute), t0))
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	require.True(t, loser.Changed && winner.Changed)
	winner.AfterCommit(ctx)
	loser.AfterCommit(ctx)
	require.Equal(t, "+79990000060", b.cached(t, "one-tx", "p-1"))

	// Two replicas: the loser committed first, its write lands last.
	loser = b.apply(t, ready("two-replicas", "p-1", "+79990000030", exp, t0))
	require.NoError(t, b.redis.Client.Del(ctx, b.phoneKey("two-replicas", "p-1")).Err()) // its write is late
	winner = other.apply(t, ready("two-replicas", "p-1", "+79990000060", exp.Add(30*time.Minute), t0))
	require.Equal(t, "+79990000060", b.cached(t, "two-replicas", "p-1"))
	loser.AfterCommit(ctx)
	require.Equal(t, "+79990000060", b.cached(t, "two-replicas", "p-1"))
	p, ok, err := b.phones.Lookup(ctx, b.db, "two-replicas", "p-1", time.Now())
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "+79990000060", p.Number)
}
