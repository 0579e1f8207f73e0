/**
 * What each official API endpoint kickmon relies on is known to do right now,
 * detected from its answers, never assumed (issue 13 item 4: Kick's API is
 * moving, docs/kick-protocol.md §4.5, §10.6).
 *
 * Per endpoint label (`GET /livestreams`, `GET /users/livestreams`, …) an
 * {@linkcode EndpointCapability} says `unknown` (never answered),
 * `available`, `deprecated` (answers, but sends a `Deprecation` header,
 * RFC 9745, or a `Sunset` header, RFC 8594) or `gone` (404 or 410), with the
 * status and headers that decided it and when. Other answers (401, 429, 5xx,
 * a Cloudflare 403) say nothing about the endpoint and change nothing.
 *
 * A change is logged once, at WARN when an endpoint becomes `deprecated` or
 * `gone` and at INFO when it answers again; `/health` shows the snapshot
 * (`official.endpoints`).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";

const log = getLogger(["kickmon", "api"]);

/** What an endpoint is known to do. */
export type EndpointState = "unknown" | "available" | "deprecated" | "gone";

/** One endpoint's capability and the answer that decided it. */
export interface EndpointCapability {
  /** See {@linkcode EndpointState}. */
  readonly state: EndpointState;
  /** HTTP status of the deciding answer; null while `unknown`. */
  readonly status: number | null;
  /** The `Deprecation` header (RFC 9745 `@<epoch s>`, or an older draft's `true`/HTTP date), ≤ 100 characters. */
  readonly deprecation: string | null;
  /** The `Sunset` header (RFC 8594 HTTP date), ≤ 100 characters. */
  readonly sunset: string | null;
  /** When the state was decided, ms since the Unix epoch; null while `unknown`. */
  readonly since: number | null;
  /** When the endpoint last answered in a way that decides its state, ms since the Unix epoch; null while `unknown`. */
  readonly checkedAt: number | null;
}

/**
 * The endpoints tracked by default: those whose disappearance changes what
 * kickmon does (§4.4, §4.5).
 */
export const TRACKED_ENDPOINTS: readonly string[] = [
  "GET /channels",
  "GET /livestreams",
  "GET /users/livestreams",
];

const UNKNOWN: EndpointCapability = {
  state: "unknown",
  status: null,
  deprecation: null,
  sunset: null,
  since: null,
  checkedAt: null,
};

/**
 * The state an answer shows, or null when it shows nothing about the
 * endpoint (auth, rate limit, server trouble, a Cloudflare block).
 *
 * @param status HTTP status.
 * @param headers the answer's headers.
 *
 * @example
 * ```ts
 * classifyAnswer(404, new Headers()); // "gone"
 * classifyAnswer(200, new Headers({ deprecation: "@1750636800" })); // "deprecated"
 * classifyAnswer(503, new Headers()); // null
 * ```
 */
export function classifyAnswer(status: number, headers: Headers): EndpointState | null {
  if (status === 404 || status === 410) return "gone";
  if (status >= 200 && status < 300) {
    return headers.has("deprecation") || headers.has("sunset") ? "deprecated" : "available";
  }
  return null;
}

/** Options of {@linkcode EndpointCapabilities}. */
export interface EndpointCapabilitiesOptions {
  /** Endpoint labels to track (default {@linkcode TRACKED_ENDPOINTS}); others are ignored. */
  readonly endpoints?: readonly string[];
  /** Called after each change (after it is logged), with the new and previous capability. */
  readonly onChange?: (
    endpoint: string,
    now: EndpointCapability,
    before: EndpointCapability,
  ) => void;
  /** Clock, ms since the Unix epoch (default `Date.now`). */
  readonly now?: () => number;
}

/**
 * The capability record of one API client: fed every answer, read by the
 * reconciler, `/health` and `doctor`.
 *
 * @example
 * ```ts
 * const caps = new EndpointCapabilities();
 * caps.record("GET /livestreams", 404, new Headers());
 * caps.get("GET /livestreams").state; // "gone" (logged once at WARN)
 * ```
 */
export class EndpointCapabilities {
  readonly #tracked: ReadonlySet<string>;
  readonly #caps = new Map<string, EndpointCapability>();
  readonly #onChange: EndpointCapabilitiesOptions["onChange"];
  readonly #now: () => number;

  /**
   * Creates an empty record (every tracked endpoint `unknown`).
   *
   * @param opts See {@linkcode EndpointCapabilitiesOptions}.
   */
  constructor(opts: EndpointCapabilitiesOptions = {}) {
    this.#tracked = new Set(opts.endpoints ?? TRACKED_ENDPOINTS);
    this.#onChange = opts.onChange;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Records one answer of `endpoint`. Untracked endpoints and answers that
   * decide nothing ({@linkcode classifyAnswer} null) are ignored.
   *
   * @param endpoint the request's endpoint label, e.g. `GET /livestreams`.
   * @param status HTTP status.
   * @param headers the answer's headers.
   *
   * @example
   * ```ts
   * caps.record("GET /livestreams", 200, new Headers({ sunset: "Wed, 31 Dec 2026 23:59:59 GMT" }));
   * ```
   */
  record(endpoint: string, status: number, headers: Headers): void {
    if (!this.#tracked.has(endpoint)) return;
    const state = classifyAnswer(status, headers);
    if (state === null) return;
    const before = this.get(endpoint);
    const at = this.#now();
    const deprecation = header(headers, "deprecation");
    const sunset = header(headers, "sunset");
    const changed = before.state !== state || before.deprecation !== deprecation ||
      before.sunset !== sunset;
    const now: EndpointCapability = {
      state,
      status,
      deprecation,
      sunset,
      since: changed ? at : before.since,
      checkedAt: at,
    };
    this.#caps.set(endpoint, now);
    if (!changed) return;
    describeChange(endpoint, now, before);
    try {
      this.#onChange?.(endpoint, now, before);
    } catch (e) {
      log.warn("endpoint capability hook threw: {error}", { error: String(e) });
    }
  }

  /**
   * The capability of `endpoint` (`unknown` when never decided).
   *
   * @example
   * ```ts
   * if (caps.get("GET /livestreams").state === "gone") console.log("no v1 channel ids");
   * ```
   */
  get(endpoint: string): EndpointCapability {
    return this.#caps.get(endpoint) ?? UNKNOWN;
  }

  /**
   * Every tracked endpoint's capability, keyed by endpoint label.
   *
   * @example
   * ```ts
   * console.log(caps.snapshot()["GET /users/livestreams"].state);
   * ```
   */
  snapshot(): Record<string, EndpointCapability> {
    const out: Record<string, EndpointCapability> = {};
    for (const e of this.#tracked) out[e] = this.get(e);
    return out;
  }
}

function header(headers: Headers, name: string): string | null {
  const v = headers.get(name);
  return v === null ? null : v.slice(0, 100);
}

/** Logs one change: WARN when the endpoint is deprecated or gone, INFO when it answers again. */
function describeChange(
  endpoint: string,
  now: EndpointCapability,
  before: EndpointCapability,
): void {
  const fields = {
    endpoint,
    state: now.state,
    previous: before.state,
    status: now.status,
    deprecation: now.deprecation,
    sunset: now.sunset,
  };
  if (now.state === "gone") {
    log.warn(
      "{endpoint} is gone (HTTP {status}): kickmon stops relying on it and uses what still answers",
      fields,
    );
  } else if (now.state === "deprecated") {
    log.warn(
      "{endpoint} answers but is deprecated (Deprecation: {deprecation}, Sunset: {sunset})",
      fields,
    );
  } else if (before.state !== "unknown") {
    log.info("{endpoint} answers again (was {previous})", fields);
  }
}
