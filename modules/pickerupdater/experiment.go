package pickerupdater

import (
	"fmt"

	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/experiments"
)

// StatusTimeout is one entry of the experiment StatusesTimeout: how many
// seconds a picker order may stay quiet in Status before the updater asks
// eats-picker-orders for it again.
type StatusTimeout struct {
	Status  tracking.PickerStatus `yaml:"status"`
	Timeout int                   `yaml:"timeout"`
}

// StatusesTimeout is the updater's experiment (DESIGN §7). A status that is
// not listed is never refreshed; an absent experiment refreshes nothing.
// Both fields of an entry are required and the timeout must be an integer
// (the experiments package refuses 1.5 or "x" before validateTimeouts runs).
var StatusesTimeout = experiments.NewKey[[]StatusTimeout]("eats_orders_tracking_picker_statuses_timeout", validateTimeouts)

// maxTimeout bounds a timeout at 7 days. The updater computes
// time.Duration(Timeout) * time.Second, which overflows to a negative
// duration from about 292 years on and would make every order stale on every
// tick; and tracking rows are deleted long before a week (cleanup's
// RETENTION, 72h by default), so a larger value never fires anyway and is
// most likely a typo, such as milliseconds for seconds.
const maxTimeout = 7 * 24 * 60 * 60

func validateTimeouts(list []StatusTimeout) error {
	seen := make(map[tracking.PickerStatus]bool, len(list))
	for i, st := range list {
		if !st.Status.Valid() {
			return fmt.Errorf("[%d].status: unknown picker status (got %q)", i, st.Status)
		}
		if seen[st.Status] {
			return fmt.Errorf("[%d].status: duplicate %q", i, st.Status)
		}
		seen[st.Status] = true
		// 0 would make the updater refresh the order on every tick.
		if st.Timeout < 1 {
			return fmt.Errorf("[%d].timeout: must be an integer ≥ 1 (got %d)", i, st.Timeout)
		}
		if st.Timeout > maxTimeout {
			return fmt.Errorf("[%d].timeout: must be at most %d seconds, 7 days (got %d)", i, maxTimeout, st.Timeout)
		}
	}
	return nil
}
