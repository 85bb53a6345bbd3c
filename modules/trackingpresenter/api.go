package trackingpresenter

import (
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// The response of GET /eats/v1/eats-orders-tracking/v1/tracking (DESIGN
// §4.1). The Go type names, first letter upper-cased, are the schema names
// in the OpenAPI document, which the app's client is generated from: rename
// with care. Unexported: no other package uses them (tests through
// export_test.go).

// trackingResponse is the endpoint's body.
type trackingResponse struct {
	Meta    trackingMeta    `json:"meta"`
	Payload trackingPayload `json:"payload"`
}

// trackingMeta tells the app when to ask again.
type trackingMeta struct {
	CheckAfter int `json:"checkAfter" doc:"seconds until the app should poll again" example:"15"`
	Count      int `json:"count" doc:"number of tracked orders shown (at most TRACKING_MAX_ORDERS_PER_EATER, 50 by default)" example:"1"`
}

// trackingPayload lists the eater's tracked orders.
type trackingPayload struct {
	TrackedOrders []trackedOrder `json:"trackedOrders" nullable:"false" doc:"orders not finished, plus those finished less than 15 minutes ago; by createdAt, then orderNr. At most TRACKING_MAX_ORDERS_PER_EATER (50 by default): active before finished, newest first, are the ones kept"`
}

// trackedOrder is one order's card.
type trackedOrder struct {
	Order       trackedOrderInfo     `json:"order"`
	Status      string               `json:"status" enum:"created,call_center_confirmed,place_confirmed,taken,arrived_to_customer,delivered,cancelled,picker_contact_us,picker_call,picker_paying" doc:"the order's status, or the picker state of a retail order"`
	Title       string               `json:"title"`
	Description string               `json:"description"`
	Actions     []trackedOrderAction `json:"actions" nullable:"false" doc:"buttons, possibly none"`
	Banners     *trackedOrderBanners `json:"banners,omitempty" doc:"absent when no banner applies"`
	Place       trackedOrderPlace    `json:"place"`
	CheckAfter  int                  `json:"checkAfter" doc:"seconds until the app should poll again" example:"15"`
}

// trackedOrderInfo is the order itself.
type trackedOrderInfo struct {
	OrderNr   string     `json:"orderNr" example:"230101-100001"`
	FlowType  string     `json:"flowType" enum:"native,retail,shop,marketplace,pickup" doc:"retail: picked by our pickers; shop: by the store's staff"`
	Status    string     `json:"status" enum:"created,call_center_confirmed,place_confirmed,taken,arrived_to_customer,delivered,cancelled"`
	CreatedAt time.Time  `json:"createdAt" doc:"time of the order's first event, RFC 3339 UTC"`
	ETA       *time.Time `json:"eta,omitempty" doc:"promised delivery time, RFC 3339 UTC; absent when unknown"`
}

// trackedOrderAction is a button.
type trackedOrderAction struct {
	Type    trackedOrderActionType    `json:"type"`
	Title   string                    `json:"title"`
	Payload trackedOrderActionPayload `json:"payload"`
}

// trackedOrderActionPayload is what a button acts on: a call has
// contact_type and phone; contact_us has neither.
type trackedOrderActionPayload struct {
	ContactType trackedOrderButtonContactType `json:"contact_type,omitempty"`
	Phone       string                        `json:"phone,omitempty" doc:"the number to dial; an extension follows a comma" example:"+79991234567,123"`
}

// trackedOrderActionType is what a button does.
type trackedOrderActionType string

// The action types.
const (
	actionCall      trackedOrderActionType = "call"
	actionContactUs trackedOrderActionType = "contact_us"
)

// Schema declares the enum as a named component.
func (trackedOrderActionType) Schema(r huma.Registry) *huma.Schema {
	return namedEnum(r, "TrackedOrderActionType", "What a button does: call a phone, or open contact with support.",
		string(actionCall), string(actionContactUs))
}

// trackedOrderButtonContactType is whom a call button calls.
type trackedOrderButtonContactType string

// The contact types.
const (
	contactCourier trackedOrderButtonContactType = "courier"
	contactPlace   trackedOrderButtonContactType = "place"
	contactPicker  trackedOrderButtonContactType = "picker"
)

// Schema declares the enum as a named component.
func (trackedOrderButtonContactType) Schema(r huma.Registry) *huma.Schema {
	return namedEnum(r, "TrackedOrderButtonContactType", "Whom a call button calls.",
		string(contactCourier), string(contactPlace), string(contactPicker))
}

// namedEnum registers a string enum under name in the registry's components
// and returns a reference to it, so generated clients get a named type.
func namedEnum(r huma.Registry, name, doc string, values ...string) *huma.Schema {
	if _, ok := r.Map()[name]; !ok {
		enum := make([]any, len(values))
		for i, v := range values {
			enum[i] = v
		}
		s := &huma.Schema{Type: huma.TypeString, Description: doc, Enum: enum}
		s.PrecomputeMessages()
		r.Map()[name] = s
	}
	return &huma.Schema{Ref: "#/components/schemas/" + name}
}

// trackedOrderBanners are the banners of an order.
type trackedOrderBanners struct {
	Design  string               `json:"design" enum:"wide_and_short"`
	Banners []trackedOrderBanner `json:"banners" nullable:"false"`
}

// trackedOrderBanner is one banner.
type trackedOrderBanner struct {
	ID      string `json:"id" example:"retail_forgot_item"`
	Kind    string `json:"kind" enum:"info"`
	Text    string `json:"text"`
	AppLink string `json:"appLink" doc:"where a tap leads; empty when the banner is not clickable"`
}

// trackedOrderPlace is where the order is prepared.
type trackedOrderPlace struct {
	ID   string `json:"id" example:"40"`
	Name string `json:"name"`
}
