package experiments

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eats/eats-orders-tracking/platform/metrics"
)

// StoreParams configures a Store.
type StoreParams struct {
	// Path is the experiments file (EXPERIMENTS_FILE).
	Path string
	// Definitions are the experiments the Store decodes and serves. Any
	// other name in the file is ignored, with a warning and the
	// eot_experiments_ignored gauge, not refused: in a rolling upgrade a file
	// naming a new version's experiment reaches the old replicas first, and
	// refusing it there would freeze their set. ValidateFile, which CI runs,
	// refuses such names, so a typo still stops a change.
	Definitions []Definition
	// Logger gets a line per load and per refusal; nil discards.
	Logger *slog.Logger
	// Registerer gets the eot_experiments_* metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// PollInterval is how often the watcher looks at the file. A change is
	// in force after about two intervals. Default 500ms.
	PollInterval time.Duration
}

// defaultPollInterval keeps a change in force within 2 s (DESIGN §7) while
// costing one stat a poll.
const defaultPollInterval = 500 * time.Millisecond

// Store holds the set of experiments in force and reloads it when the file
// changes. Reads (Key.Get) take no lock: they load an immutable snapshot.
type Store struct {
	path    string
	defs    map[string]Definition
	log     *slog.Logger
	every   time.Duration
	metrics storeMetrics

	current atomic.Pointer[snapshot]

	mu      sync.Mutex // serialises loads and guards the fields below
	seen    observation
	pending *pendingChange
	lastErr *LoadError
	refused uint64

	runMu sync.Mutex // guards the watcher's handles
	stop  context.CancelFunc
	done  chan struct{}

	hooksMu sync.Mutex // guards hooks and hookSeq
	hooks   map[uint64]func()
	hookSeq uint64
}

// snapshot is one loaded file, compiled. It is never modified once stored.
type snapshot struct {
	experiments map[string]*experiment
	ignored     []string  // names in the file that no module defines
	loadedAt    time.Time // zero until a file was loaded
}

// observation is the version of the file the Store last acted on (loaded,
// refused or reported as unreadable), so each version is acted on once.
type observation struct {
	info    os.FileInfo // nil when no file was read
	readAt  time.Time
	hash    [32]byte
	missing bool   // the file did not exist
	errText string // why it could not be read
}

// racyWindow: file systems stamp mtimes coarsely (Linux per jiffy, some per
// second or two), so a write just after a read can leave size and mtime as
// they were. A stat is trusted only once the file was older than this when
// it was read; until then the content is read and hashed again (git's
// "racily clean" rule).
const racyWindow = 2 * time.Second

// unchanged reports whether fi surely describes the version observed.
func (o *observation) unchanged(fi os.FileInfo) bool {
	return o.info != nil && os.SameFile(o.info, fi) &&
		o.info.Size() == fi.Size() && o.info.ModTime().Equal(fi.ModTime()) &&
		o.readAt.Sub(fi.ModTime()) > racyWindow
}

// pendingChange is new content seen once; it is applied when the next read
// agrees, so a file caught mid-write is neither loaded nor refused.
type pendingChange struct {
	obs  observation
	data []byte
}

// LoadError is the last refusal of the file.
type LoadError struct {
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// Status is the set in force and the last refusal, for the internal
// endpoint. It is a copy: changing it changes nothing in the Store.
type Status struct {
	Path string `json:"path"`
	// LoadedAt is when the set in force was loaded; null if none was.
	LoadedAt *time.Time `json:"loaded_at"`
	// Experiments are the experiments in force, each as written in the file
	// (default and clauses).
	Experiments map[string]any `json:"experiments"`
	// Ignored are names in the file that this version does not define.
	Ignored      []string   `json:"ignored"`
	LastError    *LoadError `json:"last_error"`
	RefusedTotal uint64     `json:"refused_total"`
}

// NewStore checks the parameters and registers the metrics. It does no I/O:
// Start (or Load) reads the file. Until then no experiment is in force.
func NewStore(p StoreParams) (*Store, error) {
	if p.Path == "" {
		return nil, errors.New("experiments: path is empty")
	}
	if p.PollInterval < 0 {
		return nil, fmt.Errorf("experiments: poll interval must not be negative (got %s)", p.PollInterval)
	}
	defs, err := checkDefinitions(p.Definitions)
	if err != nil {
		return nil, fmt.Errorf("experiments: %w", err)
	}
	m, err := newStoreMetrics(p.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Store{
		path:    p.Path,
		defs:    defs,
		log:     cmp.Or(p.Logger, slog.New(slog.DiscardHandler)),
		every:   cmp.Or(p.PollInterval, defaultPollInterval),
		metrics: m,
	}
	s.current.Store(&snapshot{})
	return s, nil
}

// Load reads the file now and, if it is valid, puts it in force. Otherwise
// the last good set stays in force and the refusal is recorded for Status,
// counted and logged here (callers need not log the returned error).
func (s *Store) Load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.loadLocked()
	if err != nil {
		s.logRefusal(err)
	}
	return err
}

func (s *Store) loadLocked() error {
	obs, data, err := readFile(s.path)
	if err != nil {
		s.seen = observation{missing: errors.Is(err, fs.ErrNotExist), errText: err.Error()}
		s.pending = nil
		return s.refuseLocked(err)
	}
	return s.applyLocked(obs, data)
}

// applyLocked compiles data and swaps it in, or refuses it.
func (s *Store) applyLocked(obs observation, data []byte) error {
	s.seen, s.pending = obs, nil
	exps, unknown, err := compile(data, s.defs)
	if err != nil {
		return s.refuseLocked(&fileError{path: s.path, err: err})
	}
	if len(unknown) > 0 {
		s.log.Warn("experiments file names experiments this version does not define; ignoring them (run `experiments validate` to catch typos)", "path", s.path, "ignored", unknown)
	}
	s.metrics.ignored.Set(float64(len(unknown)))
	now := time.Now()
	s.current.Store(&snapshot{experiments: exps, loadedAt: now, ignored: unknown})
	s.metrics.loaded.Set(float64(len(exps)))
	s.metrics.lastGood.Set(float64(now.UnixNano()) / 1e9)
	s.log.Info("experiments loaded", "path", s.path, "experiments", len(exps))
	s.notifyReload()
	return nil
}

// OnReload calls fn each time a new set is put in force, after readers see
// it (a caller that recomputes in fn reads the new set). fn runs on the
// loading goroutine with the Store's lock held: it must not block nor call
// back into Load; it may read (Key.Get, Status). Calling the returned
// function stops the calls.
//
// Why a hook: answers built from the set (the tracking presenter's
// pre-encoded bodies and its streams) must change the moment a reload is
// in force, and polling Status for that costs a wake-up per reader.
func (s *Store) OnReload(fn func()) (cancel func()) {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	if s.hooks == nil {
		s.hooks = map[uint64]func(){}
	}
	s.hookSeq++
	id := s.hookSeq
	s.hooks[id] = fn
	return func() {
		s.hooksMu.Lock()
		defer s.hooksMu.Unlock()
		delete(s.hooks, id)
	}
}

func (s *Store) notifyReload() {
	s.hooksMu.Lock()
	fns := make([]func(), 0, len(s.hooks))
	for _, fn := range s.hooks {
		fns = append(fns, fn)
	}
	s.hooksMu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func (s *Store) refuseLocked(err error) error {
	s.lastErr = &LoadError{At: time.Now(), Message: err.Error()}
	s.refused++
	s.metrics.refused.Inc()
	return err
}

func (s *Store) logRefusal(err error) {
	s.log.Error("experiments file refused; the last good set stays in force", "path", s.path, "error", err)
}

// Start loads the file and starts watching it. A file that cannot be read
// or is invalid fails Start, so the service does not run on a broken
// config; a missing file does not: nothing is in force (flags off, the
// updater idle) until it appears. Start does not block.
func (s *Store) Start(ctx context.Context) error {
	s.runMu.Lock()
	defer s.runMu.Unlock()
	if s.stop != nil {
		return errors.New("experiments: store already started")
	}
	if err := s.loadInitial(); err != nil {
		return fmt.Errorf("load experiments: %w", err)
	}
	// The start context ends once start-up is over; the watcher lives
	// until Stop.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stop, s.done = cancel, make(chan struct{})
	go s.watch(wctx, s.done)
	return nil
}

func (s *Store) loadInitial() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	obs, data, err := readFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.seen = observation{missing: true, errText: err.Error()}
		s.log.Warn("experiments file not found; no experiment is in force until it appears", "path", s.path)
		return nil
	}
	if err != nil {
		return s.refuseLocked(err)
	}
	return s.applyLocked(obs, data)
}

// Stop stops the watcher and waits for it, at most until ctx ends. The set
// in force stays readable.
func (s *Store) Stop(ctx context.Context) error {
	s.runMu.Lock()
	stop, done := s.stop, s.done
	s.stop, s.done = nil, nil
	s.runMu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop experiments watcher: %w", ctx.Err())
	}
}

func (s *Store) watch(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.poll()
		}
	}
}

// poll looks at the file once: a stat that surely matches the version last
// acted on costs nothing more; otherwise the content is read and hashed, so
// a touch or a ConfigMap resync with the same content does not reload, and
// a symlink swap (os.Stat follows links) does.
func (s *Store) poll() {
	fi, err := os.Stat(s.path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.observeErrorLocked(err)
		return
	}
	if s.pending == nil && s.seen.unchanged(fi) {
		return
	}
	obs, data, err := readFile(s.path)
	if err != nil {
		s.observeErrorLocked(err)
		return
	}
	switch {
	case s.seen.info != nil && obs.hash == s.seen.hash:
		s.seen, s.pending = obs, nil // same content as last acted on
	case s.pending != nil && obs.hash == s.pending.obs.hash:
		if err := s.applyLocked(obs, data); err != nil {
			s.logRefusal(err)
		}
	default:
		s.pending = &pendingChange{obs: obs, data: data}
	}
}

// observeErrorLocked reports a file the watcher cannot read, once per
// distinct error; the set in force stays.
func (s *Store) observeErrorLocked(err error) {
	missing := errors.Is(err, fs.ErrNotExist)
	if (missing && s.seen.missing) || (!missing && s.seen.errText == err.Error()) {
		return
	}
	s.seen, s.pending = observation{missing: missing, errText: err.Error()}, nil
	s.logRefusal(s.refuseLocked(err))
}

// LoadedAt is when the set in force was loaded, zero if none was: a cheap
// version of the set (one atomic load), for whoever keeps what the set
// decided and must notice a reload.
func (s *Store) LoadedAt() time.Time {
	return s.current.Load().loadedAt
}

// Status returns the set in force, when it was loaded and the last refusal.
func (s *Store) Status() Status {
	snap := s.current.Load()
	st := Status{Path: s.path, Experiments: make(map[string]any, len(snap.experiments))}
	if !snap.loadedAt.IsZero() {
		at := snap.loadedAt
		st.LoadedAt = &at
	}
	for name, e := range snap.experiments {
		st.Experiments[name] = toTree(e.raw)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr != nil {
		le := *s.lastErr
		st.LastError = &le
	}
	st.RefusedTotal = s.refused
	st.Ignored = snap.ignored
	return st
}

type storeMetrics struct {
	refused  prometheus.Counter
	lastGood prometheus.Gauge
	loaded   prometheus.Gauge
	ignored  prometheus.Gauge
}

func newStoreMetrics(reg prometheus.Registerer) (storeMetrics, error) {
	m := storeMetrics{
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eot_experiments_refused_total",
			Help: "Experiments files refused (unreadable, malformed or invalid); the last good set stayed in force.",
		}),
		lastGood: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eot_experiments_last_good_load_timestamp_seconds",
			Help: "Unix time of the last successful load of the experiments file.",
		}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eot_experiments_loaded",
			Help: "Experiments in force.",
		}),
		ignored: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eot_experiments_ignored",
			Help: "Experiments in the file that this version does not define (a typo, or meant for a newer version).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	if err := metrics.Register(reg, "experiments", m.refused, m.lastGood, m.loaded, m.ignored); err != nil {
		return m, err
	}
	return m, nil
}
