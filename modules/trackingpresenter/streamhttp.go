package trackingpresenter

import (
	"context"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
)

// streamPath is the live variant of trackingPath (DESIGN §4.4).
const streamPath = trackingPath + "/stream"

const (
	// heartbeatEvery: a comment this often keeps idle connections (and
	// the proxies in between) open and finds dead clients.
	heartbeatEvery = 15 * time.Second
	// writeDeadline bounds each write: a reader that takes longer is slow
	// or gone, and its stream ends. Each write extends the deadline, so
	// the server's WriteTimeout does not end a healthy stream.
	writeDeadline = 10 * time.Second
	// retryMin and retryJitter: the reconnect delay told to clients,
	// spread so a replica's streams do not all come back at once.
	retryMin    = 2 * time.Second
	retryJitter = 3 * time.Second
)

// streamInput is trackingInput's headers plus Last-Event-ID (huma does
// not read an unexported embedded struct).
type streamInput struct {
	EatsUser    string `header:"X-Eats-User" doc:"As for getTracking." example:"user_id=12345, personal_phone_id=abc"`
	YaTaxiUser  string `header:"X-YaTaxi-User" doc:"As for getTracking." example:"eats_user_id=12345"`
	Language    string `header:"X-Request-Language" doc:"As for getTracking: en or en-* for English; anything else, or nothing, for Russian." example:"ru"`
	LastEventID string `header:"Last-Event-ID" doc:"The id of the last frame received, on reconnect: no first frame is sent while the answer is still that version." example:"2a9c1f0e3b4d5c6a"`
}

func (p *presenter) registerStream(api huma.API) {
	frame := &huma.Schema{
		Title:       "Event tracking",
		Description: "One frame: event, id and data lines, then an empty line. Between frames the server sends ':' comments (every 15 s) and retry: lines.",
		Type:        huma.TypeObject,
		Properties: map[string]*huma.Schema{
			"event": {Type: huma.TypeString, Description: "Always tracking.", Enum: []any{"tracking"}},
			"id": {Type: huma.TypeString, Description: "The answer's version (62 bits of the SHA-256 of data, hex), the same on every replica: send it back as Last-Event-ID when reconnecting.",
				Examples: []any{"2a9c1f0e3b4d5c6a"}},
			"data":  api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[trackingResponse](), true, "TrackingResponse"),
			"retry": {Type: huma.TypeInteger, Description: "Milliseconds to wait before reconnecting; sent on open and when the server ends the stream."},
		},
		Required: []string{"event", "id", "data"},
	}
	huma.Register(api, huma.Operation{
		OperationID: "streamTracking",
		Method:      http.MethodGet,
		Path:        streamPath,
		Summary:     "The eater's tracked orders, pushed as they change",
		Description: "Server-sent events of the same answer as getTracking, byte for byte in each frame's data line, for clients that hold a connection instead of polling. " +
			"The same identity and language headers and 400 rules; a browser sends them through a fetch-based reader (EventSource cannot set headers). " +
			"The first frame comes at once unless Last-Event-ID equals the current version; then one frame per change of the answer (a burst gives one frame with the latest answer), " +
			"including changes that come from time (a phone's expiry, a finished order leaving the list). " +
			"The server ends a stream after TRACKING_STREAM_MAX_AGE (10 minutes unless configured otherwise), when a newer stream of the same eater exceeds TRACKING_STREAMS_PER_EATER (5), " +
			"when its replica cannot prove it sees every change, and when the replica drains; the client reconnects after retry. " +
			"503 (with Retry-After) when the replica holds TRACKING_STREAMS_MAX streams, cannot prove it sees every change, is draining, or has the tracking cache off: poll getTracking meanwhile.",
		Errors: []int{http.StatusBadRequest, http.StatusServiceUnavailable, http.StatusInternalServerError},
		Responses: map[string]*huma.Response{
			"200": {
				Description: "An endless stream of frames.",
				Headers: map[string]*huma.Param{
					"Cache-Control":     {Description: "always no-store", Schema: &huma.Schema{Type: huma.TypeString}},
					"X-Accel-Buffering": {Description: "always no: a proxy in front must pass each frame on at once", Schema: &huma.Schema{Type: huma.TypeString}},
				},
				Content: map[string]*huma.MediaType{"text/event-stream": {Schema: &huma.Schema{
					Title:       "Server Sent Events",
					Description: "The frames, serialized as UTF-8 text according to the Server-Sent Events specification.",
					Type:        huma.TypeArray,
					Items:       frame,
				}}},
			},
		},
	}, p.stream)
}

// stream opens a stream: the checks and bounds are answered as problems
// before any frame; the frames are written by serveStream.
func (p *presenter) stream(_ context.Context, in *streamInput) (*huma.StreamResponse, error) {
	eater, err := eaterID(in.EatsUser, in.YaTaxiUser)
	if err != nil {
		return nil, identityProblem(err)
	}
	if p.cache == nil {
		return nil, unavailable(errStreamsNoFeed, time.Minute)
	}
	s, err := p.hub.open(eater, languageOf(in.Language), in.LastEventID, p.now())
	if err != nil {
		return nil, unavailable(err, retryDelay())
	}
	return &huma.StreamResponse{Body: func(ctx huma.Context) { p.serveStream(ctx, s) }}, nil
}

// unavailable is a 503 problem with Retry-After.
func unavailable(err error, after time.Duration) error {
	secs := max(1, int(after.Round(time.Second)/time.Second))
	return huma.ErrorWithHeaders(huma.Error503ServiceUnavailable("live tracking unavailable, poll instead: "+err.Error()),
		http.Header{"Retry-After": {strconv.Itoa(secs)}})
}

// retryDelay is a jittered reconnect delay.
func retryDelay() time.Duration {
	return retryMin + rand.N(retryJitter) //nolint:gosec // spreading reconnects needs no secure randomness
}

// serveStream writes the stream's frames until it ends.
func (p *presenter) serveStream(hctx huma.Context, s *stream) {
	r, w := humago.Unwrap(hctx)
	h := p.hub
	entered := h.enter()
	defer func() {
		h.close(s)
		if entered {
			h.serving.Done()
		}
	}()
	c := openStreamConn(w, r)
	defer c.finish()
	ended := func(reason string) {
		h.metrics.streamsEnded.WithLabelValues(reason).Inc()
	}
	retry := func() []byte {
		return strconv.AppendInt([]byte("retry: "), retryDelay().Milliseconds(), 10)
	}

	if s.eater == "" {
		// No identity: the empty answer once, then only heartbeats.
		body := encodeAnswer(nil)
		s.offer(body, version(body), time.Time{})
	}
	if err := c.write(retry(), frameEnd); err != nil {
		ended(endWriteFailed)
		return
	}
	age := time.NewTimer(h.cfg.StreamMaxAge)
	defer age.Stop()
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	for {
		select {
		case <-c.gone():
			if _, id, _ := s.take(); id != "" {
				h.metrics.streamDropped.Inc()
			}
			ended(endClientGone)
			return
		case <-s.done:
			reason := s.endReason()
			_ = c.write(retry(), frameEnd)
			ended(reason)
			return
		case <-age.C:
			s.end(endMaxAge)
		case <-beat.C:
			if err := c.write(heartbeat); err != nil {
				ended(writeEndReason(c, err))
				return
			}
		case <-s.wake:
			body, id, at := s.take()
			if id == "" {
				continue
			}
			// The frame goes out in parts: a stream keeps no buffer of
			// its own between frames.
			if err := c.write(frameHead, []byte(id), frameData, body, frameEnd); err != nil {
				h.metrics.streamDropped.Inc()
				ended(writeEndReason(c, err))
				return
			}
			h.metrics.streamFrames.Inc()
			if !at.IsZero() {
				h.metrics.streamLatency.Observe(time.Since(at).Seconds())
			}
		}
	}
}

// The fixed parts of what a stream writes.
var (
	frameHead = []byte("event: tracking\nid: ")
	frameData = []byte("\ndata: ")
	frameEnd  = []byte("\n\n")
	heartbeat = []byte(":\n\n")
)
