package cleanup

import (
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Kind is the cleanup periodic's kind and queue.
const Kind = "cleanup"

// Args is the periodic cleanup job. It carries nothing: every run computes
// its cut-offs from the database's clock and the config.
type Args struct{}

// Kind implements river.JobArgs.
func (Args) Kind() string { return Kind }

// InsertOpts puts the cleanup on its own queue. A failed run is retried a
// couple of times; what it misses the next run deletes anyway. A run is
// unique while it waits, runs or waits for its retry: a run longer than
// the interval (a backlog) is not joined by the next on another replica.
func (Args) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       Kind,
		MaxAttempts: 3,
		UniqueOpts: river.UniqueOpts{
			ByState: []rivertype.JobState{
				rivertype.JobStateAvailable,
				rivertype.JobStatePending,
				rivertype.JobStateRetryable,
				rivertype.JobStateRunning,
				rivertype.JobStateScheduled,
			},
		},
	}
}
