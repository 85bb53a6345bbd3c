// The tracking widget: who is asking comes from ?eater= (sent as
// X-Eats-User, as the API gateway would), the language from ?lang=. It holds
// the live stream (stream.ts) and shows each frame as it comes; while the
// stream is down or refused it polls the tracking endpoint every
// meta.checkAfter seconds, re-scheduling from each answer, and backs off on
// errors while keeping the last good cards. A frame and a poll's answer are
// the same body and go through the same rendering. For local use and the
// browser tests, ?poll=<seconds> replaces meta.checkAfter (a sped-up demo,
// DEMO_SPEED, changes states faster than the service's 15 s; a test sets
// 600 to prove a change came by the stream).
import { ApiError, fetchTracking, type Identity, type TrackingResponse } from "./api";
import { clock, langOf, messages, type Lang, type Messages } from "./i18n";
import { cardKey, h, renderCard } from "./render";
import { LiveStream } from "./stream";

/** Seconds between polls when an answer does not say (DESIGN §4.1: 15). */
export const DEFAULT_CHECK_AFTER = 15;
const MIN_CHECK_AFTER = 1;
const MAX_CHECK_AFTER = 300;
/** ?poll= may ask for up to an hour (a test proving the stream sets 600). */
const MAX_POLL_OVERRIDE = 3600;
const BACKOFF_FIRST = 2;
const BACKOFF_MAX = 60;
const REQUEST_TIMEOUT_MS = 10_000;

/** The next poll, in seconds, from an answer's meta.checkAfter. */
export function nextDelay(checkAfter: unknown): number {
  if (typeof checkAfter !== "number" || !Number.isFinite(checkAfter)) return DEFAULT_CHECK_AFTER;
  return Math.min(MAX_CHECK_AFTER, Math.max(MIN_CHECK_AFTER, checkAfter));
}

/**
 * ?poll=<seconds>: a positive number, clamped to 1 s – 1 h, else none
 * (follow meta.checkAfter).
 */
export function pollOverride(param: string | null): number | undefined {
  if (param === null || param.trim() === "") return undefined;
  const seconds = Number(param);
  if (!Number.isFinite(seconds) || seconds <= 0) return undefined;
  return Math.min(MAX_POLL_OVERRIDE, Math.max(MIN_CHECK_AFTER, seconds));
}

/** The wait after the n-th failure in a row: 2, 4, 8 … 60 seconds. */
export function backoff(failures: number): number {
  return Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** Math.max(0, failures - 1));
}

interface Shown {
  key: string;
  el: HTMLElement;
}

class Widget {
  private readonly m: Messages;
  private readonly status: HTMLElement;
  private readonly notice: HTMLElement;
  private readonly list: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly failure: HTMLElement;
  private readonly shown = new Map<string, Shown>();
  private hasData = false;
  private failures = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private inflight: AbortController | undefined;
  private dueWhileHidden = false;
  /** The last answer's meta.checkAfter: the polling period when the stream is down. */
  private checkAfter: unknown = DEFAULT_CHECK_AFTER;
  private readonly live: LiveStream;
  /** The stream is open: frames keep the page current and polling stops. */
  private streaming = false;
  private streamDowns = 0;

  constructor(
    private readonly root: HTMLElement,
    private readonly id: Identity,
    private readonly lang: Lang,
    /** Seconds between polls instead of meta.checkAfter (?poll=, local use). */
    private readonly pollEvery?: number,
  ) {
    this.m = messages(lang);
    this.status = h("p", { class: "status", "data-testid": "updated" }, this.m.loading);
    this.notice = h("div", { class: "notice", role: "status", hidden: "" });
    this.list = h("ul", {
      class: "orders",
      "aria-label": this.m.ordersLabel,
      "aria-live": "polite",
      "aria-busy": "true",
    });
    this.empty = h(
      "section",
      { class: "state state--empty", hidden: "", "aria-live": "polite" },
      h("h2", {}, this.m.emptyTitle),
      h("p", {}, this.m.emptyText),
    );
    this.failure = h("section", { class: "state state--error", role: "alert", hidden: "" });
    root.replaceChildren(
      h("header", { class: "top" }, h("h1", {}, this.m.heading), this.status),
      this.notice,
      this.list,
      this.empty,
      this.failure,
    );
    this.live = new LiveStream(id, {
      open: () => {
        // The stream sends the current answer at once, or nothing when it
        // is the version we have: a poll on its way could only be older,
        // and the cards shown are not stale.
        this.streaming = true;
        this.root.dataset["stream"] = "open";
        this.failures = 0;
        this.stopPolling();
        if (this.hasData) this.notice.hidden = true;
      },
      answer: (res) => {
        this.checkAfter = res.meta.checkAfter;
        this.failures = 0;
        this.show(res);
      },
      alive: () => {
        // As a poll with the same answer would: the cards are current now.
        if (this.hasData) this.status.textContent = this.m.updated(clock(this.lang, new Date()));
      },
      down: () => {
        // Poll until a reconnect succeeds; the page does not say so (the
        // data attributes are for tests and debugging).
        this.streaming = false;
        this.root.dataset["stream"] = "down";
        this.root.dataset["streamDowns"] = String(++this.streamDowns);
        if (this.timer === undefined && this.inflight === undefined && !this.dueWhileHidden) {
          this.schedule(this.period());
        }
      },
    });
    // A hidden tab holds no stream and does not poll; shown again, it
    // reconnects (the server sends the answer at once if it changed since
    // the last frame) and polls if a poll fell due.
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) {
        if (this.streaming) this.dueWhileHidden = true;
        this.streaming = false;
        this.live.stop();
        return;
      }
      this.live.start();
      if (this.dueWhileHidden) {
        this.dueWhileHidden = false;
        void this.poll();
      }
    });
    // Leaving the page (or entering the back-forward cache) closes the
    // stream; coming back from that cache starts again.
    window.addEventListener("pagehide", () => {
      this.streaming = false;
      this.live.stop();
      this.stopPolling();
    });
    window.addEventListener("pageshow", (e) => {
      if (e.persisted) this.start();
    });
  }

  start(): void {
    void this.poll();
    this.live.start();
  }

  /** Seconds between polls: ?poll= or the last answer's meta.checkAfter. */
  private period(): number {
    return this.pollEvery ?? nextDelay(this.checkAfter);
  }

  private stopPolling(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dueWhileHidden = false;
    const ac = this.inflight;
    this.inflight = undefined;
    ac?.abort();
  }

  private schedule(seconds: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A hidden tab does not poll; it catches up when shown again.
      if (document.hidden) this.dueWhileHidden = true;
      else void this.poll();
    }, seconds * 1000);
  }

  async poll(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.inflight?.abort();
    const ac = new AbortController();
    this.inflight = ac;
    const timeout = setTimeout(() => ac.abort(), REQUEST_TIMEOUT_MS);
    try {
      const res = await fetchTracking(this.id, ac.signal);
      if (this.inflight !== ac) return;
      this.inflight = undefined;
      this.failures = 0;
      this.checkAfter = res.meta.checkAfter;
      this.show(res);
      this.live.polled(res);
      if (!this.streaming) this.schedule(this.period());
    } catch (err) {
      if (this.inflight !== ac) return; // superseded by a newer poll or the stream
      this.inflight = undefined;
      this.failures++;
      const wait = backoff(this.failures);
      this.showError(err, wait);
      if (!this.streaming) this.schedule(wait);
    } finally {
      clearTimeout(timeout);
    }
  }

  private show(res: TrackingResponse): void {
    const orders = res.payload.trackedOrders ?? [];
    this.hasData = true;
    this.notice.hidden = true;
    this.failure.hidden = true;
    this.list.setAttribute("aria-busy", "false");
    this.status.textContent = this.m.updated(clock(this.lang, new Date()));
    this.root.dataset["count"] = String(orders.length);

    const next = new Map<string, Shown>();
    for (const o of orders) {
      const nr = o.order.orderNr;
      const key = cardKey(o, this.lang);
      const old = this.shown.get(nr);
      next.set(nr, old && old.key === key ? old : { key, el: renderCard(o, this.m, this.lang) });
    }
    const sameOrder =
      next.size === this.shown.size &&
      [...next.keys()].every((nr, i) => [...this.shown.keys()][i] === nr);
    if (sameOrder) {
      // Replace only the cards that changed, so focus and screen readers
      // are not disturbed by cards that did not.
      for (const [nr, s] of next) {
        const old = this.shown.get(nr);
        if (old && old.el !== s.el) old.el.replaceWith(s.el);
      }
    } else {
      this.list.replaceChildren(...[...next.values()].map((s) => s.el));
    }
    this.shown.clear();
    for (const [nr, s] of next) this.shown.set(nr, s);
    this.list.hidden = orders.length === 0;
    this.empty.hidden = orders.length !== 0;
  }

  private showError(err: unknown, waitSeconds: number): void {
    const reason =
      err instanceof ApiError
        ? err.status === 0
          ? err.message
          : `${err.status}: ${err.message}`
        : String(err);
    const retry = h("button", { type: "button", class: "retry" }, this.m.retryNow);
    retry.addEventListener("click", () => void this.poll());
    if (this.hasData) {
      // Keep the last good cards; say that they may be stale.
      this.notice.replaceChildren(
        h("span", {}, `${this.m.staleNotice} ${this.m.retryIn(waitSeconds)}`),
        retry,
      );
      this.notice.hidden = false;
      return;
    }
    this.list.setAttribute("aria-busy", "false");
    this.status.textContent = "";
    this.failure.replaceChildren(
      h("h2", {}, this.m.errorTitle),
      h("p", { class: "reason" }, reason),
      h("p", {}, this.m.retryIn(waitSeconds)),
      retry,
    );
    this.failure.hidden = false;
  }
}

function askForEater(root: HTMLElement, lang: Lang, requestedLang: string | null): void {
  const m = messages(lang);
  const form = h(
    "form",
    { class: "state state--who", method: "get" },
    h("h2", {}, m.noEaterTitle),
    h("p", {}, m.noEaterText),
    h("label", { for: "eater" }, m.eaterLabel),
    h("input", { id: "eater", name: "eater", required: "", autocomplete: "off", value: "demo" }),
    requestedLang ? h("input", { type: "hidden", name: "lang", value: requestedLang }) : null,
    h("button", { type: "submit" }, m.show),
  );
  root.replaceChildren(h("header", { class: "top" }, h("h1", {}, m.heading)), form);
}

function main(): void {
  const root = document.getElementById("app");
  if (!root) return;
  const params = new URLSearchParams(window.location.search);
  const requestedLang = params.get("lang");
  const lang = langOf(requestedLang);
  document.documentElement.lang = lang;
  const eater = (params.get("eater") ?? "").trim();
  if (eater === "") {
    askForEater(root, lang, requestedLang);
    return;
  }
  const identity = { eater, lang: requestedLang || undefined };
  new Widget(root, identity, lang, pollOverride(params.get("poll"))).start();
}

main();
