package main

import (
	"flag"
	"net/http"
	"os"
)

// ceilingAnswer is the ceiling's answer when the driver found no P2 answer
// to give it: one retail order in P2, as the service encodes it.
const ceilingAnswer = `{"meta":{"checkAfter":15,"count":1},"payload":{"trackedOrders":[{"order":{"orderNr":"B0000010","flowType":"retail","status":"place_confirmed","createdAt":"2026-01-01T10:00:00.123456Z","eta":"2026-01-01T11:00:00Z"},"status":"picker_call","title":"Забыли самое нужное?","description":"Просто позвоните сборщику и попросите добавить товар в заказ","actions":[{"type":"call","title":"Позвонить сборщику","payload":{"contact_type":"picker","phone":"+79970000010,10"}}],"banners":{"design":"wide_and_short","banners":[{"id":"retail_forgot_item","kind":"info","text":"Позвони нам, если забыл что-то купить. Мы все сделаем","appLink":""}]},"place":{"id":"10","name":"Place 10"},"checkAfter":15}]}}` + "\n"

// ceiling is the upper bound of a poll served from memory: a bare net/http
// handler writing one fixed tracking answer (the bytes of -body, or
// ceilingAnswer) with the endpoint's headers, doing nothing else.
func ceiling(args []string) error {
	fs := flag.NewFlagSet("ceiling", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8082", "listen address")
	bodyFile := fs.String("body", "", "the answer to write (a file); empty: a built-in P2 answer")
	_ = fs.Parse(args)
	body := []byte(ceilingAnswer)
	if *bodyFile != "" {
		b, err := os.ReadFile(*bodyFile)
		if err != nil {
			return err
		}
		body = b
	}
	return http.ListenAndServe(*addr, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
}
