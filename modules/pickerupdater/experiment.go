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
	}
	return nil
}
