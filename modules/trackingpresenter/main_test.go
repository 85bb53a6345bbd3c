package trackingpresenter

import (
	"testing"

	"go.uber.org/goleak"
)

// The change feed and the loader are goroutines: every test, the whole
// service's included, must leave none behind once stopped.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The HTTP client's idle keep-alive connections to stopped servers
		// close on their own schedule.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		// riverui (mounted by platform/queue for the whole service) is
		// started with a context that never ends, so its goroutines
		// outlive the app: a platform matter, not this module's.
		goleak.IgnoreTopFunction("riverqueue.com/riverui/internal/querycacher.(*QueryCacher[...]).Start.func1"),
		goleak.IgnoreTopFunction("riverqueue.com/riverui.(*Handler).Start.func1"),
	)
}
