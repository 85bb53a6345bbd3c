package experiments_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/experiments"
)

func flagFile(enabled bool) string {
	if enabled {
		return callHead + "    default: {enabled: true}\n"
	}
	return callHead + "    default: {enabled: false}\n"
}

func callPickerOn(s *experiments.Store) (enabled, ok bool) {
	f, ok := callPicker.Get(s, experiments.Kwargs{})
	return f.Enabled, ok
}

// Each way a file gets replaced in practice is picked up within 2 s, with
// the default poll interval.
func TestHotReload(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		// prepare returns the path the store watches; replace swaps in content.
		prepare func(t *testing.T, dir, content string) string
		replace func(t *testing.T, dir, content string)
	}{
		{
			name: "rewritten in place",
			prepare: func(t *testing.T, dir, content string) string {
				writeFile(t, filepath.Join(dir, "experiments.yaml"), content)
				return filepath.Join(dir, "experiments.yaml")
			},
			replace: func(t *testing.T, dir, content string) {
				writeFile(t, filepath.Join(dir, "experiments.yaml"), content)
			},
		},
		{
			name: "atomic rename",
			prepare: func(t *testing.T, dir, content string) string {
				writeFile(t, filepath.Join(dir, "experiments.yaml"), content)
				return filepath.Join(dir, "experiments.yaml")
			},
			replace: func(t *testing.T, dir, content string) {
				tmp := filepath.Join(dir, ".experiments.yaml.tmp")
				writeFile(t, tmp, content)
				require.NoError(t, os.Rename(tmp, filepath.Join(dir, "experiments.yaml")))
			},
		},
		{
			// What the kubelet does for a ConfigMap volume:
			// experiments.yaml -> ..data/experiments.yaml, ..data -> ..v1,
			// and an update renames a new ..data link over the old one.
			name: "ConfigMap symlink swap",
			prepare: func(t *testing.T, dir, content string) string {
				require.NoError(t, os.Mkdir(filepath.Join(dir, "..v1"), 0o755))
				writeFile(t, filepath.Join(dir, "..v1", "experiments.yaml"), content)
				require.NoError(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
				require.NoError(t, os.Symlink(filepath.Join("..data", "experiments.yaml"), filepath.Join(dir, "experiments.yaml")))
				return filepath.Join(dir, "experiments.yaml")
			},
			replace: func(t *testing.T, dir, content string) {
				require.NoError(t, os.Mkdir(filepath.Join(dir, "..v2"), 0o755))
				writeFile(t, filepath.Join(dir, "..v2", "experiments.yaml"), content)
				require.NoError(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
				require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
				require.NoError(t, os.RemoveAll(filepath.Join(dir, "..v1")))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tb := started(t, tt.prepare(t, dir, flagFile(true)))
			on, ok := callPickerOn(tb.store)
			require.True(t, ok)
			require.True(t, on)

			tt.replace(t, dir, flagFile(false))
			eventually(t, func() bool { on, ok := callPickerOn(tb.store); return ok && !on },
				"the new file is in force within 2 s")
			require.Equal(t, 2, strings.Count(tb.logs.String(), "experiments loaded"), "loaded once at start and once on change")
		})
	}
}

// The watcher refuses a bad file once, keeps the last good set, and picks
// up the next good file.
func TestWatcherRefusesOnce(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	path := filepath.Join(dir, "experiments.yaml")
	writeFile(t, path, flagFile(true))
	tb := started(t, path)

	writeFile(t, path, callHead+"    default: {enabled: \"yes\"}\n")
	eventually(t, func() bool { return tb.store.Status().RefusedTotal == 1 }, "the bad file is refused")
	on, ok := callPickerOn(tb.store)
	require.True(t, ok && on, "the last good set stays in force")
	require.Contains(t, tb.store.Status().LastError.Message, `default: enabled: must be true or false (got "yes")`)

	require.NoError(t, os.Remove(path))
	eventually(t, func() bool { return tb.store.Status().RefusedTotal == 2 }, "a vanished file is reported")
	on, ok = callPickerOn(tb.store)
	require.True(t, ok && on, "the last good set stays in force")

	writeFile(t, path, flagFile(false))
	eventually(t, func() bool { on, ok := callPickerOn(tb.store); return ok && !on }, "the next good file is loaded")

	// Many polls saw the bad file and the missing one: each was reported once.
	require.EqualValues(t, 2, tb.store.Status().RefusedTotal)
	require.Equal(t, 2, strings.Count(tb.logs.String(), "experiments file refused"))
	require.Equal(t, 2.0, metric(t, tb.registry, "eot_experiments_refused_total"))
}

// A missing file does not stop the service: nothing is in force until the
// file appears.
func TestStartWithoutFile(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "experiments.yaml")
	tb := started(t, path)
	_, ok := callPickerOn(tb.store)
	require.False(t, ok, "flags are off")
	st := tb.store.Status()
	require.Nil(t, st.LoadedAt)
	require.Empty(t, st.Experiments)
	require.Contains(t, tb.logs.String(), "experiments file not found")

	writeFile(t, path, flagFile(true))
	eventually(t, func() bool { on, ok := callPickerOn(tb.store); return ok && on }, "the file is loaded once it appears")
	require.Zero(t, tb.store.Status().RefusedTotal)
}

// An invalid file at start fails Start: the service must not run on a
// config nobody meant.
func TestStartWithInvalidFile(t *testing.T) {
	t.Parallel()

	tb := setup(t, callHead+"    default: {enabled: 1}\n")
	err := tb.store.Start(t.Context())
	require.ErrorContains(t, err, "default: enabled: must be true or false (got 1)")
	require.NoError(t, tb.store.Stop(t.Context()), "stopping a store that did not start is a no-op")
}

func TestStartTwice(t *testing.T) {
	t.Parallel()

	tb := started(t, filepath.Join(t.TempDir(), "experiments.yaml"))
	require.ErrorContains(t, tb.store.Start(t.Context()), "already started")
}

// Readers never see a half-loaded set while the file flips under them.
func TestReloadUnderConcurrentEvaluation(t *testing.T) {
	t.Parallel()

	// Every value in file i carries i, so a reader would notice a value
	// assembled from two files.
	file := func(i int) string {
		n := strconv.Itoa(i + 1)
		return "experiments:\n" +
			"  eats_orders_tracking_picker_statuses_timeout:\n" +
			"    default: [{status: new, timeout: " + n + "}, {status: picking, timeout: " + n + "}]\n" +
			"    clauses:\n" +
			"      - if: {eater_id: {percent: {salt: s, from: 0, to: 100}}}\n" +
			"        value: [{status: new, timeout: " + n + "}, {status: assigned, timeout: " + n + "}, {status: picking, timeout: " + n + "}]\n" +
			"  label: {default: \"" + n + "\"}\n"
	}
	path := filepath.Join(t.TempDir(), "experiments.yaml")
	writeFile(t, path, file(0))
	tb := started(t, path) // the watcher reloads concurrently too

	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		reads atomic.Int64
		bad   atomic.Value
	)
	kwargs := experiments.Kwargs{}.With(experiments.EaterID, "42")
	for range 4 {
		wg.Go(func() {
			last := 0
			for !stop.Load() {
				list, ok := timeoutsKey.Get(tb.store, kwargs)
				if !ok || len(list) != 3 || list[0].Timeout != list[1].Timeout || list[1].Timeout != list[2].Timeout {
					bad.Store(fmt.Sprintf("torn or absent value: %v %v", list, ok))
					return
				}
				if list[0].Timeout < last {
					bad.Store(fmt.Sprintf("went back from file %d to %d", last, list[0].Timeout))
					return
				}
				last = list[0].Timeout
				if _, ok := label.Get(tb.store, kwargs); !ok {
					bad.Store("label absent")
					return
				}
				_ = tb.store.Status()
				reads.Add(1)
			}
		})
	}
	const files = 200
	for i := 1; i < files; i++ {
		writeFile(t, path, file(i))
		require.NoError(t, tb.store.Load())
	}
	stop.Store(true)
	wg.Wait()
	require.Nil(t, bad.Load())
	require.Positive(t, reads.Load())
	list, ok := timeoutsKey.Get(tb.store, kwargs)
	require.True(t, ok)
	require.Equal(t, files, list[0].Timeout, "the last file written is in force")
}

// OnReload is called once per set put in force (not for a refused file),
// after the new set is readable, and no more once cancelled.
func TestOnReload(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	path := filepath.Join(dir, "experiments.yaml")
	writeFile(t, path, flagFile(true))
	tb := setupAt(t, path)
	var calls atomic.Int32
	var sawNew atomic.Bool
	cancel := tb.store.OnReload(func() {
		calls.Add(1)
		on, ok := callPickerOn(tb.store)
		sawNew.Store(ok && !on)
	})
	require.NoError(t, tb.store.Start(t.Context()))
	t.Cleanup(func() { require.NoError(t, tb.store.Stop(context.Background())) })
	require.EqualValues(t, 1, calls.Load(), "the initial load is a reload")

	writeFile(t, path, callHead+"    default: {enabled: \"yes\"}\n")
	eventually(t, func() bool { return tb.store.Status().RefusedTotal == 1 }, "the bad file is refused")
	require.EqualValues(t, 1, calls.Load(), "a refused file puts nothing in force")

	writeFile(t, path, flagFile(false))
	eventually(t, func() bool { return calls.Load() == 2 }, "the good file is put in force")
	require.True(t, sawNew.Load(), "the hook reads the new set")

	cancel()
	writeFile(t, path, flagFile(true))
	eventually(t, func() bool { on, ok := callPickerOn(tb.store); return ok && on }, "the next file is loaded")
	require.EqualValues(t, 2, calls.Load(), "no call after cancel")
}
