// Browser checks of the tracking widget, driven by web/e2e/e2e_test.go,
// which starts the service, seeds the orders and passes in (environment):
//   BASE_URL        the service, e.g. http://127.0.0.1:41234
//   EATER           the customer whose orders were seeded
//   EXPECT          JSON: [{orderNr, status, title, description,
//                   actions: [{tag: "a"|"button", text, href?}],
//                   banners: [text...], screenshot}]
//   CHANGE          JSON: {orderNr, before: {status, title}, after: {status, title, href}}
//   CHROMIUM        the browser (Debian's /usr/bin/chromium)
//   SCREENSHOT_DIR  where the PNGs go
// Protocol on stdio: the script prints "@@ <step>" and, for "@@ event",
// waits for a line on stdin (the Go test has inserted the new event).
// Any failed check throws; the exit code tells the Go test.
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
  const requests = [];
  page.on("request", (r) => {
    if (r.url().includes("/eats-orders-tracking/v1/tracking")) requests.push(r.headers());
  });

  // Fake timers that still flow in real time, so the test can jump to the
  // next poll (meta.checkAfter = 15 s) instead of sleeping through it.
  await page.clock.install();

  await step("load");
  await page.goto(`${baseURL}/app/?eater=${encodeURIComponent(eater)}`);
  await page.locator(".card").nth(expected.length - 1).waitFor();
  await page.evaluate(() => { window.__notReloaded = true; });
  equal(requests[0]?.["x-eats-user"], `user_id=${eater}`, "X-Eats-User");
  check(!("x-request-language" in requests[0]), "no X-Request-Language without ?lang=");
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

  // Polling: a new event changes a card without a reload.
  const card = page.locator(`.card[data-order-nr="${change.orderNr}"]`);
  equal(await card.getAttribute("data-status"), change.before.status, "changing card, before");
  equal((await card.locator(".card-title").innerText()).trim(), change.before.title, "changing card title, before");
  const pollsBefore = requests.length;
  await step("event", true);
  await page.clock.fastForward("00:16");
  await page.locator(`.card[data-order-nr="${change.orderNr}"][data-status="${change.after.status}"]`).waitFor();
  equal((await card.locator(".card-title").innerText()).trim(), change.after.title, "changing card title, after");
  equal(await card.locator("a.action").getAttribute("href"), change.after.href, "changing card call link");
  equal(await page.evaluate(() => window.__notReloaded === true), true, "the page was not reloaded");
  check(requests.length > pollsBefore, "the widget polled again");
  await card.screenshot({ path: join(shots, `${change.screenshot}.png`), animations: "disabled" });

  // The language goes to the API as X-Request-Language.
  await step("lang");
  requests.length = 0;
  await page.goto(`${baseURL}/app/?eater=${encodeURIComponent(eater)}&lang=en`);
  await page.locator(".card").first().waitFor();
  equal(requests[0]?.["x-request-language"], "en", "X-Request-Language");
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

  const unexpected = consoleErrors.filter((e) => !e.includes("503"));
  check(unexpected.length === 0, `console errors: ${unexpected.join("; ")}`);
  await step("done");
} finally {
  await context.close();
  stdin.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
