// The tracking endpoint, typed by the client generated from
// openapi/openapi.yaml (src/api.gen.ts, `npm run generate`). Every type here
// is derived from the generated `paths`, so a change in the spec reaches the
// widget's type check without anyone editing this file.
import type { components, paths } from "./api.gen";

/** The app-facing tracking operation (DESIGN §4.1). */
export const TRACKING_PATH = "/eats/v1/eats-orders-tracking/v1/tracking";

/** The same answer pushed as server-sent events (DESIGN §4.4). */
export const STREAM_PATH = "/eats/v1/eats-orders-tracking/v1/tracking/stream";

type TrackingOperation = paths[typeof TRACKING_PATH]["get"];
type StreamOperation = paths[typeof STREAM_PATH]["get"];
/** One frame of the stream: its data is the polling answer, byte for byte. */
export type StreamFrame =
  StreamOperation["responses"][200]["content"]["text/event-stream"][number];

export type TrackingResponse =
  TrackingOperation["responses"][200]["content"]["application/json"];
export type TrackedOrder = NonNullable<
  TrackingResponse["payload"]["trackedOrders"]
>[number];
export type Action = NonNullable<TrackedOrder["actions"]>[number];
export type ActionPayload = NonNullable<Action["payload"]>;
/** The named enum of the spec: courier, place, picker (and whatever comes next). */
export type ContactType = components["schemas"]["TrackedOrderButtonContactType"];
export type BannerBlock = NonNullable<TrackedOrder["banners"]>;
export type Banner = NonNullable<BannerBlock["banners"]>[number];
type Problem = components["schemas"]["ErrorModel"];

/** What the widget sends: who is asking and in which language. */
export interface Identity {
  eater: string;
  /** Sent as X-Request-Language when set (e.g. "en"). */
  lang?: string | undefined;
}

/**
 * A failed request: the HTTP status (0 for a network failure), a reason and,
 * when the server sent Retry-After, how long it asked to wait (ms).
 */
export class ApiError extends Error {
  readonly status: number;
  readonly retryAfterMs: number | undefined;
  constructor(status: number, message: string, retryAfterMs?: number) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Retry-After (delta-seconds or an HTTP date) in ms, or undefined. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The headers the API gateway would set for this customer. */
export function trackingHeaders(id: Identity): Record<string, string> {
  const headers: Record<string, string> = {
    Accept: "application/json",
    "X-Eats-User": `user_id=${id.eater}`,
  };
  if (id.lang) headers["X-Request-Language"] = id.lang;
  return headers;
}

/**
 * The stream's headers: the same identity as a poll, lower-case because the
 * SSE reader adds its own `accept` unless one is there, and Last-Event-ID
 * (the last frame's id) on a reconnect.
 */
export function streamHeaders(id: Identity, lastEventId: string): Record<string, string> {
  const headers: Record<string, string> = {
    accept: "text/event-stream",
    "x-eats-user": `user_id=${id.eater}`,
  };
  if (id.lang) headers["x-request-language"] = id.lang;
  if (lastEventId) headers["last-event-id"] = lastEventId;
  return headers;
}

/** The stream's refusal (400, 503 …) as an ApiError, with Retry-After. */
export async function refusal(res: Response): Promise<ApiError> {
  const wait = retryAfterMs(res.headers.get("Retry-After"));
  if (res.ok) {
    return new ApiError(res.status, `not an event stream: ${res.headers.get("content-type") ?? "no content type"}`, wait);
  }
  return new ApiError(res.status, await problemDetail(res), wait);
}

/** GET the tracked orders of the customer. Throws ApiError on any failure. */
export async function fetchTracking(
  id: Identity,
  signal?: AbortSignal,
): Promise<TrackingResponse> {
  let res: Response;
  try {
    res = await fetch(TRACKING_PATH, {
      headers: trackingHeaders(id),
      cache: "no-store",
      signal: signal ?? null,
    });
  } catch (err) {
    throw new ApiError(0, err instanceof Error ? err.message : String(err));
  }
  if (!res.ok) {
    throw new ApiError(res.status, await problemDetail(res));
  }
  try {
    return (await res.json()) as TrackingResponse;
  } catch {
    throw new ApiError(res.status, "the answer is not JSON");
  }
}

async function problemDetail(res: Response): Promise<string> {
  try {
    const p = (await res.json()) as Problem;
    return p.detail || p.title || `HTTP ${res.status}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}
