package tracking

import "time"

// MaxFutureSkew is how far after PostgreSQL's now() an event time may be
// (DESIGN §3.1). More would win the ordering rule against every real event
// and freeze the order until cleanup; less is a producer's clock skew and
// is accepted as sent. The database's clock is the one every replica
// shares, so the check is made there, when the event is applied.
const MaxFutureSkew = 5 * time.Minute

// InFuture is the error for an event time more than MaxFutureSkew after
// the database's clock; value is the time as the producer sent it.
func InFuture(field, value string) error {
	return Invalid(field, "in the future", Truncate(value))
}
