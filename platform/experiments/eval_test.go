package experiments_test

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/experiments"
)

// kw builds kwargs from name/value pairs, e.g. kw(experiments.EaterID, "42").
func kw(pairs ...any) experiments.Kwargs {
	var k experiments.Kwargs
	for i := 0; i+1 < len(pairs); i += 2 {
		k = k.With(pairs[i].(experiments.Kwarg), pairs[i+1].(string))
	}
	return k
}

// bucketOf is DESIGN §7's bucket, written here from the spec rather than
// taken from the package, so the two are checked against each other.
func bucketOf(salt, value string) int {
	sum := sha256.Sum256([]byte(salt + "." + value))
	return int(binary.BigEndian.Uint64(sum[:8]) % 100)
}

func TestMatching(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		body   string // the label experiment
		kwargs experiments.Kwargs
		want   string // "" with !ok
		ok     bool
	}{
		{
			name:   "default when no clause holds",
			body:   "default: def\nclauses:\n  - {if: {place_id: {eq: '1'}}, value: one}\n",
			kwargs: kw(experiments.PlaceID, "2"),
			want:   "def", ok: true,
		},
		{
			name:   "first clause that holds wins",
			body:   "default: def\nclauses:\n  - {name: a, if: {place_id: {eq: '1'}}, value: first}\n  - {name: b, if: {place_id: {in: ['1']}}, value: second}\n",
			kwargs: kw(experiments.PlaceID, "1"),
			want:   "first", ok: true,
		},
		{
			name:   "a later clause when the first does not hold",
			body:   "default: def\nclauses:\n  - {if: {place_id: {eq: '2'}}, value: first}\n  - {if: {place_id: {eq: '1'}}, value: second}\n",
			kwargs: kw(experiments.PlaceID, "1"),
			want:   "second", ok: true,
		},
		{
			name:   "no default and no clause holds: absent",
			body:   "clauses:\n  - {if: {place_id: {eq: '1'}}, value: one}\n",
			kwargs: kw(experiments.PlaceID, "2"),
			ok:     false,
		},
		{
			name:   "no default but a clause holds",
			body:   "clauses:\n  - {if: {place_id: {eq: '1'}}, value: one}\n",
			kwargs: kw(experiments.PlaceID, "1"),
			want:   "one", ok: true,
		},
		{
			name:   "neither default nor clauses: absent",
			body:   "{}\n",
			kwargs: kw(experiments.PlaceID, "1"),
			ok:     false,
		},
		{
			name:   "eq compares as strings: 40 matches \"40\"",
			body:   "default: def\nclauses:\n  - {if: {place_id: {eq: 40}}, value: hit}\n",
			kwargs: kw(experiments.PlaceID, "40"),
			want:   "hit", ok: true,
		},
		{
			name:   "eq compares exactly as written: 040 is not 40",
			body:   "default: def\nclauses:\n  - {if: {place_id: {eq: 040}}, value: hit}\n",
			kwargs: kw(experiments.PlaceID, "40"),
			want:   "def", ok: true,
		},
		{
			name:   "eq does not match another value",
			body:   "default: def\nclauses:\n  - {if: {language: {eq: ru}}, value: hit}\n",
			kwargs: kw(experiments.Language, "en"),
			want:   "def", ok: true,
		},
		{
			name:   "in matches a listed value, numbers as strings",
			body:   "default: def\nclauses:\n  - {if: {place_id: {in: [40, '41']}}, value: hit}\n",
			kwargs: kw(experiments.PlaceID, "41"),
			want:   "hit", ok: true,
		},
		{
			name:   "in does not match an unlisted value",
			body:   "default: def\nclauses:\n  - {if: {place_id: {in: [40, 41]}}, value: hit}\n",
			kwargs: kw(experiments.PlaceID, "42"),
			want:   "def", ok: true,
		},
		{
			name:   "in with a long list",
			body:   "default: def\nclauses:\n  - {if: {place_id: {in: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}, value: hit}\n",
			kwargs: kw(experiments.PlaceID, "9"),
			want:   "hit", ok: true,
		},
		{
			name:   "in with a long list, no match",
			body:   "default: def\nclauses:\n  - {if: {place_id: {in: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}}, value: hit}\n",
			kwargs: kw(experiments.PlaceID, "11"),
			want:   "def", ok: true,
		},
		{
			name:   "exists: true with the kwarg",
			body:   "default: def\nclauses:\n  - {if: {order_nr: {exists: true}}, value: hit}\n",
			kwargs: kw(experiments.OrderNr, "240101-1"),
			want:   "hit", ok: true,
		},
		{
			name:   "exists: true with an empty value: given is given",
			body:   "default: def\nclauses:\n  - {if: {order_nr: {exists: true}}, value: hit}\n",
			kwargs: kw(experiments.OrderNr, ""),
			want:   "hit", ok: true,
		},
		{
			name:   "exists: true without the kwarg",
			body:   "default: def\nclauses:\n  - {if: {order_nr: {exists: true}}, value: hit}\n",
			kwargs: kw(experiments.EaterID, "1"),
			want:   "def", ok: true,
		},
		{
			name:   "exists: false without the kwarg",
			body:   "default: def\nclauses:\n  - {if: {order_nr: {exists: false}}, value: hit}\n",
			kwargs: experiments.Kwargs{},
			want:   "hit", ok: true,
		},
		{
			name:   "exists: false with the kwarg",
			body:   "default: def\nclauses:\n  - {if: {order_nr: {exists: false}}, value: hit}\n",
			kwargs: kw(experiments.OrderNr, "1"),
			want:   "def", ok: true,
		},
		{
			name:   "an absent kwarg fails eq",
			body:   "default: def\nclauses:\n  - {if: {place_id: {eq: ''}}, value: hit}\n",
			kwargs: experiments.Kwargs{},
			want:   "def", ok: true,
		},
		{
			name:   "an absent kwarg fails in",
			body:   "default: def\nclauses:\n  - {if: {place_id: {in: ['']}}, value: hit}\n",
			kwargs: experiments.Kwargs{},
			want:   "def", ok: true,
		},
		{
			name:   "an absent kwarg fails percent, even 0..100",
			body:   "default: def\nclauses:\n  - {if: {eater_id: {percent: {salt: s, from: 0, to: 100}}}, value: hit}\n",
			kwargs: kw(experiments.PlaceID, "1"),
			want:   "def", ok: true,
		},
		{
			name:   "percent 0..100 holds for anyone given",
			body:   "default: def\nclauses:\n  - {if: {eater_id: {percent: {salt: s, from: 0, to: 100}}}, value: hit}\n",
			kwargs: kw(experiments.EaterID, "anyone"),
			want:   "hit", ok: true,
		},
		{
			name:   "percent 50..50 holds for nobody",
			body:   "default: def\nclauses:\n  - {if: {eater_id: {percent: {salt: s, from: 50, to: 50}}}, value: hit}\n",
			kwargs: kw(experiments.EaterID, "anyone"),
			want:   "def", ok: true,
		},
		{
			name:   "every kwarg of an if must hold",
			body:   "default: def\nclauses:\n  - {if: {place_id: {eq: '1'}, flow_type: {eq: retail}}, value: hit}\n",
			kwargs: kw(experiments.PlaceID, "1", experiments.FlowType, "shop"),
			want:   "def", ok: true,
		},
		{
			name:   "every kwarg of an if holds",
			body:   "default: def\nclauses:\n  - {if: {place_id: {eq: '1'}, flow_type: {eq: retail}}, value: hit}\n",
			kwargs: kw(experiments.PlaceID, "1", experiments.FlowType, "retail"),
			want:   "hit", ok: true,
		},
		{
			name:   "every condition on one kwarg must hold",
			body:   "default: def\nclauses:\n  - {if: {place_id: {in: ['1', '2'], eq: '2'}}, value: hit}\n",
			kwargs: kw(experiments.PlaceID, "1"),
			want:   "def", ok: true,
		},
		{
			name:   "any: one branch holds",
			body:   "default: def\nclauses:\n  - {if: {any: [{place_id: {eq: '1'}}, {language: {eq: ru}}]}, value: hit}\n",
			kwargs: kw(experiments.Language, "ru"),
			want:   "hit", ok: true,
		},
		{
			name:   "any: no branch holds",
			body:   "default: def\nclauses:\n  - {if: {any: [{place_id: {eq: '1'}}, {language: {eq: ru}}]}, value: hit}\n",
			kwargs: kw(experiments.Language, "en", experiments.PlaceID, "2"),
			want:   "def", ok: true,
		},
		{
			name:   "not inverts",
			body:   "default: def\nclauses:\n  - {if: {not: {flow_type: {in: [retail, shop]}}}, value: hit}\n",
			kwargs: kw(experiments.FlowType, "native"),
			want:   "hit", ok: true,
		},
		{
			name:   "not of a holding if does not hold",
			body:   "default: def\nclauses:\n  - {if: {not: {flow_type: {in: [retail, shop]}}}, value: hit}\n",
			kwargs: kw(experiments.FlowType, "retail"),
			want:   "def", ok: true,
		},
		{
			name:   "not of a condition on an absent kwarg holds",
			body:   "default: def\nclauses:\n  - {if: {not: {flow_type: {eq: retail}}}, value: hit}\n",
			kwargs: experiments.Kwargs{},
			want:   "hit", ok: true,
		},
		{
			name:   "kwargs and combinators together",
			body:   "default: def\nclauses:\n  - if: {flow_type: {eq: retail}, any: [{place_id: {eq: '1'}}, {place_id: {eq: '2'}}], not: {eater_id: {eq: '7'}}}\n    value: hit\n",
			kwargs: kw(experiments.FlowType, "retail", experiments.PlaceID, "2", experiments.EaterID, "8"),
			want:   "hit", ok: true,
		},
		{
			name:   "an empty if holds (a kwarg-free clause)",
			body:   "default: def\nclauses:\n  - {if: {}, value: hit}\n",
			kwargs: experiments.Kwargs{},
			want:   "hit", ok: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := loaded(t, labelFile(tt.body))
			got, ok := label.Get(tb.store, tt.kwargs)
			require.Equal(t, tt.ok, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestMissingExperiment(t *testing.T) {
	t.Parallel()

	tb := loaded(t, "experiments:\n  label: {default: here}\n")
	_, ok := callPicker.Get(tb.store, kw(experiments.EaterID, "1"))
	require.False(t, ok, "an experiment missing from the file is absent")
	list, ok := timeoutsKey.Get(tb.store, experiments.Kwargs{})
	require.False(t, ok)
	require.Empty(t, list)

	var nilStore *experiments.Store
	_, ok = label.Get(nilStore, experiments.Kwargs{})
	require.False(t, ok, "a nil store has nothing in force")
}

func TestNothingLoaded(t *testing.T) {
	t.Parallel()

	tb := setup(t, "experiments:\n  label: {default: here}\n")
	_, ok := label.Get(tb.store, experiments.Kwargs{})
	require.False(t, ok, "before Load or Start nothing is in force")
}

func TestPercentBucket(t *testing.T) {
	t.Parallel()

	// Fixed across runs, processes and machines: computed once with
	// sha256sum and pinned here, and recomputed from the spec below.
	const salt, eater, pinned = "call-picker-1", "42", 21
	require.Equal(t, pinned, bucketOf(salt, eater))

	percentFile := func(from, to int) string {
		return labelFile("default: out\nclauses:\n  - if: {eater_id: {percent: {salt: " + salt +
			", from: " + strconv.Itoa(from) + ", to: " + strconv.Itoa(to) + "}}}\n    value: in\n")
	}
	tests := []struct {
		from, to int
		want     string
	}{
		{pinned, pinned + 1, "in"},
		{0, pinned + 1, "in"},
		{pinned, 100, "in"},
		{0, pinned, "out"}, // to is exclusive
		{pinned + 1, 100, "out"},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.from)+".."+strconv.Itoa(tt.to), func(t *testing.T) {
			t.Parallel()
			tb := loaded(t, percentFile(tt.from, tt.to))
			got, ok := label.Get(tb.store, kw(experiments.EaterID, eater))
			require.True(t, ok)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestPercentShare(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		from, to int
	}{
		{"first 30%", 0, 30},
		{"middle 30%", 40, 70},
		{"half", 50, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := loaded(t, labelFile("default: out\nclauses:\n  - if: {eater_id: {percent: {salt: share-test, from: "+
				strconv.Itoa(tt.from)+", to: "+strconv.Itoa(tt.to)+"}}}\n    value: in\n"))
			const n = 10_000
			in := 0
			for i := range n {
				id := strconv.Itoa(1_000_000 + i)
				got, ok := label.Get(tb.store, kw(experiments.EaterID, id))
				require.True(t, ok)
				b := bucketOf("share-test", id)
				require.Equal(t, b >= tt.from && b < tt.to, got == "in", "eater %s in bucket %d", id, b)
				if got == "in" {
					in++
				}
			}
			share := float64(in) / n
			wantShare := float64(tt.to-tt.from) / 100
			require.InDelta(t, wantShare, share, 0.03, "%d of %d eaters", in, n)
		})
	}
}

// The updater evaluates with no kwargs: only the default and kwarg-free
// clauses apply.
func TestNoKwargs(t *testing.T) {
	t.Parallel()

	tb := loaded(t, `experiments:
  eats_orders_tracking_picker_statuses_timeout:
    default: [{status: picking, timeout: 300}]
    clauses:
      - name: per-place
        if: {place_id: {eq: "40"}}
        value: [{status: picking, timeout: 1}]
      - name: kwarg-free
        if: {order_nr: {exists: false}}
        value: [{status: picking, timeout: 120}, {status: new, timeout: 600}]
`)
	got, ok := timeoutsKey.Get(tb.store, experiments.Kwargs{})
	require.True(t, ok)
	require.Equal(t, []statusTimeout{{"picking", 120}, {"new", 600}}, got)
}

func TestDesignExample(t *testing.T) {
	t.Parallel()

	tb := setupAt(t, "testdata/design.yaml")
	require.NoError(t, tb.store.Load())

	tests := []struct {
		name   string
		kwargs experiments.Kwargs
		call   bool
	}{
		{"pilot store is off", kw(experiments.PlaceID, "40", experiments.EaterID, "42"), false},
		{"other store, eater in the half", kw(experiments.PlaceID, "7", experiments.EaterID, "42"), true},
		{"other store, eater outside the half: default", kw(experiments.PlaceID, "7", experiments.EaterID, "100"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := callPicker.Get(tb.store, tt.kwargs)
			require.True(t, ok)
			require.Equal(t, tt.call, got.Enabled)
		})
	}

	got, ok := timeoutsKey.Get(tb.store, kw(experiments.FlowType, "shop"))
	require.True(t, ok)
	require.Equal(t, []statusTimeout{{"picking", 900}, {"assigned", 900}}, got)
}

func TestKwargString(t *testing.T) {
	t.Parallel()

	names := map[experiments.Kwarg]string{
		experiments.EaterID: "eater_id", experiments.OrderNr: "order_nr", experiments.PlaceID: "place_id",
		experiments.FlowType: "flow_type", experiments.Language: "language",
	}
	for k, name := range names {
		require.Equal(t, name, k.String())
	}
}
