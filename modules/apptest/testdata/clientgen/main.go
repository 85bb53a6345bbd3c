// Command clientgen drives the service through the client oapi-codegen
// generates from its served /openapi-3.0.yaml (package eot, beside this
// file in a temporary module; see ../../clientgen_test.go). It posts two
// picker events, polls the tracking answer until both are applied, posts a
// bad event, and prints what it saw as one JSON object.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"eotclient/eot"
)

type report struct {
	JobIDs       []int64               `json:"jobIds"`
	Tracking     *eot.TrackingResponse `json:"tracking"`
	Raw          json.RawMessage       `json:"raw"`
	CacheControl string                `json:"cacheControl"`
	BadStatus    int                   `json:"badStatus"`
	BadProblem   *eot.ErrorModel       `json:"badProblem"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "clientgen:", err)
		os.Exit(1)
	}
}

func run() error {
	base, token := os.Getenv("EOT_URL"), os.Getenv("EOT_TOKEN")
	eater, orderNr := os.Getenv("EOT_EATER"), os.Getenv("EOT_ORDER")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := eot.NewClientWithResponses(base)
	if err != nil {
		return err
	}
	bearer := func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
	var out report

	picker := "picker-1"
	at := time.Now().UTC().Add(-time.Minute)
	phone := struct {
		ExpiresAt time.Time `json:"expires_at"`
		Phone     string    `json:"phone"`
	}{ExpiresAt: time.Now().Add(time.Hour).UTC(), Phone: "+7 999 123-45-67,,42"}
	events := []eot.PickerOrderEvent{
		{EventType: eot.STATUSCHANGE, OrderNr: orderNr, OrderStatus: eot.PickerOrderEventOrderStatusPicking, PlaceId: "40", PickerId: &picker, CreatedAt: &at},
		{EventType: eot.PICKERPHONEFORWARDINGREADY, OrderNr: orderNr, OrderStatus: eot.PickerOrderEventOrderStatusPicking, PlaceId: "40", PickerId: &picker, CreatedAt: &at, CustomerPickerPhoneForwarding: &phone},
	}
	for _, e := range events {
		r, err := c.PostPickerOrderEventWithResponse(ctx, e, bearer)
		if err != nil {
			return err
		}
		if r.JSON202 == nil {
			return fmt.Errorf("post %s: %d %s", e.EventType, r.StatusCode(), r.Body)
		}
		out.JobIDs = append(out.JobIDs, r.JSON202.JobId)
	}

	user := "user_id=" + eater
	for {
		r, err := c.GetTrackingWithResponse(ctx, &eot.GetTrackingParams{XEatsUser: &user})
		if err != nil {
			return err
		}
		if r.JSON200 == nil {
			return fmt.Errorf("tracking: %d %s", r.StatusCode(), r.Body)
		}
		out.Tracking, out.Raw = r.JSON200, r.Body
		if r.Headers200 != nil && r.Headers200.CacheControl != nil {
			out.CacheControl = *r.Headers200.CacheControl
		}
		if o := r.JSON200.Payload.TrackedOrders; len(o) == 1 && o[0].Status == "picker_call" {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the events were not applied: last answer %s", r.Body)
		case <-time.After(200 * time.Millisecond):
		}
	}

	bad, err := c.PostPickerOrderEventWithResponse(ctx, eot.PickerOrderEvent{
		EventType: eot.STATUSCHANGE, OrderNr: "", OrderStatus: eot.PickerOrderEventOrderStatusPicking, PlaceId: "40",
	}, bearer)
	if err != nil {
		return err
	}
	out.BadStatus, out.BadProblem = bad.StatusCode(), bad.ApplicationproblemJSON422
	return json.NewEncoder(os.Stdout).Encode(out)
}
