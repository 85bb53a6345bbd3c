package main

import (
	"database/sql"
	"encoding/json"
	"flag"
	"net/http"
	"strings"
	"time"

	_ "github.com/lib/pq" // the driver the service uses
)

// floorQuery returns, in one round trip, every row the endpoint's answer
// is built from: the eater's listed orders, each retail order's picker
// order and its current picker's valid phone.
const floorQuery = `
SELECT o.order_nr, o.payload, o.first_event_at, o.event_at, p.payload, ph.phone, ph.expires_at
FROM orders o
LEFT JOIN picker_orders p ON p.order_nr = o.order_nr AND o.payload->>'flow_type' = 'retail'
LEFT JOIN picker_phones ph ON ph.order_nr = o.order_nr AND ph.picker_id = p.payload->>'picker_id' AND ph.expires_at > now()
WHERE o.eater_id = $1
  AND (o.payload->>'status' NOT IN ('delivered', 'cancelled') OR o.event_at > now() - interval '15 minutes')
ORDER BY o.first_event_at, o.order_nr`

type floorRow struct {
	OrderNr      string           `json:"order_nr"`
	Payload      json.RawMessage  `json:"payload"`
	FirstEventAt time.Time        `json:"first_event_at"`
	EventAt      time.Time        `json:"event_at"`
	Picker       *json.RawMessage `json:"picker,omitempty"`
	Phone        *string          `json:"phone,omitempty"`
	PhoneExpires *time.Time       `json:"phone_expires_at,omitempty"`
}

// floor is the baseline: a bare net/http handler, one SQL query, the rows
// as JSON.
func floor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	dsn := fs.String("db", "", "database URL")
	conns := fs.Int("conns", 20, "pool size")
	_ = fs.Parse(args)
	db, err := sql.Open("postgres", *dsn)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(*conns)
	db.SetMaxIdleConns(*conns)
	return http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		eater := ""
		for part := range strings.SplitSeq(r.Header.Get("X-Eats-User"), ",") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(part), "user_id="); ok {
				eater = v
			}
		}
		out := struct {
			Rows []floorRow `json:"rows"`
		}{Rows: []floorRow{}}
		if eater != "" {
			rows, err := db.QueryContext(r.Context(), floorQuery, eater)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer rows.Close()
			for rows.Next() {
				var row floorRow
				var picker []byte
				if err := rows.Scan(&row.OrderNr, &row.Payload, &row.FirstEventAt, &row.EventAt, &picker, &row.Phone, &row.PhoneExpires); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				if picker != nil {
					raw := json.RawMessage(picker)
					row.Picker = &raw
				}
				out.Rows = append(out.Rows, row)
			}
			if err := rows.Err(); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
}
