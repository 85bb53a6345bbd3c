package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/modules/apptest"
	"github.com/eats/eats-orders-tracking/modules/orderingest"
	"github.com/eats/eats-orders-tracking/modules/pickeringest"
	"github.com/eats/eats-orders-tracking/modules/tracking"
	"github.com/eats/eats-orders-tracking/platform/pgtest"
	"github.com/eats/eats-orders-tracking/web/webtest"
)

const (
	eater       = "browser"
	pickerPhone = "+79991234567,,123" // stored; the API shows "+79991234567,123"
	placePhone  = "+74951234567"
	courierPh   = "+79997654321"
	banner      = "Позвони нам, если забыл что-то купить. Мы все сделаем"
)

// action and card mirror what browser.mjs checks.
type action struct {
	Tag  string `json:"tag"`
	Text string `json:"text"`
	Href string `json:"href,omitempty"`
}

type card struct {
	OrderNr     string   `json:"orderNr"`
	Status      string   `json:"status"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Actions     []action `json:"actions"`
	Banners     []string `json:"banners"`
	Screenshot  string   `json:"screenshot"`
}

// The five states a customer can see, in the order of the list (by the
// time of each order's first event).
var cards = []card{
	{
		OrderNr: "e2e-1-contact-us", Status: "picker_contact_us",
		Title: "Забыли товар?", Description: "Позвони нам, мы добавим его в корзину",
		Actions:    []action{{Tag: "button", Text: "Связаться с нами"}},
		Banners:    []string{banner},
		Screenshot: "p1-contact-us",
	},
	{
		OrderNr: "e2e-2-call-picker", Status: "picker_call",
		Title: "Забыли самое нужное?", Description: "Просто позвоните сборщику и попросите добавить товар в заказ",
		Actions:    []action{{Tag: "a", Text: "Позвонить сборщику", Href: "tel:+79991234567,123"}},
		Banners:    []string{banner},
		Screenshot: "p2-call-picker",
	},
	{
		OrderNr: "e2e-3-paying", Status: "picker_paying",
		Title: "Стоим в очереди на кассу", Description: "Скоро оплатим",
		Actions: []action{}, Banners: []string{},
		Screenshot: "p3-paying",
	},
	{
		OrderNr: "e2e-4-paid", Status: "place_confirmed",
		Title: "Собираем заказ", Description: "Магазин собирает ваш заказ",
		Actions:    []action{{Tag: "a", Text: "Позвонить в магазин", Href: "tel:" + placePhone}},
		Banners:    []string{},
		Screenshot: "p0-paid-base-view",
	},
	{
		OrderNr: "e2e-5-native", Status: "taken",
		Title: "Курьер в пути", Description: "Заказ уже едет к вам",
		Actions:    []action{{Tag: "a", Text: "Позвонить курьеру", Href: "tel:" + courierPh}},
		Banners:    []string{},
		Screenshot: "native-courier",
	},
}

// change is the event the test sends while the page is open and polls
// only every 10 minutes, so it must come by the stream: the first order's
// picker gets a forwarding number, so P1 becomes P2.
var change = map[string]any{
	"orderNr":    cards[0].OrderNr,
	"before":     map[string]string{"status": "picker_contact_us", "title": "Забыли товар?"},
	"after":      map[string]string{"status": "picker_call", "title": "Забыли самое нужное?", "href": "tel:+79991234567,123"},
	"screenshot": "p1-to-p2-after-event",
}

// changeByPoll is the event the test sends while the page's stream is
// refused: the third order is paid, so "paying" becomes "collecting".
var changeByPoll = map[string]any{
	"orderNr": cards[2].OrderNr,
	"before":  map[string]string{"status": "picker_paying", "title": "Стоим в очереди на кассу"},
	"after":   map[string]string{"status": "place_confirmed", "title": "Собираем заказ"},
}

func TestWidgetInTheBrowser(t *testing.T) {
	t.Parallel()
	dir := webtest.NodeModules(t)
	browser := webtest.ChromiumPath(t)
	a := apptest.Start(t, nil)
	s := seeder{t: t, a: a, base: time.Now().Add(-10 * time.Minute)}

	s.order(cards[0].OrderNr, tracking.FlowRetail, tracking.OrderPlaceConfirmed, nil)
	s.picker(cards[0].OrderNr, tracking.PickerAssigned, "picker-1", "")

	s.order(cards[1].OrderNr, tracking.FlowRetail, tracking.OrderPlaceConfirmed, nil)
	s.picker(cards[1].OrderNr, tracking.PickerPicking, "picker-2", pickerPhone)

	s.order(cards[2].OrderNr, tracking.FlowRetail, tracking.OrderPlaceConfirmed, nil)
	s.picker(cards[2].OrderNr, tracking.PickerPicking, "picker-3", pickerPhone)
	s.picker(cards[2].OrderNr, tracking.PickerPickedUp, "picker-3", "")

	s.order(cards[3].OrderNr, tracking.FlowRetail, tracking.OrderPlaceConfirmed, nil)
	s.picker(cards[3].OrderNr, tracking.PickerPickedUp, "picker-4", "")
	s.picker(cards[3].OrderNr, tracking.PickerPaid, "picker-4", "")

	s.order(cards[4].OrderNr, tracking.FlowNative, tracking.OrderTaken, &orderingest.Courier{Name: "Иван", Phone: courierPh})

	want := map[string]string{}
	for _, c := range cards {
		want[c.OrderNr] = c.Status
	}
	s.await(want)

	shots := t.TempDir()
	if os.Getenv("SCREENSHOTS") == "update" {
		shots = filepath.Join(pgtest.RepoRoot(), "docs", "screenshots")
		require.NoError(t, os.MkdirAll(shots, 0o755))
	}
	run := browserRun(t, dir, browser, a.URL, shots)
	for step := range run.steps {
		switch step {
		case "event":
			s.picker(cards[0].OrderNr, tracking.PickerPicking, "picker-1", pickerPhone)
			want[cards[0].OrderNr] = "picker_call"
			s.await(want)
			run.answer("ok")
		case "event-by-poll":
			s.picker(cards[2].OrderNr, tracking.PickerPaid, "picker-3", "")
			want[cards[2].OrderNr] = "place_confirmed"
			s.await(want)
			run.answer("ok")
		}
	}
	run.wait()
	for _, c := range cards {
		require.FileExists(t, filepath.Join(shots, c.Screenshot+".png"))
	}
	for _, name := range []string{"widget", "empty", "error", "p1-to-p2-after-event"} {
		require.FileExists(t, filepath.Join(shots, name+".png"))
	}
}

// seeder inserts real River jobs, as the producers do.
type seeder struct {
	t    *testing.T
	a    *apptest.App
	base time.Time
	n    int
}

// at gives each event a later time than the one before.
func (s *seeder) at() time.Time {
	s.n++
	return s.base.Add(time.Duration(s.n) * time.Second).UTC()
}

func (s *seeder) order(nr string, flow tracking.FlowType, status tracking.OrderStatus, courier *orderingest.Courier) {
	s.t.Helper()
	place := &orderingest.Place{ID: "40", Name: "Магазин у дома", Phone: placePhone}
	if flow == tracking.FlowNative {
		place = &orderingest.Place{ID: "7", Name: "Кафе «Пельмени»", Phone: placePhone}
	}
	_, err := s.a.Client.Insert(context.Background(), orderingest.OrderArgs{
		OrderNr: nr, EaterID: eater, FlowType: flow, Status: status, Place: place, Courier: courier,
		ETA:       time.Now().Add(40 * time.Minute).UTC().Format(time.RFC3339),
		CreatedAt: s.at().Format(time.RFC3339Nano),
	}, nil)
	require.NoError(s.t, err)
}

// picker sends a STATUS_CHANGE and, with a phone, the forwarding for it.
func (s *seeder) picker(nr string, status tracking.PickerStatus, pickerID, phone string) {
	s.t.Helper()
	ctx := context.Background()
	_, err := s.a.Client.Insert(ctx, pickeringest.PickerOrderArgs{
		EventType: tracking.EventStatusChange, OrderNr: nr, OrderStatus: status,
		PlaceID: "40", PickerID: pickerID, CustomerID: eater, CreatedAt: s.at(),
	}, nil)
	require.NoError(s.t, err)
	if phone == "" {
		return
	}
	_, err = s.a.Client.Insert(ctx, pickeringest.PickerOrderArgs{
		EventType: tracking.EventPickerPhoneForwardingReady, OrderNr: nr, OrderStatus: status,
		PlaceID: "40", PickerID: pickerID, CreatedAt: s.at(),
		CustomerPickerPhoneForwarding: &pickeringest.Forwarding{Phone: phone, ExpiresAt: time.Now().Add(time.Hour).UTC()},
	}, nil)
	require.NoError(s.t, err)
}

// await polls the tracking endpoint until every order shows its status.
func (s *seeder) await(want map[string]string) {
	s.t.Helper()
	var last string
	pgtest.Eventually(s.t, 30*time.Second, func() bool {
		got, body := statuses(s.t, s.a)
		last = body
		for nr, st := range want {
			if got[nr] != st {
				return false
			}
		}
		return true
	}, "orders in %v; last answer %s", want, &last)
}

func statuses(t *testing.T, a *apptest.App) (map[string]string, string) {
	t.Helper()
	code, body := a.Get(t, "/eats/v1/eats-orders-tracking/v1/tracking", map[string]string{"X-Eats-User": "user_id=" + eater})
	got := map[string]string{}
	if code != 200 {
		return got, fmt.Sprintf("%d %s", code, body)
	}
	var res struct {
		Payload struct {
			TrackedOrders []struct {
				Order  struct{ OrderNr string } `json:"order"`
				Status string                   `json:"status"`
			} `json:"trackedOrders"`
		} `json:"payload"`
	}
	require.NoError(t, json.Unmarshal(body, &res))
	for _, o := range res.Payload.TrackedOrders {
		got[o.Order.OrderNr] = o.Status
	}
	return got, string(body)
}

// run is browser.mjs as a child process speaking the "@@ step" protocol.
type run struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	steps chan string
	out   *pgtest.SafeBuffer
}

func browserRun(t *testing.T, dir, browser, baseURL, shots string) *run {
	t.Helper()
	expect, err := json.Marshal(cards)
	require.NoError(t, err)
	chg, err := json.Marshal(change)
	require.NoError(t, err)
	chgPoll, err := json.Marshal(changeByPoll)
	require.NoError(t, err)
	// The deadline kills a stuck browser; the step loop then ends.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "node", filepath.Join("e2e", "browser.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"BASE_URL="+baseURL, "EATER="+eater, "EXPECT="+string(expect), "CHANGE="+string(chg), "CHANGE_BY_POLL="+string(chgPoll),
		"CHROMIUM="+browser, "SCREENSHOT_DIR="+shots)
	r := &run{t: t, cmd: cmd, steps: make(chan string), out: &pgtest.SafeBuffer{}}
	r.stdin, err = cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = r.out
	require.NoError(t, cmd.Start())
	go func() {
		defer close(r.steps)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(r.out, line)
			if step, ok := strings.CutPrefix(line, "@@ "); ok {
				select {
				case r.steps <- step:
				case <-ctx.Done(): // the test gave up; the process is killed
					return
				}
			}
		}
	}()
	return r
}

func (r *run) answer(s string) {
	r.t.Helper()
	_, err := io.WriteString(r.stdin, s+"\n")
	require.NoError(r.t, err, "browser.mjs:\n%s", r.out)
}

// wait reads the script's output to the end, then fails the test when the
// script failed, showing what it printed.
func (r *run) wait() {
	r.t.Helper()
	for range r.steps {
	}
	_ = r.stdin.Close()
	err := r.cmd.Wait()
	require.NoError(r.t, err, "browser.mjs:\n%s", r.out)
	require.Contains(r.t, r.out.String(), "@@ done", "browser.mjs stopped early:\n%s", r.out)
}
