// The tracking endpoint, typed by the client generated from
// openapi/openapi.yaml (src/api.gen.ts, `npm run generate`). Every type here
// is derived from the generated `paths`, so a change in the spec reaches the
// widget's type check without anyone editing this file.
import type { components, paths } from "./api.gen";

/** The app-facing tracking operation (DESIGN §4.1). */
export const TRACKING_PATH = "/eats/v1/eats-orders-tracking/v1/tracking";

type TrackingOperation = paths[typeof TRACKING_PATH]["get"];

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

/** A failed request: the HTTP status (0 for a network failure) and a reason. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
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
