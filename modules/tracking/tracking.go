// Package tracking is the shared vocabulary of eats-orders-tracking: picker
// event types, picker order statuses, order statuses and flow types, plus the
// sentinel errors the modules share. It does no I/O and knows nothing of fx,
// so every module (and the experiments' value validators) can depend on it.
package tracking

import "slices"

// EventType is the event_type of a picker-order event (DESIGN §3.1).
type EventType string

// The event types procaas sends today. Others may appear; they are ignored.
const (
	EventStatusChange               EventType = "STATUS_CHANGE"
	EventItemAdd                    EventType = "ITEM_ADD"
	EventItemReplace                EventType = "ITEM_REPLACE"
	EventItemSoftDelete             EventType = "ITEM_SOFT_DELETE"
	EventItemPicked                 EventType = "ITEM_PICKED"
	EventPickerPhoneForwardingReady EventType = "PICKER_PHONE_FORWARDING_READY"
)

// EventTypes lists the known event types in the order of DESIGN §3.1.
var EventTypes = []EventType{
	EventStatusChange, EventItemAdd, EventItemReplace, EventItemSoftDelete,
	EventItemPicked, EventPickerPhoneForwardingReady,
}

// Known reports whether procaas' contract names this event type.
func (e EventType) Known() bool { return slices.Contains(EventTypes, e) }

// Applied reports whether events of this type change our tables; the rest
// (ITEM_* and types unknown today) are accepted and ignored.
func (e EventType) Applied() bool {
	return e == EventStatusChange || e == EventPickerPhoneForwardingReady
}

// PickerStatus is the order_status of a picker order (procaas' OrderState).
type PickerStatus string

// The picker statuses, in the order of DESIGN §3.1. The order matters: on
// equal event times the status later in this list wins.
const (
	PickerNew                 PickerStatus = "new"
	PickerWaitingDispatch     PickerStatus = "waiting_dispatch"
	PickerDispatching         PickerStatus = "dispatching"
	PickerDispatchFailed      PickerStatus = "dispatch_failed"
	PickerAssigned            PickerStatus = "assigned"
	PickerPicking             PickerStatus = "picking"
	PickerWaitingConfirmation PickerStatus = "waiting_confirmation"
	PickerConfirmed           PickerStatus = "confirmed"
	PickerPickedUp            PickerStatus = "picked_up"
	PickerReceiptProcessing   PickerStatus = "receipt_processing"
	PickerReceiptRejected     PickerStatus = "receipt_rejected"
	PickerPaid                PickerStatus = "paid"
	PickerPacking             PickerStatus = "packing"
	PickerHanding             PickerStatus = "handing"
	PickerCancelled           PickerStatus = "cancelled"
	PickerComplete            PickerStatus = "complete"
)

// PickerStatuses lists every picker status in contract order.
var PickerStatuses = []PickerStatus{
	PickerNew, PickerWaitingDispatch, PickerDispatching, PickerDispatchFailed,
	PickerAssigned, PickerPicking, PickerWaitingConfirmation, PickerConfirmed,
	PickerPickedUp, PickerReceiptProcessing, PickerReceiptRejected, PickerPaid,
	PickerPacking, PickerHanding, PickerCancelled, PickerComplete,
}

// Rank is the status' position in PickerStatuses, or -1 when unknown. It
// breaks ties between events with the same created_at.
func (s PickerStatus) Rank() int { return slices.Index(PickerStatuses, s) }

// Valid reports whether s is one of PickerStatuses.
func (s PickerStatus) Valid() bool { return s.Rank() >= 0 }

// HistoryKey is the status_history key that records when the order first
// reached this status, or "" for statuses the history does not keep.
func (s PickerStatus) HistoryKey() string {
	switch s {
	case PickerNew, PickerAssigned, PickerPicking, PickerPickedUp, PickerPaid:
		return string(s) + "_at"
	}
	return ""
}

// OrderStatus is the status of an order in the core pipeline (DESIGN §3.2).
type OrderStatus string

// The order statuses, in the order of DESIGN §3.2 (later wins a time tie).
const (
	OrderCreated             OrderStatus = "created"
	OrderCallCenterConfirmed OrderStatus = "call_center_confirmed"
	OrderPlaceConfirmed      OrderStatus = "place_confirmed"
	OrderTaken               OrderStatus = "taken"
	OrderArrivedToCustomer   OrderStatus = "arrived_to_customer"
	OrderDelivered           OrderStatus = "delivered"
	OrderCancelled           OrderStatus = "cancelled"
)

// OrderStatuses lists every order status in contract order.
var OrderStatuses = []OrderStatus{
	OrderCreated, OrderCallCenterConfirmed, OrderPlaceConfirmed, OrderTaken,
	OrderArrivedToCustomer, OrderDelivered, OrderCancelled,
}

// Rank is the status' position in OrderStatuses, or -1 when unknown.
func (s OrderStatus) Rank() int { return slices.Index(OrderStatuses, s) }

// Valid reports whether s is one of OrderStatuses.
func (s OrderStatus) Valid() bool { return s.Rank() >= 0 }

// Finished reports whether the order will not change any more.
func (s OrderStatus) Finished() bool { return s == OrderDelivered || s == OrderCancelled }

// FlowType says who fulfils an order.
type FlowType string

// The flow types. Retail is our own picking; shop is picking by the store's staff.
const (
	FlowNative      FlowType = "native"
	FlowRetail      FlowType = "retail"
	FlowShop        FlowType = "shop"
	FlowMarketplace FlowType = "marketplace"
	FlowPickup      FlowType = "pickup"
)

// FlowTypes lists every flow type.
var FlowTypes = []FlowType{FlowNative, FlowRetail, FlowShop, FlowMarketplace, FlowPickup}

// Valid reports whether f is one of FlowTypes.
func (f FlowType) Valid() bool { return slices.Contains(FlowTypes, f) }

// IsStore reports whether the order is collected in a store (texts say
// "магазин" rather than "ресторан").
func (f FlowType) IsStore() bool { return f == FlowRetail || f == FlowShop }
