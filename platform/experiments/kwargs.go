package experiments

import "strconv"

// Kwarg names a request attribute that an experiment's if can test.
type Kwarg uint8

// The kwargs of DESIGN §7, in the order their names are listed there.
const (
	EaterID Kwarg = iota
	OrderNr
	PlaceID
	FlowType
	Language

	kwargCount = iota
)

// kwargNames are the names the file uses, indexed by Kwarg.
var kwargNames = [kwargCount]string{"eater_id", "order_nr", "place_id", "flow_type", "language"}

// String returns the name the file uses for k.
func (k Kwarg) String() string {
	if k < kwargCount {
		return kwargNames[k]
	}
	return "kwarg(" + strconv.Itoa(int(k)) + ")"
}

func kwargByName(name string) (Kwarg, bool) {
	for i, n := range kwargNames {
		if n == name {
			return Kwarg(i), true
		}
	}
	return 0, false
}

// Kwargs are the attributes of one evaluation. The zero value has none (the
// updater evaluates that way). It is a small fixed-size value, so building
// and passing it allocates nothing.
type Kwargs struct {
	values  [kwargCount]string
	present uint8 // bit k set: values[k] was given
}

// With returns a copy of k with name set to value. An empty value is still a
// present kwarg (exists: true holds); leave a kwarg out when it is unknown.
// It panics if name is not one of the Kwarg constants.
func (k Kwargs) With(name Kwarg, value string) Kwargs {
	k.values[name] = value
	k.present |= 1 << name
	return k
}

// get returns the kwarg's value and whether it was given.
func (k *Kwargs) get(name Kwarg) (string, bool) {
	return k.values[name], k.present&(1<<name) != 0
}
