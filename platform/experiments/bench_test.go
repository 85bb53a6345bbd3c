package experiments_test

import (
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/experiments"
)

// orderKwargs is one retail order; the eater's buckets (19 for the call
// picker salt, 49 for contact us) make the percent conditions run.
var orderKwargs = experiments.Kwargs{}.
	With(experiments.EaterID, "1234567").
	With(experiments.OrderNr, "240101-123456").
	With(experiments.PlaceID, "77").
	With(experiments.FlowType, "retail").
	With(experiments.Language, "ru")

func evaluateThree(s *experiments.Store) (call, contact bool, timeouts int) {
	c, _ := callPicker.Get(s, orderKwargs)
	u, _ := contactUs.Get(s, orderKwargs)
	l, _ := timeoutsKey.Get(s, orderKwargs)
	return c.Enabled, u.Enabled, len(l)
}

// BenchmarkEvaluateThree is what the presenter and the updater pay per
// order: three experiments of DESIGN §7's example, with in, eq and percent
// clauses. Target: under 2 µs and 5 allocs/op.
func BenchmarkEvaluateThree(b *testing.B) {
	tb := setupAt(b, "testdata/design.yaml")
	require.NoError(b, tb.store.Load())
	call, contact, n := evaluateThree(tb.store)
	require.True(b, call)    // bucket 19 is in the half-of-eaters [0, 50)
	require.True(b, contact) // bucket 49 is outside [0, 33): the default
	require.Equal(b, 2, n)

	b.ReportAllocs()
	for b.Loop() {
		evaluateThree(tb.store)
	}
}

// BenchmarkBaselineTwoSHA256 is the floor for BenchmarkEvaluateThree: the
// two percent conditions must hash salt + "." + eater_id whatever the
// implementation, so evaluation can't be cheaper than these two sums.
func BenchmarkBaselineTwoSHA256(b *testing.B) {
	b.ReportAllocs()
	var sink byte
	for b.Loop() {
		s1 := sha256.Sum256([]byte("call-picker-1.1234567"))
		s2 := sha256.Sum256([]byte("contact-us-1.1234567"))
		sink ^= s1[0] ^ s2[0]
	}
	_ = sink
}
