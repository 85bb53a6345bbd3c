//go:build !race

package experiments_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Evaluation must not allocate (the race detector changes escape analysis,
// hence the build tag). Not parallel: AllocsPerRun refuses to run so, as
// other goroutines' allocations would be counted.
func TestEvaluateAllocatesNothing(t *testing.T) {
	tb := setupAt(t, "testdata/design.yaml")
	require.NoError(t, tb.store.Load())
	allocs := testing.AllocsPerRun(1000, func() { evaluateThree(tb.store) })
	require.Zero(t, allocs)
}
