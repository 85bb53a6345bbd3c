package statecache

import (
	"testing"

	"go.uber.org/goleak"
)

// The change feed and the loader are goroutines: every test must leave
// none behind once stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
