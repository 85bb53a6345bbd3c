package modules_test

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/platform/httpapi"
	"github.com/eats/eats-orders-tracking/platform/queue"
)

// TestShutdownSharesOneBudget stops an app with a request and a job still
// running: the request finishes, the job is cancelled (and retried later),
// and the whole drain takes one SHUTDOWN_TIMEOUT, not one per component.
func TestShutdownSharesOneBudget(t *testing.T) {
	t.Parallel()
	const budget, request = 3 * time.Second, 2 * time.Second
	inHandler := make(chan struct{})
	w := &slowWorker{started: make(chan struct{})}
	a := apptest.Start(t, map[string]string{"SHUTDOWN_TIMEOUT": budget.String()},
		queue.AsWorkers(func() queue.Workers {
			return func(ws *river.Workers) error { return river.AddWorkerSafely(ws, w) }
		}),
		queue.AsQueue(func() queue.Queue { return queue.Queue{Name: "test_slow", MaxWorkers: 1} }),
		httpapi.AsHandler(func() httpapi.Handler {
			return httpapi.Handler{Pattern: "GET /test/slow", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				close(inHandler)
				time.Sleep(request)
				_, _ = io.WriteString(w, "done")
			})}
		}),
	)
	res, err := a.Client.Insert(context.Background(), slowArgs{Sleep: time.Hour}, nil)
	require.NoError(t, err)
	select {
	case <-w.started:
	case <-time.After(10 * time.Second):
		t.Fatal("job never started")
	}
	answered := make(chan int, 1)
	go func() {
		resp, err := http.Get(a.URL + "/test/slow")
		if err != nil {
			answered <- 0
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	<-inHandler

	began := time.Now()
	a.Stop(t)
	took := time.Since(began)
	require.Equal(t, http.StatusOK, <-answered, "the in-flight request must finish")
	require.GreaterOrEqual(t, took, budget-200*time.Millisecond, "the job must get the rest of the budget")
	// One budget plus River's cancel; a budget per component would be
	// request + budget = 5 s and more.
	require.Less(t, took, request+budget-500*time.Millisecond, "drain took %s", took)

	db, err := sql.Open("postgres", a.DSN)
	require.NoError(t, err)
	defer db.Close()
	var state string
	require.NoError(t, db.QueryRow(`SELECT state FROM river_job WHERE id = $1`, res.Job.ID).Scan(&state))
	require.Contains(t, []string{string(rivertype.JobStateRetryable), string(rivertype.JobStateAvailable)}, state,
		"a job cut short is retried, not lost")
}
