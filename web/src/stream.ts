// The live answer (DESIGN §4.4): server-sent events read through
// @microsoft/fetch-event-source, because EventSource cannot send the
// identity headers a poll sends. The package does the fetch and the frame
// parsing; each call of it is one connection (onerror rethrows), and the
// reconnect is scheduled here, because the widget must know when the stream
// is down (it polls meanwhile) and must pick the wait: the server's
// `retry:` after a stream it ended, else a jittered exponential backoff that
// honours Retry-After. An open stream that sends nothing, not even the
// server's heartbeat, for SILENCE_MS counts as failed: a connection can die
// without an error reaching the page.
import { fetchEventSource } from "@microsoft/fetch-event-source";
import {
  ApiError,
  refusal,
  STREAM_PATH,
  streamHeaders,
  type Identity,
  type StreamFrame,
  type TrackingResponse,
} from "./api";

const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;
/**
 * An open stream that says nothing (no frame, no heartbeat) for this long
 * is dead, though no error says so (a network that dropped it silently):
 * three of the server's 15 s heartbeats.
 */
export const SILENCE_MS = 45_000;

/**
 * The wait before the n-th reconnect in a row, in ms: a random point in the
 * upper half of 1, 2, 4 … 60 s, so clients cut off together do not come
 * back together.
 */
export function streamBackoff(failures: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** Math.max(0, failures - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** An open stream went silent for SILENCE_MS. */
export class StreamSilent extends Error {
  constructor() {
    super(`the stream sent nothing for ${SILENCE_MS / 1000} s`);
    this.name = "StreamSilent";
  }
}

/** The server ended a stream that was open (max age, drain, its bound). */
export class StreamEnded extends Error {
  constructor() {
    super("the server ended the stream");
    this.name = "StreamEnded";
  }
}

export interface StreamEvents {
  /** The stream is open: the answers come from it, polling can stop. */
  open(): void;
  /** A frame: the same answer a poll gives. */
  answer(res: TrackingResponse): void;
  /** A heartbeat: the last answer is still the current one. */
  alive(): void;
  /** The stream failed, was refused or ended; the next try is in waitMs. */
  down(err: unknown, waitMs: number): void;
}

/** One eater's stream, reconnected until stop(). */
export class LiveStream {
  private ac: AbortController | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private failures = 0;
  /** The last frame's id and data: sent back as Last-Event-ID. */
  private lastId = "";
  private lastData = "";
  /** The server's last `retry:` (ms). */
  private serverRetry: number | undefined;

  constructor(
    private readonly id: Identity,
    private readonly on: StreamEvents,
  ) {}

  /** Connects unless connected or a reconnect is already due. */
  start(): void {
    if (this.ac === undefined && this.timer === undefined) this.connect();
  }

  /** Closes the stream and cancels any reconnect. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const ac = this.ac;
    this.ac = undefined;
    ac?.abort();
  }

  /**
   * The page shows an answer from a poll. If it is not the last frame's,
   * the next connection must not claim that frame's version: the answer
   * may have gone back to it since, and the server would then send nothing.
   */
  polled(res: TrackingResponse): void {
    if (this.lastId !== "" && JSON.stringify(res) !== this.lastData) {
      this.lastId = "";
      this.lastData = "";
    }
  }

  private connect(): void {
    const ac = new AbortController();
    this.ac = ac;
    let opened = false;
    let silent = false;
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const heard = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        silent = true;
        ac.abort();
      }, SILENCE_MS);
    };
    fetchEventSource(STREAM_PATH, {
      signal: ac.signal,
      headers: streamHeaders(this.id, this.lastId),
      cache: "no-store",
      // The package's own hidden-tab handling keeps retrying while hidden
      // (Azure/fetch-event-source#17); the widget calls stop() on hide.
      openWhenHidden: true,
      onopen: async (res) => {
        const type = res.headers.get("content-type") ?? "";
        if (!res.ok || !type.startsWith("text/event-stream")) throw await refusal(res);
        if (this.ac !== ac) return;
        opened = true;
        this.failures = 0;
        heard();
        this.on.open();
      },
      onmessage: (msg) => {
        if (this.ac !== ac) return;
        heard();
        if (msg.retry !== undefined) this.serverRetry = msg.retry;
        // Heartbeats (and bare `retry:` lines) dispatch empty messages.
        if (msg.event === "" && msg.data === "") {
          this.on.alive();
          return;
        }
        if (msg.event !== "tracking") return;
        let res: StreamFrame["data"];
        try {
          res = JSON.parse(msg.data) as StreamFrame["data"];
        } catch {
          throw new ApiError(200, "a stream frame is not JSON");
        }
        this.lastId = msg.id;
        this.lastData = JSON.stringify(res);
        this.on.answer(res);
      },
      onclose: () => {
        throw new StreamEnded();
      },
      onerror: (err) => {
        throw err; // no retry inside the package: reconnect() decides
      },
    }).then(
      () => {
        // Aborted: by stop(), or by the watchdog.
        clearTimeout(watchdog);
        if (!silent || this.ac !== ac) return;
        this.ac = undefined;
        this.reconnect(new StreamSilent(), false);
      },
      (err: unknown) => {
        clearTimeout(watchdog);
        if (this.ac !== ac) return;
        this.ac = undefined;
        this.reconnect(err, opened);
      },
    );
  }

  private reconnect(err: unknown, opened: boolean): void {
    let wait: number;
    if (opened && err instanceof StreamEnded && this.serverRetry !== undefined) {
      wait = this.serverRetry; // the server ended a good stream and said when
    } else {
      this.failures++;
      const asked = err instanceof ApiError ? (err.retryAfterMs ?? 0) : 0;
      wait = Math.max(asked, streamBackoff(this.failures));
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, wait);
    this.on.down(err, wait);
  }
}
