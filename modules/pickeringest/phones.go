package pickeringest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/cache"
)

// phoneCacheTTL is the longest a phone stays in Redis (DESIGN §6): a missed
// cache write costs at most this long of a stale number.
const phoneCacheTTL = 60 * time.Second

// PhoneLookup reads forwarding phones through the Redis cache: Redis first,
// PostgreSQL on a miss or any Redis error (or with Redis off), filling the
// cache from what it read. It also writes the entries that Applied.AfterCommit
// asks for.
type PhoneLookup struct {
	redis   *cache.Redis // nil: no cache
	logger  *slog.Logger
	metrics *metrics
	now     func() time.Time
}

// newPhoneLookup builds the lookup; r may be nil (cache off).
func newPhoneLookup(r *cache.Redis, m *metrics, logger *slog.Logger) *PhoneLookup {
	return &PhoneLookup{redis: r, logger: logger, metrics: m, now: time.Now}
}

// cachedPhone is the cache entry's JSON (DESIGN §6).
type cachedPhone struct {
	Phone     string    `json:"phone"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (l *PhoneLookup) key(k tracking.PhoneKey) string {
	return l.redis.Key("eot", "picker_phone", k.OrderNr, k.PickerID)
}

// ttl is how long an entry for p may live from now: at most phoneCacheTTL,
// never past the phone's expiry; <= 0 means "don't cache".
func (l *PhoneLookup) ttl(p tracking.Phone) time.Duration {
	return min(phoneCacheTTL, p.ExpiresAt.Sub(l.now()))
}

// Lookup returns the valid (unexpired at now) phone of (orderNr, pickerID):
// Redis first; on a miss or any Redis error it reads picker_phones and
// fills the cache. ok is false when there is none or it has expired. Only
// PostgreSQL errors are returned.
func (l *PhoneLookup) Lookup(ctx context.Context, db sqlx.QueryerContext, orderNr, pickerID string, now time.Time) (tracking.Phone, bool, error) {
	got, err := l.LookupMany(ctx, db, []tracking.PhoneKey{{OrderNr: orderNr, PickerID: pickerID}}, now)
	if err != nil {
		return tracking.Phone{}, false, err
	}
	p, ok := got[tracking.PhoneKey{OrderNr: orderNr, PickerID: pickerID}]
	return p, ok, nil
}

// LookupMany is Lookup for many keys with one MGET and one SQL query for
// the misses. The map holds only the keys with a valid phone.
func (l *PhoneLookup) LookupMany(ctx context.Context, db sqlx.QueryerContext, keys []tracking.PhoneKey, now time.Time) (map[tracking.PhoneKey]tracking.Phone, error) {
	out := make(map[tracking.PhoneKey]tracking.Phone, len(keys))
	uniq := make([]tracking.PhoneKey, 0, len(keys))
	seen := make(map[tracking.PhoneKey]bool, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	if len(uniq) == 0 {
		return out, nil
	}
	misses, cacheUp := l.fromCache(ctx, uniq, now, out)
	if len(misses) == 0 {
		return out, nil
	}
	stored, err := selectPhones(ctx, db, misses)
	if err != nil {
		return nil, err
	}
	var fill []phoneEntry
	for k, p := range stored {
		if p.ExpiresAt.After(now) {
			out[k] = p
			fill = append(fill, phoneEntry{key: k, phone: p})
		}
	}
	if cacheUp {
		l.fill(ctx, fill) // not when the read failed: don't wait for Redis twice
	}
	return out, nil
}

// fromCache puts valid cached phones into out and returns the keys to read
// from PostgreSQL (with the cache off or failing, every key) and whether
// Redis answered.
func (l *PhoneLookup) fromCache(ctx context.Context, keys []tracking.PhoneKey, now time.Time, out map[tracking.PhoneKey]tracking.Phone) ([]tracking.PhoneKey, bool) {
	if !l.redis.Enabled() {
		return keys, false
	}
	redisKeys := make([]string, len(keys))
	for i, k := range keys {
		redisKeys[i] = l.key(k)
	}
	vals, err := l.redis.Client.MGet(ctx, redisKeys...).Result()
	if err != nil || len(vals) != len(keys) {
		l.metrics.phoneLookups.WithLabelValues(cacheError).Add(float64(len(keys)))
		l.logger.DebugContext(ctx, "phone cache read failed; reading PostgreSQL", "err", err)
		return keys, false
	}
	var misses []tracking.PhoneKey
	for i, v := range vals {
		s, isString := v.(string)
		if v == nil {
			l.metrics.phoneLookups.WithLabelValues(cacheMiss).Inc()
			misses = append(misses, keys[i])
			continue
		}
		var c cachedPhone
		if !isString || json.Unmarshal([]byte(s), &c) != nil || c.Phone == "" {
			l.metrics.phoneLookups.WithLabelValues(cacheError).Inc()
			misses = append(misses, keys[i])
			continue
		}
		if !c.ExpiresAt.After(now) {
			// The TTL should have removed it; PostgreSQL may know a newer phone.
			l.metrics.phoneLookups.WithLabelValues(cacheMiss).Inc()
			misses = append(misses, keys[i])
			continue
		}
		l.metrics.phoneLookups.WithLabelValues(cacheHit).Inc()
		out[keys[i]] = tracking.Phone{Number: c.Phone, ExpiresAt: c.ExpiresAt.UTC()}
	}
	return misses, true
}

// selectPhones reads the stored phones of keys, expired ones included.
func selectPhones(ctx context.Context, db sqlx.QueryerContext, keys []tracking.PhoneKey) (map[tracking.PhoneKey]tracking.Phone, error) {
	const q = `
		SELECT p.order_nr, p.picker_id, p.phone, p.expires_at
		FROM picker_phones p
		JOIN unnest($1::text[], $2::text[]) AS k(order_nr, picker_id)
		  ON p.order_nr = k.order_nr AND p.picker_id = k.picker_id`
	orders := make(pq.StringArray, len(keys))
	pickers := make(pq.StringArray, len(keys))
	for i, k := range keys {
		orders[i], pickers[i] = k.OrderNr, k.PickerID
	}
	var rows []struct {
		OrderNr   string    `db:"order_nr"`
		PickerID  string    `db:"picker_id"`
		Phone     string    `db:"phone"`
		ExpiresAt time.Time `db:"expires_at"`
	}
	if err := sqlx.SelectContext(ctx, db, &rows, q, orders, pickers); err != nil {
		return nil, fmt.Errorf("select picker_phones: %w", err)
	}
	out := make(map[tracking.PhoneKey]tracking.Phone, len(rows))
	for _, r := range rows {
		out[tracking.PhoneKey{OrderNr: r.OrderNr, PickerID: r.PickerID}] = tracking.Phone{Number: r.Phone, ExpiresAt: r.ExpiresAt.UTC()}
	}
	return out, nil
}

// store writes the entry of a phone that was just committed, replacing
// whatever is cached.
func (l *PhoneLookup) store(ctx context.Context, k tracking.PhoneKey, p tracking.Phone) {
	if !l.redis.Enabled() {
		return
	}
	ttl := l.ttl(p)
	if ttl < time.Millisecond {
		return // expired (or about to): never cache it
	}
	b, _ := json.Marshal(cachedPhone{Phone: p.Number, ExpiresAt: p.ExpiresAt.UTC()})
	if err := l.redis.Client.Set(ctx, l.key(k), b, ttl).Err(); err != nil {
		l.metrics.phoneWriteErrors.Inc()
		l.logger.WarnContext(ctx, "phone cache write failed; readers use PostgreSQL",
			"order_nr", k.OrderNr, "picker_id", k.PickerID, "phone", tracking.MaskPhone(p.Number), "err", err)
	}
}

// fill caches phones read from PostgreSQL on a miss. SET NX: an entry that
// a writer put there since our read is newer than what we read, so a fill
// never replaces it.
func (l *PhoneLookup) fill(ctx context.Context, entries []phoneEntry) {
	if !l.redis.Enabled() || len(entries) == 0 {
		return
	}
	pipe := l.redis.Client.Pipeline()
	n := 0
	for _, e := range entries {
		ttl := l.ttl(e.phone)
		if ttl < time.Millisecond {
			continue
		}
		b, _ := json.Marshal(cachedPhone{Phone: e.phone.Number, ExpiresAt: e.phone.ExpiresAt.UTC()})
		pipe.SetNX(ctx, l.key(e.key), b, ttl)
		n++
	}
	if n == 0 {
		return
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		l.metrics.phoneWriteErrors.Add(float64(n))
		l.logger.DebugContext(ctx, "phone cache fill failed", "entries", n, "err", err)
	}
}
