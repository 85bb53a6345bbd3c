package trackingpresenter

// What the end-to-end tests (package trackingpresenter_test) need: the
// endpoint's path and the answer's types.
const Path = trackingPath

type (
	TrackingResponse = trackingResponse
	TrackedOrder     = trackedOrder
)

const ContactCourier = contactCourier

// The stream's path and its frame ids.
const StreamPath = streamPath

func Version(body []byte) string { return version(body) }
