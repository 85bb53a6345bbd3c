package trackingpresenter

import "github.com/eats/eats-orders-tracking/platform/experiments"

// Flag is the value of an on/off experiment. enabled is required and must be
// a YAML bool: the experiments package refuses a missing field, "yes" and 1.
type Flag struct {
	Enabled bool `yaml:"enabled"`
}

// The presenter's experiments (DESIGN §7), evaluated per order with the
// eater, order, place, flow type and language as kwargs. An absent
// experiment means the card is not shown.
var (
	// CallPicker shows the "call the picker" card.
	CallPicker = experiments.NewKey[Flag]("eats_orders_tracking_retail_call_picker", nil)
	// ContactUs shows the "contact us" card.
	ContactUs = experiments.NewKey[Flag]("eats_orders_tracking_retail_contact_us", nil)
)
