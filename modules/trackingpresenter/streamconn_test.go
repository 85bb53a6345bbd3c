package trackingpresenter

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The two stream transports look the same to a client: the same status,
// headers and bytes over HTTP/1.1 (the connection taken over, chunked),
// HTTP/2 (through the ResponseWriter) and HTTP/1.0 (taken over, the body
// ending with the connection); and each sees the client leave.
func TestStreamConnTransports(t *testing.T) {
	t.Parallel()
	const want = "retry: 2000\n\nevent: tracking\nid: abc\ndata: {\"x\":1}\n\n"
	type seen struct {
		raw  bool
		gone bool
	}
	handler := func(result chan<- seen) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c := openStreamConn(w, r)
			defer c.finish()
			_, raw := c.(*rawConn)
			assert.NoError(t, c.write([]byte("retry: 2000"), frameEnd))
			assert.NoError(t, c.write(frameHead, []byte("abc"), frameData, []byte(`{"x":1}`), frameEnd))
			if r.URL.Query().Get("hold") == "" {
				result <- seen{raw: raw}
				return
			}
			select {
			case <-c.gone():
				result <- seen{raw: raw, gone: true}
			case <-time.After(10 * time.Second):
				result <- seen{raw: raw}
			}
		}
	}
	checkHeaders := func(t *testing.T, h http.Header) {
		t.Helper()
		require.Equal(t, "text/event-stream", h.Get("Content-Type"))
		require.Equal(t, "no-store", h.Get("Cache-Control"))
		require.Equal(t, "no", h.Get("X-Accel-Buffering"))
		require.NotEmpty(t, h.Get("Date"))
	}

	for _, tc := range []struct {
		name  string
		h2    bool
		raw   bool
		proto string
	}{
		{name: "HTTP/1.1 taken over", raw: true, proto: "HTTP/1.1"},
		{name: "HTTP/2 through the writer", h2: true, proto: "HTTP/2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			result := make(chan seen, 1)
			srv := httptest.NewUnstartedServer(handler(result))
			if tc.h2 {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			client := srv.Client()

			resp, err := client.Get(srv.URL)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err, "the body ends cleanly")
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, tc.proto, resp.Proto)
			checkHeaders(t, resp.Header)
			require.Equal(t, want, string(body))
			require.Equal(t, seen{raw: tc.raw}, <-result)
			if tc.raw {
				require.Equal(t, []string{"chunked"}, resp.TransferEncoding)
				require.True(t, resp.Close, "Connection: close: the connection is the stream's")
			}

			// The client leaves mid-stream: the handler sees it. It reads
			// both frames first, so neither write can race the leaving
			// (over HTTP/2 a write after the reset fails "stream closed").
			resp, err = client.Get(srv.URL + "?hold=1")
			require.NoError(t, err)
			got := make([]byte, len(want))
			_, err = io.ReadFull(resp.Body, got)
			require.NoError(t, err)
			require.Equal(t, want, string(got))
			resp.Body.Close()
			client.CloseIdleConnections()
			require.Equal(t, seen{raw: tc.raw, gone: true}, <-result)
		})
	}

	t.Run("HTTP/1.0 taken over, ended by the close", func(t *testing.T) {
		t.Parallel()
		result := make(chan seen, 1)
		srv := httptest.NewServer(handler(result))
		defer srv.Close()
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		_, err = io.WriteString(conn, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		checkHeaders(t, resp.Header)
		require.Empty(t, resp.TransferEncoding)
		require.Equal(t, want, string(body))
		require.Equal(t, seen{raw: true}, <-result)
	})
}

// A write that missed its deadline is a slow reader even once the client
// is gone; a refused write, or any failure after the client left, is the
// client gone.
func TestWriteEndReason(t *testing.T) {
	t.Parallel()
	left := make(chan struct{})
	c := &rawConn{left: left}
	late := &net.OpError{Op: "write", Net: "tcp", Err: os.ErrDeadlineExceeded}
	refused := &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
	require.Equal(t, endWriteFailed, writeEndReason(c, late))
	require.Equal(t, endClientGone, writeEndReason(c, refused))
	require.Equal(t, endWriteFailed, writeEndReason(c, io.ErrShortWrite))
	close(left)
	require.Equal(t, endClientGone, writeEndReason(c, io.ErrShortWrite))
	require.Equal(t, endWriteFailed, writeEndReason(c, late))
}
