package trackingpresenter_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/modules/trackingpresenter"
)

// A reader whose socket is really full (a tiny receive buffer, never
// read): the server's write to it blocks, yet the eater's other stream and
// another eater's stream get every change at once, and the stuck stream
// ends by its write deadline (write_failed) instead of holding anything.
// Unlike TestStreamSlowReaderDoesNotBlock, the end proves the writer was
// blocked: a write that never blocked would not fail.
func TestStreamStuckSocketIsCutAndBlocksNoOne(t *testing.T) {
	t.Parallel()
	// A large answer (600 orders, ~225 KB a body) fills the socket, and
	// the server's send buffer (up to 4 MB on loopback), in a few dozen
	// frames.
	a := apptest.Start(t, map[string]string{"TRACKING_MAX_ORDERS_PER_EATER": "1000"})
	for i := range 600 {
		insertOrder(t, a.DB, order{nr: fmt.Sprintf("stuck-%03d", i), eater: "stuck", flow: "native", status: "created"})
	}
	settle(t, a)

	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.DialContext(t.Context(), "tcp", strings.TrimPrefix(a.URL, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nX-Eats-User: user_id=stuck\r\n\r\n", trackingpresenter.StreamPath)
	require.NoError(t, err)
	// Never read from conn again.

	same := openStream(t, a, user("stuck"))
	same.next(t, 5*time.Second)
	other := openStream(t, a, user("other"))
	other.next(t, 5*time.Second)

	// Changes to the stuck eater, each a new body, more than fill the
	// socket; the other streams keep up throughout.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for i := range 30 {
		nr := fmt.Sprintf("more-%02d", i)
		insertOrder(t, a.DB, order{nr: nr, eater: "stuck", flow: "native", status: "created"})
		waitFrameWith(ctx, t, same, nr)
	}
	insertOrder(t, a.DB, order{nr: "other-1", eater: "other", flow: "native", status: "created"})
	waitFrameWith(ctx, t, other, `"other-1"`)

	// The stuck stream's write passes its deadline (10 s) and it ends.
	for deadline := time.Now().Add(25 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		m := metricsText(t, a)
		if strings.Contains(m, `eot_tracking_streams_ended_total{reason="write_failed"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stuck stream did not end by its write deadline as write_failed:\n%s", grepLines(m, "eot_tracking_stream"))
		}
	}
	require.Contains(t, metricsText(t, a), "eot_tracking_streams_open 2", "the two readers' streams stay open")
	insertOrder(t, a.DB, order{nr: "after", eater: "stuck", flow: "native", status: "created"})
	waitFrameWith(ctx, t, same, `"after"`)
}

// waitFrameWith reads frames until one contains want.
func waitFrameWith(ctx context.Context, t *testing.T, s *sse, want string) {
	t.Helper()
	for {
		select {
		case f, ok := <-s.frames:
			require.True(t, ok, "the stream ended while waiting for %s", want)
			if f.event == "tracking" && strings.Contains(f.data, want) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no frame with %s in time", want)
		}
	}
}

// grepLines keeps the lines of s that start with prefix.
func grepLines(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
