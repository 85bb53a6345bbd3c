package trackingpresenter

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"
)

// A stream's bytes go out through one of two transports. Over HTTP/1.x
// the handler takes the connection over (rawConn): an idle stream then
// holds no response buffer (net/http's 2 KiB chunking writer goes back to
// its pool) and no header snapshot, about 3 KiB less per stream, which is
// what a replica holding thousands of idle streams pays for (issue 14:
// heap per idle stream ≤ 16 KiB). Where the connection cannot be taken
// (HTTP/2, a writer that does not allow it) the frames go through the
// ResponseWriter as before (responseConn). Both write each frame whole
// with its own deadline and say when the client has gone.
type streamConn interface {
	// write sends parts as one frame (one chunk), within writeDeadline.
	write(parts ...[]byte) error
	// gone is closed when the client has left.
	gone() <-chan struct{}
	// finish ends the response; the stream is over.
	finish()
}

// streamHeaders are the stream's response headers (besides Date and the
// framing ones).
var streamHeaders = [][2]string{
	{"Cache-Control", "no-store"},
	{"Content-Type", "text/event-stream"},
	{"X-Accel-Buffering", "no"},
}

// openStreamConn starts the 200 response of a stream on w.
func openStreamConn(w http.ResponseWriter, r *http.Request) streamConn {
	if c, err := hijackStream(w, r); err == nil {
		return c
	}
	return newResponseConn(w, r)
}

// responseConn writes through net/http's ResponseWriter.
type responseConn struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	ctx context.Context
}

func newResponseConn(w http.ResponseWriter, r *http.Request) *responseConn {
	rc := http.NewResponseController(w)
	// The server's ReadTimeout would otherwise cancel the request (and
	// so the stream) once it passes; a client that leaves is still seen.
	_ = rc.SetReadDeadline(time.Time{})
	hdr := w.Header()
	for _, kv := range streamHeaders {
		hdr.Set(kv[0], kv[1])
	}
	w.WriteHeader(http.StatusOK)
	return &responseConn{w: w, rc: rc, ctx: r.Context()}
}

func (c *responseConn) write(parts ...[]byte) error {
	if err := c.rc.SetWriteDeadline(time.Now().Add(writeDeadline)); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := c.w.Write(p); err != nil {
			return err
		}
	}
	return c.rc.Flush()
}

func (c *responseConn) gone() <-chan struct{} { return c.ctx.Done() }

func (c *responseConn) finish() {}

// rawConn writes HTTP/1.x straight to a hijacked connection: chunked to
// an HTTP/1.1 client (as net/http would), delimited by the close to an
// HTTP/1.0 one. The connection is closed when the stream ends.
type rawConn struct {
	conn    net.Conn
	bw      *bufio.Writer // net/http's own 4 KiB connection buffer
	chunked bool
	left    chan struct{}
	size    [16]byte // a chunk's size line, without an allocation per frame
}

// hijackStream takes the connection over and writes the response head.
func hijackStream(w http.ResponseWriter, r *http.Request) (*rawConn, error) {
	if r.ProtoMajor != 1 {
		return nil, errors.ErrUnsupported
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	c := &rawConn{conn: conn, bw: brw.Writer, chunked: r.ProtoAtLeast(1, 1), left: make(chan struct{})}
	// net/http's watch for the client leaving stopped with the hijack;
	// this read takes its place. A client sends nothing more on a
	// stream, so any byte read is dropped, and the read ends when the
	// client closes (or the stream closes the connection).
	go func() {
		defer close(c.left)
		var b [1]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				return
			}
		}
	}()
	head := make([]byte, 0, 256)
	head = append(head, "HTTP/1.1 200 OK\r\n"...)
	for _, kv := range streamHeaders {
		head = append(append(append(append(head, kv[0]...), ": "...), kv[1]...), "\r\n"...)
	}
	head = append(append(append(head, "Date: "...), time.Now().UTC().Format(http.TimeFormat)...), "\r\n"...)
	head = append(head, "Connection: close\r\n"...)
	if c.chunked {
		head = append(head, "Transfer-Encoding: chunked\r\n"...)
	}
	head = append(head, "\r\n"...)
	// A failed head write is not an error here: the connection is taken
	// already, and bufio keeps the error for the stream's first write.
	_ = c.send(head)
	return c, nil
}

func (c *rawConn) write(parts ...[]byte) error {
	return c.send(nil, parts...)
}

// send writes raw as it is, then parts as one chunk (none when parts are
// empty: an empty chunk would end the body), and flushes.
func (c *rawConn) send(raw []byte, parts ...[]byte) error {
	if err := c.conn.SetWriteDeadline(time.Now().Add(writeDeadline)); err != nil {
		return err
	}
	_, _ = c.bw.Write(raw)
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	framed := c.chunked && n > 0
	if framed {
		_, _ = c.bw.Write(append(strconv.AppendInt(c.size[:0], int64(n), 16), "\r\n"...))
	}
	for _, p := range parts {
		_, _ = c.bw.Write(p)
	}
	if framed {
		_, _ = c.bw.WriteString("\r\n")
	}
	// bufio keeps the first error and returns it from every later call.
	return c.bw.Flush()
}

func (c *rawConn) gone() <-chan struct{} { return c.left }

// finish ends the chunked body (best effort: the client may be gone) and
// closes the connection, which also ends the read watching it.
func (c *rawConn) finish() {
	if c.chunked {
		_ = c.send([]byte("0\r\n\r\n"))
	}
	_ = c.conn.Close()
}

// writeEndReason tells a slow reader from one that left. A write that
// missed its deadline is a slow (or stuck) reader; a write the peer
// refused (reset, broken pipe), or one that failed after the client was
// seen leaving, is the client gone; anything else is a failed write.
func writeEndReason(c streamConn, err error) string {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return endWriteFailed
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return endClientGone
	}
	select {
	case <-c.gone():
		return endClientGone
	default:
		return endWriteFailed
	}
}
