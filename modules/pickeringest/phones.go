package pickeringest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/cache"
)

// PhoneLookup reads forwarding phones through the Redis cache: Redis first,
// PostgreSQL on a miss or any Redis error (or with Redis off), filling the
// cache from what it read. It also writes the entries that Applied.AfterCommit
// asks for.
//
// The bound of DESIGN §6 (within PHONE_CACHE_TTL of the job that makes a
// phone the winner completing, every answer shows it) holds whatever the
// order of writes, because:
//   - every write, after a commit or filling a miss, is a compare-and-set
//     (casPhone): it never replaces an entry that wins over it by the rule
//     of §3.1, so a late loser cannot hide a winner;
//   - an entry lives PHONE_CACHE_TTL from before the read or the upsert
//     that produced it, not from the write: a loser committed (or read)
//     before the winner's commit is gone within the bound even when the
//     winner's own write failed and the loser's landed late;
//   - each phone returned carries FreshUntil: when the Redis entry it came
//     from ends (PTTL, read atomically with the value, on the server's
//     clock), or PHONE_CACHE_TTL after the PostgreSQL read. In-process
//     copies (the tracking state cache) live no longer.
type PhoneLookup struct {
	redis   *cache.Redis  // nil: no cache
	ttl     time.Duration // PHONE_CACHE_TTL
	logger  *slog.Logger
	metrics *metrics
	now     func() time.Time
}

// newPhoneLookup builds the lookup; r may be nil (cache off).
func newPhoneLookup(cfg Config, r *cache.Redis, m *metrics, logger *slog.Logger) *PhoneLookup {
	return &PhoneLookup{redis: r, ttl: cfg.PhoneCacheTTL, logger: logger, metrics: m, now: time.Now}
}

// phoneKeyVersion is the entry format's version in its key: replicas of
// two releases (v1 had neither escaped ids nor event_at) never read each
// other's entries.
const phoneKeyVersion = "v2"

// cachedPhone is the cache entry's JSON (DESIGN §6). event_at and the
// fixed-width times are what casPhone compares.
type cachedPhone struct {
	Phone     string `json:"phone"`
	ExpiresAt string `json:"expires_at"` // fixedTime
	EventAt   string `json:"event_at"`   // fixedTime
}

// fixedTimeLayout is RFC 3339 in UTC with exactly six fractional digits
// (PostgreSQL's precision): equal lengths, so byte order is time order.
const fixedTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

func fixedTime(t time.Time) string { return t.UTC().Format(fixedTimeLayout) }

// phoneEntry is a picker_phones row to cache, and when it was read (or
// upserted): the entry lives at most PHONE_CACHE_TTL from then.
type phoneEntry struct {
	key     tracking.PhoneKey
	phone   tracking.Phone
	eventAt time.Time // the row's event_at: second in the winner rule
	readAt  time.Time // before the statement that produced it
}

func (l *PhoneLookup) key(k tracking.PhoneKey) string {
	return l.redis.Key("eot", phoneKeyVersion, "picker_phone", k.OrderNr, k.PickerID)
}

// entryTTL is how long e may live in Redis from now: PHONE_CACHE_TTL from
// its read, never past the phone's expiry; below a millisecond means
// "don't cache".
func (l *PhoneLookup) entryTTL(e phoneEntry, now time.Time) time.Duration {
	return min(l.ttl-now.Sub(e.readAt), e.phone.ExpiresAt.Sub(now))
}

// casPhone writes an entry (KEYS[1]; ARGV[1] its JSON, ARGV[2] its TTL in
// ms) unless the key holds one that wins over it by DESIGN §3.1's rule:
// the later expires_at (ARGV[3]), then the later event_at (ARGV[4]), then
// the greater phone (ARGV[5]); an equal entry is kept. Times are fixed-width
// strings, compared byte by byte like the phone (Lua's '<' on strings
// follows the server's locale; PostgreSQL compares phones COLLATE "C").
// An entry it cannot read is replaced. Returns 1 when it wrote.
var casPhone = redis.NewScript(`
local function cmp(a, b)
  if a == b then return 0 end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      if x < y then return -1 end
      return 1
    end
  end
  if #a < #b then return -1 end
  return 1
end
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, c = pcall(cjson.decode, cur)
  if ok and type(c) == 'table' and type(c.expires_at) == 'string'
      and type(c.event_at) == 'string' and type(c.phone) == 'string' then
    local r = cmp(ARGV[3], c.expires_at)
    if r == 0 then r = cmp(ARGV[4], c.event_at) end
    if r == 0 then r = cmp(ARGV[5], c.phone) end
    if r <= 0 then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

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

// LookupMany is Lookup for many keys with one MGET (with the entries'
// remaining TTLs, in one MULTI) and one SQL query for the misses. The map
// holds only the keys with a valid phone, each with its FreshUntil.
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
	readAt := l.now()
	stored, err := selectPhones(ctx, db, misses, readAt)
	if err != nil {
		return nil, err
	}
	var fill []phoneEntry
	for _, e := range stored {
		if e.phone.ExpiresAt.After(now) {
			p := e.phone
			p.FreshUntil = readAt.Add(l.ttl)
			out[e.key] = p
			fill = append(fill, e)
		}
	}
	if cacheUp {
		l.fill(ctx, fill) // not when the read failed: don't wait for Redis twice
	}
	return out, nil
}

// fromCache puts valid cached phones into out and returns the keys to read
// from PostgreSQL (with the cache off or failing, every key) and whether
// Redis answered. The values and their PTTLs are read in one MULTI, so a
// TTL always belongs to the value read with it.
func (l *PhoneLookup) fromCache(ctx context.Context, keys []tracking.PhoneKey, now time.Time, out map[tracking.PhoneKey]tracking.Phone) ([]tracking.PhoneKey, bool) {
	if !l.redis.Enabled() {
		return keys, false
	}
	redisKeys := make([]string, len(keys))
	for i, k := range keys {
		redisKeys[i] = l.key(k)
	}
	// Before the request: the entries end no sooner than asked + PTTL.
	asked := l.now()
	var mget *redis.SliceCmd
	pttls := make([]*redis.DurationCmd, len(keys))
	_, err := l.redis.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		mget = p.MGet(ctx, redisKeys...)
		for i, k := range redisKeys {
			pttls[i] = p.PTTL(ctx, k)
		}
		return nil
	})
	var vals []any
	if err == nil {
		vals, err = mget.Result()
	}
	if err != nil || len(vals) != len(keys) {
		l.metrics.phoneLookups.WithLabelValues(cacheError).Add(float64(len(keys)))
		l.logger.DebugContext(ctx, "phone cache read failed; reading PostgreSQL", "err", err)
		return keys, false
	}
	var misses []tracking.PhoneKey
	for i, v := range vals {
		if v == nil {
			l.metrics.phoneLookups.WithLabelValues(cacheMiss).Inc()
			misses = append(misses, keys[i])
			continue
		}
		p, ok := decodeCached(v)
		left, err := pttls[i].Result()
		if !ok || err != nil || left <= 0 { // left < 0: no TTL, which we never write
			l.metrics.phoneLookups.WithLabelValues(cacheError).Inc()
			misses = append(misses, keys[i])
			continue
		}
		if !p.ExpiresAt.After(now) {
			// The TTL should have removed it; PostgreSQL may know a newer phone.
			l.metrics.phoneLookups.WithLabelValues(cacheMiss).Inc()
			misses = append(misses, keys[i])
			continue
		}
		l.metrics.phoneLookups.WithLabelValues(cacheHit).Inc()
		p.FreshUntil = asked.Add(min(left, l.ttl))
		out[keys[i]] = p
	}
	return misses, true
}

// decodeCached reads an entry; ok is false for anything this release did
// not write.
func decodeCached(v any) (tracking.Phone, bool) {
	s, isString := v.(string)
	var c cachedPhone
	if !isString || json.Unmarshal([]byte(s), &c) != nil || c.Phone == "" || c.EventAt == "" {
		return tracking.Phone{}, false
	}
	expires, err := time.Parse(time.RFC3339Nano, c.ExpiresAt)
	if err != nil {
		return tracking.Phone{}, false
	}
	return tracking.Phone{Number: c.Phone, ExpiresAt: expires.UTC()}, true
}

// selectPhones reads the stored phones of keys, expired ones included,
// as entries read at readAt.
func selectPhones(ctx context.Context, db sqlx.QueryerContext, keys []tracking.PhoneKey, readAt time.Time) ([]phoneEntry, error) {
	const q = `
		SELECT p.order_nr, p.picker_id, p.phone, p.expires_at, p.event_at
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
		EventAt   time.Time `db:"event_at"`
	}
	if err := sqlx.SelectContext(ctx, db, &rows, q, orders, pickers); err != nil {
		return nil, fmt.Errorf("select picker_phones: %w", err)
	}
	out := make([]phoneEntry, len(rows))
	for i, r := range rows {
		out[i] = phoneEntry{
			key:     tracking.PhoneKey{OrderNr: r.OrderNr, PickerID: r.PickerID},
			phone:   tracking.Phone{Number: r.Phone, ExpiresAt: r.ExpiresAt.UTC()},
			eventAt: r.EventAt.UTC(),
			readAt:  readAt,
		}
	}
	return out, nil
}

// store caches the phone an event just committed, unless the entry there
// wins over it (a later event's, written first).
func (l *PhoneLookup) store(ctx context.Context, e phoneEntry) {
	n, err := l.write(ctx, []phoneEntry{e})
	if err != nil {
		l.metrics.phoneWriteErrors.Add(float64(n))
		l.logger.WarnContext(ctx, "phone cache write failed; readers use PostgreSQL",
			"order_nr", e.key.OrderNr, "picker_id", e.key.PickerID, "phone", tracking.MaskPhone(e.phone.Number), "err", err)
	}
}

// fill caches phones read from PostgreSQL on a miss, by the same
// compare-and-set: what a writer put there since our read wins over what
// we read (or equals it), so a fill never replaces it.
func (l *PhoneLookup) fill(ctx context.Context, entries []phoneEntry) {
	n, err := l.write(ctx, entries)
	if err != nil {
		l.metrics.phoneWriteErrors.Add(float64(n))
		l.logger.DebugContext(ctx, "phone cache fill failed", "entries", n, "err", err)
	}
}

// write runs casPhone for each entry that may still be cached, in one
// pipeline. It returns how many it tried and the first error.
func (l *PhoneLookup) write(ctx context.Context, entries []phoneEntry) (int, error) {
	if !l.redis.Enabled() || len(entries) == 0 {
		return 0, nil
	}
	now := l.now()
	type call struct {
		keys []string
		args []any
	}
	calls := make([]call, 0, len(entries))
	for _, e := range entries {
		ttl := l.entryTTL(e, now)
		if ttl < time.Millisecond {
			continue // expired, about to, or read too long ago: never cache it
		}
		b, _ := json.Marshal(cachedPhone{Phone: e.phone.Number, ExpiresAt: fixedTime(e.phone.ExpiresAt), EventAt: fixedTime(e.eventAt)})
		calls = append(calls, call{
			keys: []string{l.key(e.key)},
			args: []any{string(b), ttl.Milliseconds(), fixedTime(e.phone.ExpiresAt), fixedTime(e.eventAt), e.phone.Number},
		})
	}
	if len(calls) == 0 {
		return 0, nil
	}
	run := func(eval func(redis.Pipeliner, call) *redis.Cmd) ([]*redis.Cmd, error) {
		cmds := make([]*redis.Cmd, len(calls))
		_, err := l.redis.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range calls {
				cmds[i] = eval(p, c)
			}
			return nil
		})
		return cmds, err
	}
	cmds, err := run(func(p redis.Pipeliner, c call) *redis.Cmd { return casPhone.EvalSha(ctx, p, c.keys, c.args...) })
	if err != nil && noScript(cmds) {
		// The server does not know the script yet (or lost it on a restart):
		// send it whole once; EVAL caches it for the EVALSHAs that follow.
		_, err = run(func(p redis.Pipeliner, c call) *redis.Cmd { return casPhone.Eval(ctx, p, c.keys, c.args...) })
	}
	return len(calls), err
}

// noScript reports whether some command failed only because the server
// does not know the script.
func noScript(cmds []*redis.Cmd) bool {
	for _, c := range cmds {
		if c != nil && c.Err() != nil && redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			return true
		}
	}
	return false
}
