// Browser checks of the tracking widget, driven by web/e2e/e2e_test.go,
// which starts the service, seeds the orders and passes in (environment):
//   BASE_URL        the service, e.g. http://127.0.0.1:41234
//   EATER           the customer whose orders were seeded
//   EXPECT          JSON: [{orderNr, status, title, description,
//                   actions: [{tag: "a"|"button", text, href?}],
//                   banners: [text...], screenshot}]
//   CHANGE          JSON: {orderNr, before: {status, title}, after: {status, title, href}}
//                   (comes by the stream: the page polls every 10 minutes)
//   CHANGE_BY_POLL  JSON: {orderNr, before: {status, title}, after: {status, title}}
//                   (comes by polling: the test refuses the stream)
//   CHROMIUM        the browser (Debian's /usr/bin/chromium)
//   SCREENSHOT_DIR  where the PNGs go
// The last steps (checkafter, poll-override, banners) answer the API with
// page.route and move a paused clock by hand: the next poll follows each
// answer's meta.checkAfter (or ?poll=), and a banner is a link only for a
// safe appLink.
// Protocol on stdio: the script prints "@@ <step>" and, for "@@ event" and
// "@@ event-by-poll", waits for a line on stdin (the Go test has inserted
// the new event).
// Any failed check throws; the exit code tells the Go test.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const baseURL = env("BASE_URL");
const eater = env("EATER");
const expected = JSON.parse(env("EXPECT"));
const change = JSON.parse(env("CHANGE"));
const changeByPoll = JSON.parse(env("CHANGE_BY_POLL"));
const shots = env("SCREENSHOT_DIR");

const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();
async function step(name, wait = false) {
  console.log(`@@ ${name}`);
  if (!wait) return;
  const { value, done } = await lines.next();
  if (done || value.trim() !== "ok") throw new Error(`step ${name}: the test answered ${JSON.stringify(value)}`);
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

function equal(got, want, what) {
  check(got === want, `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

const userDataDir = mkdtempSync(join(tmpdir(), "eot-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: env("CHROMIUM"),
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
  ],
  viewport: { width: 420, height: 900 },
  deviceScaleFactor: 1,
  locale: "ru-RU",
  timezoneId: "Europe/Moscow",
});
context.setDefaultTimeout(10_000);

try {
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(e.message));
  // The widget's requests: polls (the JSON answer) and streams (SSE).
  const pollPath = "/eats/v1/eats-orders-tracking/v1/tracking";
  const streamPath = `${pollPath}/stream`;
  const requests = [];
  const streams = [];
  let streamsEnded = 0;
  page.on("request", (r) => {
    const path = new URL(r.url()).pathname;
    if (path === pollPath) requests.push(r.headers());
    if (path === streamPath) streams.push(r.headers());
  });
  page.on("requestfailed", (r) => {
    if (new URL(r.url()).pathname === streamPath) streamsEnded++;
  });
  // A refused stream: what the service answers over its bounds.
  const streamRoute = "**/eats-orders-tracking/v1/tracking/stream";
  const refuseStream = () =>
    page.route(streamRoute, (route) =>
      route.fulfill({
        status: 503,
        contentType: "application/problem+json",
        headers: { "retry-after": "1" },
        body: JSON.stringify({ title: "Service Unavailable", status: 503, detail: "live tracking unavailable, poll instead: refused by browser.mjs" }),
      }),
    );

  // Fake timers that still flow in real time, so the test can jump to the
  // next poll (meta.checkAfter = 15 s) instead of sleeping through it.
  await page.clock.install();

  // Polls every 10 minutes: within this test a change can only come by
  // the stream.
  await step("load");
  await page.goto(`${baseURL}/app/?eater=${encodeURIComponent(eater)}&poll=600`);
  await page.locator(".card").nth(expected.length - 1).waitFor();
  await page.evaluate(() => { window.__notReloaded = true; });
  equal(requests[0]?.["x-eats-user"], `user_id=${eater}`, "X-Eats-User");
  check(!("x-request-language" in requests[0]), "no X-Request-Language without ?lang=");
  equal(streams.length, 1, "streams opened");
  equal(streams[0]?.["x-eats-user"], `user_id=${eater}`, "the stream's X-Eats-User");
  equal(streams[0]?.["accept"], "text/event-stream", "the stream's Accept");
  check(!("last-event-id" in streams[0]), "no Last-Event-ID on the first connection");
  equal(await page.getAttribute("ul.orders", "aria-live"), "polite", "the list is a live region");

  const cards = page.locator(".card");
  equal(await cards.count(), expected.length, "number of cards");
  for (const [i, want] of expected.entries()) {
    const card = cards.nth(i);
    const what = `card ${i} (${want.orderNr})`;
    equal(await card.getAttribute("data-order-nr"), want.orderNr, `${what} order`);
    equal(await card.getAttribute("data-status"), want.status, `${what} status`);
    equal((await card.locator(".card-title").innerText()).trim(), want.title, `${what} title`);
    equal((await card.locator(".card-description").innerText()).trim(), want.description, `${what} description`);
    check(await card.locator(".card-title").isVisible(), `${what} title visible`);

    const actions = card.locator(".action");
    equal(await actions.count(), want.actions.length, `${what} number of actions`);
    for (const [j, a] of want.actions.entries()) {
      const el = actions.nth(j);
      equal(await el.evaluate((n) => n.tagName.toLowerCase()), a.tag, `${what} action ${j} element`);
      equal((await el.innerText()).trim(), a.text, `${what} action ${j} text`);
      if (a.href !== undefined) equal(await el.getAttribute("href"), a.href, `${what} action ${j} href`);
      check((await el.getAttribute("aria-label"))?.includes(a.text), `${what} action ${j} has an accessible label`);
      check(await el.isVisible(), `${what} action ${j} visible`);
    }

    const banners = card.locator(".banner");
    equal(await banners.count(), want.banners.length, `${what} number of banners`);
    for (const [j, text] of want.banners.entries()) {
      const b = banners.nth(j);
      equal((await b.innerText()).trim(), text, `${what} banner ${j} text`);
      // appLink "" means not clickable: plain text, no link anywhere in it.
      equal(await b.evaluate((n) => n.tagName.toLowerCase()), "p", `${what} banner ${j} element`);
      equal(await b.evaluate((n) => n.closest("a") === null && n.querySelector("a") === null), true, `${what} banner ${j} is not a link`);
    }
    if (want.screenshot) await card.screenshot({ path: join(shots, `${want.screenshot}.png`), animations: "disabled" });
  }
  await page.screenshot({ path: join(shots, "widget.png"), fullPage: true, animations: "disabled" });

  // The stream: an event inserted into the queue changes a card without a
  // reload and without a poll (the next one is 10 minutes away, and the
  // clock is not moved). How long it took is the benchmark's business.
  const card = page.locator(`.card[data-order-nr="${change.orderNr}"]`);
  equal(await card.getAttribute("data-status"), change.before.status, "changing card, before");
  equal((await card.locator(".card-title").innerText()).trim(), change.before.title, "changing card title, before");
  const pollsBefore = requests.length;
  await step("event", true);
  await page.locator(`.card[data-order-nr="${change.orderNr}"][data-status="${change.after.status}"]`).waitFor();
  equal((await card.locator(".card-title").innerText()).trim(), change.after.title, "changing card title, after");
  equal(await card.locator("a.action").getAttribute("href"), change.after.href, "changing card call link");
  equal(await page.evaluate(() => window.__notReloaded === true), true, "the page was not reloaded");
  equal(requests.length, pollsBefore, "polls since the event (the change must come by the stream)");
  equal(streams.length, 1, "streams opened (one, still open)");
  await card.screenshot({ path: join(shots, `${change.screenshot}.png`), animations: "disabled" });

  // A hidden tab closes its stream; shown again, it reconnects with the
  // last frame's id as Last-Event-ID.
  await step("hidden");
  const setHidden = (hidden) =>
    page.evaluate((hidden) => {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (hidden ? "hidden" : "visible") });
      document.dispatchEvent(new Event("visibilitychange"));
    }, hidden);
  await setHidden(true);
  for (let i = 0; i < 50 && streamsEnded === 0; i++) await page.waitForTimeout(100);
  equal(streamsEnded, 1, "streams closed when hidden");
  await setHidden(false);
  for (let i = 0; i < 50 && streams.length < 2; i++) await page.waitForTimeout(100);
  equal(streams.length, 2, "streams opened after the tab is shown again");
  // The frame's id is the answer's version (DESIGN §4.4: 62 bits of the
  // SHA-256 of the polling body, without its final newline as in a data:
  // line), so the current answer gives it.
  const current = await fetch(`${baseURL}${pollPath}`, { headers: { "X-Eats-User": `user_id=${eater}` } });
  const body = (await current.text()).replace(/\n$/, "");
  const version = (createHash("sha256").update(body, "utf8").digest().readBigUInt64BE(0) >> 2n)
    .toString(16)
    .padStart(16, "0");
  equal(streams[1]?.["last-event-id"], version, "Last-Event-ID on reconnect (the last frame's id)");
  equal(await card.getAttribute("data-status"), change.after.status, "the card after the reconnect");

  // The stream refused: the page still updates, by polling every second.
  await step("refused");
  await refuseStream();
  const streamsBefore = streams.length;
  await page.goto(`${baseURL}/app/?eater=${encodeURIComponent(eater)}&poll=1`);
  await page.locator(".card").nth(expected.length - 1).waitFor();
  const polled = page.locator(`.card[data-order-nr="${changeByPoll.orderNr}"]`);
  equal(await polled.getAttribute("data-status"), changeByPoll.before.status, "card changed by polling, before");
  check(streams.length > streamsBefore, "the widget asked for a stream");
  const pollsBeforeRefused = requests.length;
  await step("event-by-poll", true);
  await page.locator(`.card[data-order-nr="${changeByPoll.orderNr}"][data-status="${changeByPoll.after.status}"]`).waitFor();
  equal((await polled.locator(".card-title").innerText()).trim(), changeByPoll.after.title, "card changed by polling, title after");
  check(requests.length > pollsBeforeRefused, "the widget polled");
  check(await page.locator(".notice").isHidden(), "a refused stream shows nothing");
  await page.unroute(streamRoute);

  // The language goes to the API as X-Request-Language.
  await step("lang");
  requests.length = 0;
  streams.length = 0;
  await page.goto(`${baseURL}/app/?eater=${encodeURIComponent(eater)}&lang=en`);
  await page.locator(".card").first().waitFor();
  equal(requests[0]?.["x-request-language"], "en", "X-Request-Language");
  equal(streams[0]?.["x-request-language"], "en", "the stream's X-Request-Language");
  equal(await page.locator("h1").innerText(), "Your orders", "English heading");
  equal(await page.getAttribute("html", "lang"), "en", "document language");

  // The friendly empty state.
  await step("empty");
  await page.goto(`${baseURL}/app/?eater=nobody-${Date.now()}`);
  await page.locator(".state--empty").waitFor();
  equal((await page.locator(".state--empty h2").innerText()).trim(), "Активных заказов нет", "empty state");
  equal(await page.locator(".card").count(), 0, "no cards");
  await page.locator("main").screenshot({ path: join(shots, "empty.png"), animations: "disabled" });

  // The error state, then recovery with the backoff's retry.
  await step("error");
  await refuseStream();
  await page.route("**/eats-orders-tracking/v1/tracking", (route) =>
    route.fulfill({
      status: 503,
      contentType: "application/problem+json",
      body: JSON.stringify({ title: "Service Unavailable", status: 503, detail: "try again later" }),
    }),
  );
  await page.goto(`${baseURL}/app/?eater=${encodeURIComponent(eater)}`);
  await page.locator(".state--error").waitFor();
  check((await page.locator(".state--error").innerText()).includes("503: try again later"), "error state names the failure");
  await page.locator("main").screenshot({ path: join(shots, "error.png"), animations: "disabled" });
  await page.unroute("**/eats-orders-tracking/v1/tracking");
  await page.unroute(streamRoute);
  await page.clock.fastForward("00:03"); // the first backoff is 2 s
  await page.locator(".card").first().waitFor();
  check(await page.locator(".state--error").isHidden(), "the error state goes away once the API answers");

  // No eater: a form that asks for one.
  await step("who");
  await page.goto(`${baseURL}/app/`);
  await page.locator("form.state--who").waitFor();
  await page.fill("#eater", eater);
  await Promise.all([page.waitForURL(/eater=/), page.click("form.state--who button[type=submit]")]);
  await page.locator(".card").first().waitFor();

  // From here on the API is answered by the test (page.route) and the
  // clock stands still unless the test moves it, so every check is exact.
  // The stream is refused, so the answers come by polling.
  await refuseStream();
  const tracking = "**/eats-orders-tracking/v1/tracking";
  const mockOrder = (title, banners) => ({
    order: { orderNr: "mock-1", flowType: "retail", status: "place_confirmed", createdAt: "2026-01-01T10:00:00Z" },
    status: "picker_contact_us",
    title,
    description: "crafted by browser.mjs",
    actions: [],
    ...(banners ? { banners: { design: "wide_and_short", banners } } : {}),
    place: { id: "40", name: "Магазин у дома" },
    checkAfter: 15,
  });
  // Answers the n-th request (1-based) with answer(n); returns how many
  // requests reached the route.
  async function answerWith(answer) {
    let served = 0;
    await page.unroute(tracking);
    await page.route(tracking, (route) => {
      served++;
      const { checkAfter, orders } = answer(served);
      return route.fulfill({
        status: 200,
        contentType: "application/json",
        headers: { "cache-control": "no-store" },
        body: JSON.stringify({ meta: { checkAfter, count: orders.length }, payload: { trackedOrders: orders } }),
      });
    });
    return () => served;
  }
  // Counts the widget's polls and streams in the page, synchronously: a
  // fetch due at a fake time has been called by the time clock.runFor
  // returns. With sessionStorage "eot-silent-stream" set, a stream opens,
  // sends that frame and then nothing, never ending (page.route cannot
  // hold a response open).
  await page.addInitScript(() => {
    window.__polls = 0;
    window.__streams = 0;
    const realFetch = window.fetch.bind(window);
    window.fetch = (input, init) => {
      if (String(input).endsWith("/eats-orders-tracking/v1/tracking")) window.__polls++;
      if (String(input).endsWith("/eats-orders-tracking/v1/tracking/stream")) {
        window.__streams++;
        const silent = sessionStorage.getItem("eot-silent-stream");
        if (silent) {
          const body = new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode(`retry: 3000\n\nevent: tracking\nid: 00000000000000b2\ndata: ${silent}\n\n`));
            },
          });
          return Promise.resolve(new Response(body, { status: 200, headers: { "content-type": "text/event-stream" } }));
        }
      }
      return realFetch(input, init);
    };
  });
  const polls = () => page.evaluate(() => window.__polls);
  const streamTries = () => page.evaluate(() => window.__streams);
  // The widget counts the times its stream went down (data-stream-downs):
  // a reconnect is timed from then, which comes in real time after the
  // routed answer, so the test waits for it before moving the clock.
  async function streamDowns(n, what) {
    let got = 0;
    for (let i = 0; i < 100; i++) {
      got = await page.evaluate(() => Number(document.getElementById("app")?.dataset["streamDowns"] ?? 0));
      if (got >= n) break;
      await page.waitForTimeout(50);
    }
    equal(got, n, `${what}: times the stream went down`);
  }
  const fakeNow = await page.evaluate(() => Date.now());
  await page.clock.pauseAt(fakeNow + 1000);

  // The next poll comes meta.checkAfter seconds after each answer: 3 s,
  // then 7 s, then 0 (clamped to the 1 s minimum); not a fixed 15 s.
  await step("checkafter");
  const intervals = [3, 7, 0];
  const waits = [3000, 7000, 1000];
  const served = await answerWith((n) => ({
    checkAfter: intervals[n - 1] ?? 15,
    orders: [mockOrder(`answer ${n}`)],
  }));
  await page.goto(`${baseURL}/app/?eater=${encodeURIComponent(eater)}`);
  await page.locator(".card-title", { hasText: "answer 1" }).waitFor();
  equal(await polls(), 1, "polls after loading");
  for (const [i, ms] of waits.entries()) {
    const what = `after an answer with checkAfter ${intervals[i]}`;
    await page.clock.runFor(ms - 1);
    equal(await polls(), i + 1, `${what}: polls ${ms - 1} ms later`);
    await page.clock.runFor(1);
    equal(await polls(), i + 2, `${what}: polls ${ms} ms later`);
    await page.locator(".card-title", { hasText: `answer ${i + 2}` }).waitFor();
  }
  equal(served(), waits.length + 1, "requests that reached the API");

  // ?poll=<seconds> (local use: a sped-up demo) replaces meta.checkAfter.
  await step("poll-override");
  const servedOverride = await answerWith((n) => ({ checkAfter: 3, orders: [mockOrder(`poll ${n}`)] }));
  await page.goto(`${baseURL}/app/?eater=${encodeURIComponent(eater)}&poll=2`);
  await page.locator(".card-title", { hasText: "poll 1" }).waitFor();
  equal(await polls(), 1, "?poll=2: polls after loading");
  await page.clock.runFor(1999);
  equal(await polls(), 1, "?poll=2: polls 1999 ms later");
  await page.clock.runFor(1);
  equal(await polls(), 2, "?poll=2: polls 2000 ms later");
  await page.locator(".card-title", { hasText: "poll 2" }).waitFor();
  equal(servedOverride(), 2, "?poll=2: requests that reached the API");

  // The stream answered by the test: its frame is shown like a poll's
  // answer; the server's retry: times the reconnect after it ends, which
  // sends the frame's id as Last-Event-ID; a 503 is retried after its
  // Retry-After, then after a jittered backoff (the second failure in a
  // row: 1–2 s); polling resumes meanwhile.
  await step("stream-retry");
  await answerWith((n) => ({ checkAfter: 15, orders: [mockOrder(`poll ${n}`)] }));
  const frameBody = (title) =>
    JSON.stringify({ meta: { checkAfter: 15, count: 1 }, payload: { trackedOrders: [mockOrder(title)] } });
  const refusal = JSON.stringify({ title: "Service Unavailable", status: 503, detail: "crafted by browser.mjs" });
  const streamAsks = [];
  await page.unroute(streamRoute);
  await page.route(streamRoute, (route) => {
    const n = streamAsks.push(route.request().headers());
    if (n === 1) {
      return route.fulfill({
        status: 200,
        contentType: "text/event-stream",
        body: `retry: 3000\n\n:\n\nevent: tracking\nid: 00000000000000a1\ndata: ${frameBody("frame 1")}\n\n`,
      });
    }
    const headers = n === 2 ? { "retry-after": "5" } : {};
    return route.fulfill({ status: 503, contentType: "application/problem+json", headers, body: refusal });
  });
  await page.goto(`${baseURL}/app/?eater=${encodeURIComponent(eater)}`);
  await page.locator(".card-title", { hasText: "frame 1" }).waitFor();
  equal(await streamTries(), 1, "stream: connections after loading");
  const tries = [
    [3000, "after the server's retry: 3000"],
    [5000, "after a 503 with Retry-After: 5"],
  ];
  for (const [i, [ms, what]] of tries.entries()) {
    await streamDowns(i + 1, `stream: ${what}`);
    const before = await streamTries();
    await page.clock.runFor(ms - 1);
    equal(await streamTries(), before, `stream: no reconnect ${ms - 1} ms ${what}`);
    await page.clock.runFor(1);
    equal(await streamTries(), before + 1, `stream: reconnect ${ms} ms ${what}`);
  }
  for (let i = 0; i < 50 && streamAsks.length < 2; i++) await page.waitForTimeout(100);
  equal(streamAsks[1]?.["last-event-id"], "00000000000000a1", "stream: Last-Event-ID on reconnect");
  await streamDowns(3, "stream: the second failure in a row");
  await page.clock.runFor(999);
  equal(await streamTries(), 3, "stream: no reconnect within 1 s of the second failure in a row");
  await page.clock.runFor(1001);
  equal(await streamTries(), 4, "stream: reconnect within 2 s of the second failure in a row");
  equal(await polls(), 1, "stream: polls before meta.checkAfter (15 s) after the stream ended");
  await page.clock.runFor(15_000 - 3000 - 5000 - 2000);
  equal(await polls(), 2, "stream: polls 15 s after the stream ended");
  await page.locator(".card-title", { hasText: "poll 2" }).waitFor();
  check(await page.locator(".notice").isHidden(), "a stream that is down shows nothing");
  await page.unroute(streamRoute);
  await refuseStream();

  // A stream that opens and then says nothing (no frame, no heartbeat) for
  // 45 s is given up: the widget reconnects after the backoff and polls
  // meanwhile.
  await step("stream-silent");
  await answerWith(() => ({ checkAfter: 15, orders: [mockOrder("polled after silence")] }));
  await page.evaluate((body) => sessionStorage.setItem("eot-silent-stream", body), frameBody("silent frame"));
  await page.goto(`${baseURL}/app/?eater=${encodeURIComponent(eater)}`);
  await page.locator(".card-title", { hasText: "silent frame" }).waitFor();
  await page.evaluate(() => sessionStorage.removeItem("eot-silent-stream"));
  equal(await streamTries(), 1, "silent stream: connections after loading");
  await page.clock.runFor(45_000 - 1);
  equal(await streamTries(), 1, "silent stream: no reconnect before 45 s of silence");
  equal(await polls(), 1, "silent stream: no poll while it is open");
  await page.clock.runFor(1);
  await streamDowns(1, "silent stream");
  await page.clock.runFor(1000);
  equal(await streamTries(), 2, "silent stream: reconnect within 1 s of giving it up");
  await page.clock.runFor(15_000 - 1000);
  equal(await polls(), 2, "silent stream: polls 15 s after giving it up");
  await page.locator(".card-title", { hasText: "polled after silence" }).waitFor();

  // A banner is a link only when appLink is a safe link; null, "" and
  // script or data URLs give plain text.
  await step("banners");
  const bannerCases = [
    { appLink: null, tag: "p" },
    { appLink: "", tag: "p" },
    { appLink: "https://eda.example/x", tag: "a" },
    { appLink: "eda://retail/forgot-item", tag: "a" },
    { appLink: "javascript:alert(1)", tag: "p" },
    { appLink: " JavaScript:alert(1)", tag: "p" },
    { appLink: "data:text/html,<b>hi</b>", tag: "p" },
    { appLink: "/relative/path", tag: "p" },
  ];
  await answerWith(() => ({
    checkAfter: 15,
    orders: [mockOrder("banners", bannerCases.map((c, i) => ({
      id: `b${i}`, kind: "info", text: `banner ${i}`, appLink: c.appLink,
    })))],
  }));
  await page.goto(`${baseURL}/app/?eater=${encodeURIComponent(eater)}`);
  await page.locator(".banner").nth(bannerCases.length - 1).waitFor();
  const shownBanners = page.locator(".banner");
  equal(await shownBanners.count(), bannerCases.length, "number of crafted banners");
  for (const [i, c] of bannerCases.entries()) {
    const b = shownBanners.nth(i);
    const what = `banner with appLink ${JSON.stringify(c.appLink)}`;
    equal((await b.innerText()).trim(), `banner ${i}`, `${what}: text`);
    equal(await b.evaluate((n) => n.tagName.toLowerCase()), c.tag, `${what}: element`);
    if (c.tag === "a") {
      equal(await b.getAttribute("href"), c.appLink, `${what}: href`);
    } else {
      equal(await b.getAttribute("href"), null, `${what}: no href`);
      equal(await b.evaluate((n) => n.closest("a") === null && n.querySelector("a") === null), true, `${what}: not inside a link`);
    }
  }
  equal(await page.locator('#app [href^="javascript:" i], #app [href^=" javascript:" i], #app [href^="data:" i]').count(), 0, "no script or data links in the widget");
  await page.unroute(tracking);
  await page.unroute(streamRoute);

  const unexpected = consoleErrors.filter((e) => !e.includes("503"));
  check(unexpected.length === 0, `console errors: ${unexpected.join("; ")}`);
  await step("done");
} finally {
  await context.close();
  stdin.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
