package pickerupdater

import (
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Kinds and queues of the module's jobs (DESIGN §5). River kind = queue name.
const (
	// Kind is the periodic job that finds stale picker orders.
	Kind = "picker_orders_updater"
	// RefreshKind is the job that refreshes one picker order.
	RefreshKind = "picker_order_refresh"
)

// UpdaterArgs is the periodic picker_orders_updater job. It carries nothing:
// every tick reads the experiment in force and the tables.
type UpdaterArgs struct{}

// Kind implements river.JobArgs.
func (UpdaterArgs) Kind() string { return Kind }

// InsertOpts puts the tick on its own queue. A failed tick is not retried:
// the next one, an interval later, does the same work.
//
// The tick is unique while one is waiting or running: the periodic inserts
// one per interval on the leader, but any replica may work it (the queue's
// MaxWorkers 1 is per replica), so a tick that outlives its interval
// would otherwise overlap the next on another replica. The periodic's
// insert is skipped as a duplicate instead, and the next interval tries
// again. (A tick left running by a killed replica holds the slot until
// River rescues it, RescueStuckJobsAfter in platform/queue.)
func (UpdaterArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       Kind,
		MaxAttempts: 1,
		UniqueOpts: river.UniqueOpts{
			ByState: []rivertype.JobState{
				rivertype.JobStateAvailable,
				rivertype.JobStatePending,
				rivertype.JobStateRunning,
				rivertype.JobStateScheduled,
			},
		},
	}
}

// RefreshArgs asks eats-picker-orders for one picker order and applies the
// answer. Only order_nr makes the job unique.
type RefreshArgs struct {
	OrderNr string `json:"order_nr" river:"unique"`
	// SeenUpdatedAt is the row's updated_at when the tick found it stale.
	// If the row has moved since (an event arrived, or another refresh
	// completed just before this one was enqueued), the order is not stale
	// any more and the refresh completes without asking. Absent: always ask.
	SeenUpdatedAt *time.Time `json:"seen_updated_at,omitempty"`
}

// Kind implements river.JobArgs.
func (RefreshArgs) Kind() string { return RefreshKind }

// refreshMaxAttempts bounds the retries of one refresh; the order stays
// stale after that and the next tick enqueues it again.
const refreshMaxAttempts = 3

// InsertOpts makes the refresh unique per order while one is waiting or
// running (River requires pending and running in the set; retryable is
// added so a failing order is not enqueued twice), on its own queue with
// bounded concurrency.
func (RefreshArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       RefreshKind,
		MaxAttempts: refreshMaxAttempts,
		UniqueOpts: river.UniqueOpts{
			ByArgs: true,
			ByState: []rivertype.JobState{
				rivertype.JobStateAvailable,
				rivertype.JobStatePending,
				rivertype.JobStateRunning,
				rivertype.JobStateRetryable,
				rivertype.JobStateScheduled,
			},
		},
	}
}
