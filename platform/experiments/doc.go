// Package experiments loads the YAML file of experiments (DESIGN §7), keeps
// the last valid set in force and answers, per request, which value each
// experiment has for a set of kwargs.
//
// The package knows nothing about orders or statuses. A module that owns an
// experiment declares it once as a typed [Key] with its own validator and
// hands the key's [Definition] to the [Store] through the fx value group
// "experiments" ([AsDefinition]):
//
//	var CallPicker = experiments.NewKey[Flag]("eats_orders_tracking_retail_call_picker", nil)
//
//	fx.Module("tracking-presenter", experiments.AsDefinition(CallPicker.Definition()), ...)
//
//	flag, ok := CallPicker.Get(store, experiments.Kwargs{}.With(experiments.EaterID, "42"))
//
// The file:
//
//	experiments:
//	  NAME:
//	    default: VALUE
//	    clauses:
//	      - name: pilot-stores
//	        if: {place_id: {in: ["40", "41"]}}
//	        value: VALUE
//
// Clauses are tried in order; the first whose if holds gives the value, else
// the default; with neither, the experiment is absent (Get reports false). An
// if maps kwargs (eater_id, order_nr, place_id, flow_type, language) to
// conditions (eq, in, exists, percent), all of which must hold, and combines
// ifs with any: [IF, ...] and not: IF. Values compare as strings; an absent
// kwarg fails every condition but exists: false. percent: {salt, from, to}
// holds when the first 8 bytes of sha256(salt + "." + value), read as a
// big-endian uint64, mod 100, is in [from, to).
//
// Loading is all or nothing. Every value is decoded strictly into its key's
// type (unknown or missing fields and scalars of the wrong YAML type are
// errors) and checked by the key's validator; every condition is compiled,
// and one that can never hold (any: [], in: [], not: {}) is an error. An
// experiment no Definition knows is ignored by the Store (during a rolling
// upgrade the file may name a newer version's experiment) and refused by
// [ValidateFile], where it is most likely a typo. A file that fails any of
// this is refused whole: the last good set stays in force, the refusal is
// logged once, counted in eot_experiments_refused_total and shown by
// [Store.Status]. The compiled set is immutable and swapped atomically, so
// no request sees a half-loaded set, and evaluating it allocates nothing.
//
// [Store.Start] loads the file and then polls it every PollInterval: a stat,
// and a read and content hash when the stat changed or is too recent to
// trust. So an edit, an atomic rename or a Kubernetes ConfigMap symlink swap
// is in force within about two intervals, and a touch reloads nothing.
// A change is applied once two consecutive polls agree on it, so a file
// caught half-written is not loaded (and not refused either).
package experiments
