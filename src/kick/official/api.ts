/**
 * Client for Kick's official REST API (`https://api.kick.com/public/v1`,
 * kick-protocol.md §4.3–§4.9) plus the unofficial, Cloudflare-fronted
 * `kick.com/api/v2/channels/{slug}` (§2, §5) used only to learn a channel id.
 *
 * Raw wire schemas (`*Wire`, zod) are kept apart from the typed domain
 * results ({@linkcode ApiChannel}, {@linkcode ApiLivestream}, …). Every
 * failure becomes a {@linkcode KickApiError} with a `kind`; nothing a server
 * sends can crash the caller.
 *
 * @module
 */

import { z } from "zod";
import { getLogger } from "@logtape/logtape";
import { LogRateLimiter } from "../../log/logging.ts";
import { networkCause } from "../../log/errors.ts";
import {
  abortableSleep,
  backoffDelay,
  parseRetryAfter,
  readTextCapped,
  ResponseTooLargeError,
  type TokenSource,
  truncate,
} from "./oauth.ts";

const log = getLogger(["kickmon", "api"]);

/**
 * Largest answer read from the official or unofficial API, bytes (a full
 * batch of 50 channels is ~50 KB): a larger one is refused unread.
 */
export const MAX_API_BODY_BYTES = 4 * 1024 * 1024;

/** Most ids or slugs per `/channels` or `/livestreams` request (§4.4). */
export const MAX_IDS_PER_REQUEST = 50;

/** Kinds of {@linkcode KickApiError}. */
export type KickApiErrorKind =
  /** 401 even after refreshing the token once. */
  | "unauthorized"
  /** 429 after the bounded retries. */
  | "rate_limited"
  /** Cloudflare/WAF 403 (`Request blocked by security policy.`) or an HTML challenge page. */
  | "blocked"
  /** 403 that is not Cloudflare's. */
  | "forbidden"
  /** `event subscription limit reached` (§4.7). */
  | "subscription_limit"
  /** A subscription item came back with a non-empty `error` (§4.7). */
  | "subscription_rejected"
  /** Another 4xx. */
  | "bad_request"
  /** 404. */
  | "not_found"
  /** 5xx (after retries for idempotent requests). */
  | "server"
  /** No response within `timeoutMs`. */
  | "timeout"
  /** Connection failed. */
  | "network"
  /** Non-JSON body, or a body that fails the zod wire schema. */
  | "malformed"
  /** The client was closed. */
  | "closed";

/**
 * A failed API call.
 *
 * @example
 * ```ts
 * try {
 *   await api.getChannels({ slugs: ["xqc"] });
 * } catch (e) {
 *   if (e instanceof KickApiError && e.kind === "blocked") {
 *     console.warn(`blocked by Cloudflare; retry in ${e.retryAfterMs} ms`);
 *   }
 * }
 * ```
 */
export class KickApiError extends Error {
  /** What went wrong. */
  readonly kind: KickApiErrorKind;
  /** HTTP status, when a response arrived. */
  readonly status?: number;
  /** Endpoint label, e.g. `GET /channels` (same as in `onRequest`). */
  readonly endpoint: string;
  /** Suggested wait before trying again, in ms (rate limits, Cloudflare). */
  readonly retryAfterMs?: number;
  /** For `malformed`: the zod issue path, e.g. `data.0.stream.is_live`. */
  readonly issuePath?: string;

  /**
   * Creates an API error.
   *
   * @param kind What went wrong.
   * @param message Human-readable, secret-free description.
   * @param opts `endpoint`, HTTP `status`, `retryAfterMs` (ms), `issuePath`, and `cause`.
   */
  constructor(
    kind: KickApiErrorKind,
    message: string,
    opts: {
      endpoint: string;
      status?: number;
      retryAfterMs?: number;
      issuePath?: string;
      cause?: unknown;
    },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "KickApiError";
    this.kind = kind;
    this.endpoint = opts.endpoint;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
    this.issuePath = opts.issuePath;
  }
}

// ---------------------------------------------------------------------------
// Raw wire schemas (§4.3–§4.8). Unknown keys are ignored; fields kickmon does
// not need are optional so that a harmless change upstream is not "malformed".

/** Raw `data[]` element of `GET /channels` (§4.4, fixture `api-channels-1.json`). */
export const ChannelWire = z.object({
  broadcaster_user_id: z.number().int(),
  slug: z.string(),
  stream_title: z.string().nullish(),
  stream: z.object({
    is_live: z.boolean(),
    start_time: z.string().nullish(),
  }),
});

/** Raw `data[]` element of `GET /livestreams` (§4.5, fixture `api-livestreams-1.json`). */
export const LivestreamWire = z.object({
  broadcaster_user_id: z.number().int(),
  channel_id: z.number().int(),
  slug: z.string().nullish(),
  started_at: z.string().nullish(),
  stream_title: z.string().nullish(),
});

/** Raw `data[]` element of `GET /events/subscriptions` (§4.7). */
export const EventSubscriptionWire = z.object({
  id: z.string(),
  app_id: z.string().nullish(),
  broadcaster_user_id: z.number().int(),
  event: z.string(),
  version: z.number().int(),
  method: z.string().nullish(),
  created_at: z.string().nullish(),
  updated_at: z.string().nullish(),
});

/** Raw `data[]` element of `POST /events/subscriptions` (§4.7). */
export const CreatedSubscriptionWire = z.object({
  error: z.string().nullish(),
  name: z.string(),
  subscription_id: z.string().nullish(),
  version: z.number().int(),
});

/** Raw `data` of `GET /public-key` (§4.8, fixture `api-public-key-1.json`). */
export const PublicKeyWire = z.object({ public_key: z.string().includes("BEGIN PUBLIC KEY") });

/** Raw `kick.com/api/v2/channels/{slug}` (no full capture exists; §8 — only these keys are relied on). */
export const UnofficialChannelWire = z.object({
  id: z.number().int(),
  user_id: z.number().int(),
  slug: z.string(),
});

/**
 * Schema of the success envelope `{"data": …, "message": …}` (§4.3) around `data`.
 *
 * @example
 * ```ts
 * envelope(z.array(ChannelWire)).parse({ data: [], message: "OK" });
 * ```
 */
export function envelope<T extends z.ZodType>(
  data: T,
): z.ZodObject<{ data: T; message: z.ZodOptional<z.ZodNullable<z.ZodString>> }> {
  return z.object({ data, message: z.string().nullish() });
}

/**
 * A list answer whose elements are validated one by one (`KickApi` skips the
 * malformed ones instead of failing the batch). `data: null` counts as empty.
 * Exported for the live contract tests (`tests/contract/`).
 *
 * @example
 * ```ts
 * ROWS.parse({ data: [{ anything: 1 }], message: "OK" }); // elements unchecked
 * ```
 */
export const ROWS = z.object({
  data: z.array(z.unknown()).nullable(),
  message: z.string().nullish(),
});

// ---------------------------------------------------------------------------
// Domain results.

/** A channel from `GET /channels` (§4.4). There is no channel id here (§4.4, issue #396). */
export interface ApiChannel {
  /** `broadcaster_user_id` (the official API / webhook id, §2). */
  readonly broadcasterUserId: number;
  /** Channel slug, e.g. `bossmanjack`. */
  readonly slug: string;
  /** `stream.is_live`. */
  readonly isLive: boolean;
  /** `stream_title`, when non-empty (Kick sends it only while live, §4.4). */
  readonly streamTitle?: string;
  /** `stream.start_time` in ms since epoch; absent for Go's zero time `0001-01-01…` or unparseable values. */
  readonly startTime?: number;
}

/** A live stream from `GET /livestreams` (§4.5). Only live channels are listed. */
export interface ApiLivestream {
  /** `broadcaster_user_id`. */
  readonly broadcasterUserId: number;
  /** The Pusher channel id (§2). */
  readonly channelId: number;
  /** Channel slug. */
  readonly slug?: string;
  /** `started_at` in ms since epoch. */
  readonly startedAt?: number;
  /** `stream_title`. */
  readonly title?: string;
}

/** An event subscription from `GET /events/subscriptions` (§4.7). */
export interface ApiEventSubscription {
  /** Subscription id (ULID), used by `deleteEventSubscriptions`. */
  readonly id: string;
  /** Whose events. */
  readonly broadcasterUserId: number;
  /** e.g. `livestream.status.updated`. */
  readonly event: string;
  /** Event version, e.g. 1. */
  readonly version: number;
  /** e.g. `webhook`. */
  readonly method?: string;
  /** The Kick app that owns the subscription. */
  readonly appId?: string;
  /** ms since epoch. */
  readonly createdAt?: number;
  /** ms since epoch. */
  readonly updatedAt?: number;
}

/** The result of {@linkcode KickApi.createEventSubscription}. */
export interface ApiCreatedSubscription {
  /** `subscription_id` (ULID). */
  readonly subscriptionId: string;
  /** Event name, e.g. `livestream.status.updated`. */
  readonly name: string;
  /** Event version. */
  readonly version: number;
}

/** The useful part of `kick.com/api/v2/channels/{slug}`. */
export interface UnofficialChannel {
  /** The Pusher channel id (`id`, §2). */
  readonly channelId: number;
  /** The broadcaster user id (`user_id`). */
  readonly userId: number;
  /** Channel slug. */
  readonly slug: string;
}

/** Options of {@linkcode KickApi}. */
export interface KickApiOptions {
  /** e.g. `https://api.kick.com/public/v1`. */
  readonly baseUrl: string;
  /** Source of app access tokens (a `TokenProvider`). */
  readonly tokens: TokenSource;
  /**
   * Budget shared by every caller of this client, in requests per minute
   * (token bucket; default 100, §4.9). 429 retries count against it.
   */
  readonly maxRequestsPerMinute?: number;
  /** Bucket size: requests that may go out back to back (default: 10 s worth, at least 1). */
  readonly burst?: number;
  /** Timeout of one HTTP request incl. reading the body, in ms (default 10 000). */
  readonly timeoutMs?: number;
  /** e.g. `https://kick.com/api/v2` (default). */
  readonly unofficialBaseUrl?: string;
  /** `fetch` implementation (default `globalThis.fetch`). */
  readonly fetch?: typeof fetch;
  /**
   * Called once per HTTP request with a low-cardinality endpoint label
   * (`GET /channels`, `GET unofficial /channels/{slug}`, …), the status or
   * `"error"` (network/timeout), and the duration in ms.
   */
  readonly onRequest?: (endpoint: string, status: number | "error", durationMs: number) => void;
  /** Retries after 429 (and 5xx on idempotent requests) before giving up (default 3). */
  readonly maxRetries?: number;
  /** First backoff delay without `Retry-After`, in ms (default 1000); doubles per retry, with jitter. */
  readonly backoffBaseMs?: number;
  /** Largest backoff or honoured `Retry-After`, in ms (default 60 000). */
  readonly backoffMaxMs?: number;
  /** Back-off hint put on `blocked` errors, in ms (default 300 000). */
  readonly blockedBackoffMs?: number;
  /**
   * Called for each element of a list answer that fails validation and is
   * skipped (the rest of the answer is used): endpoint label, the issue's
   * path and message.
   */
  readonly onMalformedRow?: (endpoint: string, issue: string) => void;
}

interface RequestSpec<T> {
  readonly method: "GET" | "POST" | "DELETE";
  readonly url: URL;
  readonly endpoint: string;
  readonly auth: boolean;
  readonly budget: boolean;
  readonly json?: unknown;
  /** Zod schema of the whole body; undefined when 204 is expected. */
  readonly schema?: z.ZodType<T>;
}

/**
 * Kick official API client with a shared rate budget, token refresh on 401,
 * bounded 429 retries and typed errors.
 *
 * @example
 * ```ts
 * const api = new KickApi({
 *   baseUrl: "https://api.kick.com/public/v1",
 *   tokens: new TokenProvider({ oauthUrl: "https://id.kick.com", clientId, clientSecret }),
 *   maxRequestsPerMinute: 100,
 *   onRequest: (endpoint, status, ms) => metrics.observe(endpoint, status, ms),
 * });
 * const channels = await api.getChannels({ broadcasterUserIds: [2570626] });
 * console.log(channels[0].isLive);
 * ```
 */
export class KickApi {
  readonly #base: string;
  readonly #unofficialBase: string;
  readonly #tokens: TokenSource;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #onRequest?: KickApiOptions["onRequest"];
  readonly #onMalformedRow?: KickApiOptions["onMalformedRow"];
  readonly #rowLogLimit = new LogRateLimiter(3, 60_000);
  readonly #maxRetries: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #blockedBackoffMs: number;
  readonly #closed = new AbortController();
  // Token bucket as GCRA: #tat = theoretical arrival time (ms, performance.now()).
  readonly #intervalMs: number;
  readonly #toleranceMs: number;
  #tat = 0;
  /** performance.now() before which no budgeted request is sent (after a 429). */
  #pausedUntil = 0;

  /**
   * Creates a client; no request is made until a method is called.
   *
   * @param opts See {@linkcode KickApiOptions}.
   * @throws {TypeError} when a base URL is invalid or `maxRequestsPerMinute` ≤ 0.
   */
  constructor(opts: KickApiOptions) {
    this.#base = new URL(opts.baseUrl).href.replace(/\/+$/, "");
    this.#unofficialBase = new URL(opts.unofficialBaseUrl ?? "https://kick.com/api/v2").href
      .replace(/\/+$/, "");
    this.#tokens = opts.tokens;
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#onRequest = opts.onRequest;
    this.#onMalformedRow = opts.onMalformedRow;
    this.#maxRetries = Math.max(0, opts.maxRetries ?? 3);
    this.#backoffBaseMs = opts.backoffBaseMs ?? 1000;
    this.#backoffMaxMs = opts.backoffMaxMs ?? 60_000;
    this.#blockedBackoffMs = opts.blockedBackoffMs ?? 300_000;
    const rpm = opts.maxRequestsPerMinute ?? 100;
    if (!(rpm > 0)) throw new TypeError("maxRequestsPerMinute must be > 0");
    this.#intervalMs = 60_000 / rpm;
    const burst = Math.max(1, Math.floor(opts.burst ?? Math.ceil(rpm / 6)));
    this.#toleranceMs = (burst - 1) * this.#intervalMs;
  }

  /**
   * `GET /channels` with repeated `broadcaster_user_id` and/or `slug`
   * parameters, in batches of ≤50 of each (§4.4); results concatenated in
   * batch order. Unknown ids/slugs are simply absent. Empty input → `[]`
   * without a request.
   *
   * @throws {KickApiError} see {@linkcode KickApiErrorKind}.
   * @throws {OAuthError} when no token can be obtained (`InvalidCredentialsError` is fatal).
   * @example
   * ```ts
   * const live = (await api.getChannels({ broadcasterUserIds: ids })).filter((c) => c.isLive);
   * ```
   */
  async getChannels(
    q: { broadcasterUserIds?: readonly number[]; slugs?: readonly string[] },
  ): Promise<ApiChannel[]> {
    const out: ApiChannel[] = [];
    const batches: [string, string[]][] = [
      ...chunk((q.broadcasterUserIds ?? []).map(String), MAX_IDS_PER_REQUEST).map((b) =>
        ["broadcaster_user_id", b] as [string, string[]]
      ),
      ...chunk([...(q.slugs ?? [])], MAX_IDS_PER_REQUEST).map((b) =>
        ["slug", b] as [string, string[]]
      ),
    ];
    for (const [param, values] of batches) {
      const url = this.#url("/channels");
      for (const v of values) url.searchParams.append(param, v);
      const body = await this.#request({
        method: "GET",
        url,
        endpoint: "GET /channels",
        auth: true,
        budget: true,
        schema: ROWS,
      });
      for (const c of this.#rows(body.data, ChannelWire, "GET /channels")) {
        out.push({
          broadcasterUserId: c.broadcaster_user_id,
          slug: c.slug,
          isLive: c.stream.is_live,
          ...(c.stream_title ? { streamTitle: c.stream_title } : {}),
          ...optTime("startTime", c.stream.start_time),
        });
      }
    }
    return out;
  }

  /**
   * `GET /livestreams?broadcaster_user_id=…&limit=100` in batches of ≤50
   * ids (§4.5). Returns only the streamers that are live, with their channel
   * id. Empty input → `[]` without a request.
   *
   * @throws {KickApiError} see {@linkcode KickApiErrorKind}.
   * @throws {OAuthError} when no token can be obtained.
   * @example
   * ```ts
   * for (const l of await api.getLivestreams([2570626])) console.log(l.channelId);
   * ```
   */
  async getLivestreams(broadcasterUserIds: readonly number[]): Promise<ApiLivestream[]> {
    const out: ApiLivestream[] = [];
    for (const batch of chunk([...broadcasterUserIds], MAX_IDS_PER_REQUEST)) {
      const url = this.#url("/livestreams");
      for (const id of batch) url.searchParams.append("broadcaster_user_id", String(id));
      url.searchParams.set("limit", "100");
      const body = await this.#request({
        method: "GET",
        url,
        endpoint: "GET /livestreams",
        auth: true,
        budget: true,
        schema: ROWS,
      });
      for (const l of this.#rows(body.data, LivestreamWire, "GET /livestreams")) {
        out.push({
          broadcasterUserId: l.broadcaster_user_id,
          channelId: l.channel_id,
          ...(l.slug ? { slug: l.slug } : {}),
          ...optTime("startedAt", l.started_at),
          ...(l.stream_title ? { title: l.stream_title } : {}),
        });
      }
    }
    return out;
  }

  /**
   * `GET /events/subscriptions` (§4.7): this app's subscriptions.
   *
   * @throws {KickApiError} see {@linkcode KickApiErrorKind}.
   * @throws {OAuthError} when no token can be obtained.
   * @example
   * ```ts
   * const subs = await api.listEventSubscriptions();
   * const watched = new Set(subs.filter((s) => s.event === "livestream.status.updated").map((s) => s.broadcasterUserId));
   * ```
   */
  async listEventSubscriptions(): Promise<ApiEventSubscription[]> {
    const body = await this.#request({
      method: "GET",
      url: this.#url("/events/subscriptions"),
      endpoint: "GET /events/subscriptions",
      auth: true,
      budget: true,
      schema: envelope(z.array(EventSubscriptionWire)),
    });
    return body.data.map((s) => ({
      id: s.id,
      broadcasterUserId: s.broadcaster_user_id,
      event: s.event,
      version: s.version,
      ...(s.method ? { method: s.method } : {}),
      ...(s.app_id ? { appId: s.app_id } : {}),
      ...optTime("createdAt", s.created_at),
      ...optTime("updatedAt", s.updated_at),
    }));
  }

  /**
   * `POST /events/subscriptions` with
   * `{"broadcaster_user_id","events":[{"name","version"}],"method":"webhook"}` (§4.7).
   *
   * @param broadcasterUserId Whose events (any channel, with an app token).
   * @param event Event name (default `livestream.status.updated`).
   * @param version Event version (default 1).
   * @throws {KickApiError} kind `subscription_limit` when the app's cap is
   *   reached; `subscription_rejected` when the item carries an `error` (e.g.
   *   "webhooks are not enabled for app"); other kinds as usual.
   * @throws {OAuthError} when no token can be obtained.
   * @example
   * ```ts
   * const { subscriptionId } = await api.createEventSubscription(2570626);
   * ```
   */
  async createEventSubscription(
    broadcasterUserId: number,
    event = "livestream.status.updated",
    version = 1,
  ): Promise<ApiCreatedSubscription> {
    const endpoint = "POST /events/subscriptions";
    const body = await this.#request({
      method: "POST",
      url: this.#url("/events/subscriptions"),
      endpoint,
      auth: true,
      budget: true,
      json: {
        broadcaster_user_id: broadcasterUserId,
        events: [{ name: event, version }],
        method: "webhook",
      },
      schema: envelope(z.array(CreatedSubscriptionWire)),
    });
    const item = body.data.find((d) => d.name === event) ?? body.data[0];
    if (!item) {
      throw new KickApiError("malformed", `${endpoint}: response has no subscription item`, {
        endpoint,
        status: 200,
        issuePath: "data",
      });
    }
    if (item.error) {
      const limit = /limit/i.test(item.error);
      throw new KickApiError(
        limit ? "subscription_limit" : "subscription_rejected",
        `${endpoint}: Kick rejected ${event} v${version} for broadcaster ${broadcasterUserId}: ${
          truncate(item.error, 200)
        }`,
        { endpoint, status: 200 },
      );
    }
    if (!item.subscription_id) {
      throw new KickApiError("malformed", `${endpoint}: subscription item has no subscription_id`, {
        endpoint,
        status: 200,
        issuePath: "data.0.subscription_id",
      });
    }
    return { subscriptionId: item.subscription_id, name: item.name, version: item.version };
  }

  /**
   * `DELETE /events/subscriptions?id=…&id=…` (§4.7) in batches of ≤50 ids;
   * expects 204. Empty input → no request.
   *
   * @throws {KickApiError} see {@linkcode KickApiErrorKind}.
   * @throws {OAuthError} when no token can be obtained.
   * @example
   * ```ts
   * await api.deleteEventSubscriptions(stale.map((s) => s.id));
   * ```
   */
  async deleteEventSubscriptions(ids: readonly string[]): Promise<void> {
    for (const batch of chunk([...ids], MAX_IDS_PER_REQUEST)) {
      const url = this.#url("/events/subscriptions");
      for (const id of batch) url.searchParams.append("id", id);
      await this.#request<undefined>({
        method: "DELETE",
        url,
        endpoint: "DELETE /events/subscriptions",
        auth: true,
        budget: true,
      });
    }
  }

  /**
   * `GET /public-key` (§4.8): the PEM Kick signs webhooks with.
   *
   * @returns the SPKI PEM (`-----BEGIN PUBLIC KEY-----…`).
   * @throws {KickApiError} `malformed` when `data.public_key` is not a PEM; other kinds as usual.
   * @throws {OAuthError} when no token can be obtained.
   * @example
   * ```ts
   * const key = await importKickPublicKey(await api.getPublicKey());
   * ```
   */
  async getPublicKey(): Promise<string> {
    const body = await this.#request({
      method: "GET",
      url: this.#url("/public-key"),
      endpoint: "GET /public-key",
      auth: true,
      budget: true,
      schema: envelope(PublicKeyWire),
    });
    return body.data.public_key;
  }

  /**
   * `GET {unofficialBaseUrl}/channels/{slug}` without auth (§2): the only
   * place that gives a channel id for an offline streamer. It sits behind
   * Cloudflare and is unsupported by Kick (§5), so expect `blocked`.
   * Not counted against the official API budget.
   *
   * @throws {KickApiError} `blocked` (403 JSON or an HTML "Just a moment..."
   *   page; `retryAfterMs` is a back-off hint), `not_found` for an unknown
   *   slug, `malformed`, `timeout`, `network`, …
   * @example
   * ```ts
   * const { channelId } = await api.getUnofficialChannel("bossmanjack");
   * ```
   */
  async getUnofficialChannel(slug: string): Promise<UnofficialChannel> {
    const body = await this.#request({
      method: "GET",
      url: new URL(`${this.#unofficialBase}/channels/${encodeURIComponent(slug)}`),
      endpoint: "GET unofficial /channels/{slug}",
      auth: false,
      budget: false,
      schema: UnofficialChannelWire,
    });
    return { channelId: body.id, userId: body.user_id, slug: body.slug };
  }

  /**
   * Aborts in-flight requests and rate-limit waits; later calls reject with
   * kind `closed`.
   *
   * @example
   * ```ts
   * api.close();
   * ```
   */
  close(): void {
    this.#closed.abort();
  }

  #url(path: string): URL {
    return new URL(this.#base + path);
  }

  /** Waits for a slot in the shared budget (GCRA token bucket) and any 429 pause. */
  async #takeBudget(endpoint: string): Promise<void> {
    for (;;) {
      const now = performance.now();
      if (this.#pausedUntil > now) {
        await this.#sleep(this.#pausedUntil - now, endpoint);
        continue;
      }
      const tat = Math.max(this.#tat, now);
      const wait = tat - this.#toleranceMs - now;
      this.#tat = tat + this.#intervalMs;
      if (wait > 0) await this.#sleep(wait, endpoint);
      // A 429 that arrived while this caller waited for its slot pauses it too.
      const paused = this.#pausedUntil - performance.now();
      if (paused > 0) await this.#sleep(paused, endpoint);
      return;
    }
  }

  async #sleep(ms: number, endpoint: string): Promise<void> {
    const signal = this.#closed.signal;
    await abortableSleep(ms, signal);
    if (signal.aborted) {
      throw new KickApiError("closed", `${endpoint}: client closed`, { endpoint });
    }
  }

  async #request<T>(spec: RequestSpec<T>): Promise<T> {
    const { endpoint } = spec;
    let refreshedAfter401 = false;
    let retries = 0;
    for (;;) {
      if (this.#closed.signal.aborted) {
        throw new KickApiError("closed", `${endpoint}: client closed`, { endpoint });
      }
      if (spec.budget) await this.#takeBudget(endpoint);
      const token = spec.auth ? await this.#tokens.getToken() : undefined;
      const headers: Record<string, string> = { accept: "application/json" };
      if (token) headers.authorization = `Bearer ${token}`;
      if (spec.json !== undefined) headers["content-type"] = "application/json";

      const started = performance.now();
      let res: Response;
      let text: string;
      try {
        res = await this.#fetch(spec.url, {
          method: spec.method,
          headers,
          body: spec.json === undefined ? undefined : JSON.stringify(spec.json),
          signal: AbortSignal.any([AbortSignal.timeout(this.#timeoutMs), this.#closed.signal]),
        });
        text = await readTextCapped(res, MAX_API_BODY_BYTES);
      } catch (e) {
        this.#report(endpoint, "error", started);
        if (this.#closed.signal.aborted) {
          throw new KickApiError("closed", `${endpoint}: client closed`, { endpoint, cause: e });
        }
        if (e instanceof ResponseTooLargeError) {
          throw new KickApiError(
            "malformed",
            `${endpoint}: answer over ${MAX_API_BODY_BYTES} bytes, not read`,
            { endpoint, cause: e },
          );
        }
        // Name the host and the cause: Deno's fetch says only "fetch failed".
        const host = spec.url.host;
        if (e instanceof DOMException && e.name === "TimeoutError") {
          throw new KickApiError(
            "timeout",
            `${endpoint} at ${host}: no response within ${this.#timeoutMs} ms`,
            { endpoint, cause: e },
          );
        }
        throw new KickApiError(
          "network",
          `${endpoint} at ${host}: request failed: ${networkCause(e)}`,
          { endpoint, cause: e },
        );
      }
      this.#report(endpoint, res.status, started);
      const status = res.status;

      if (status >= 200 && status < 300) {
        if (!spec.schema) return undefined as T;
        if (looksLikeHtml(text, res)) throw this.#blocked(endpoint, status, text, res);
        return this.#parse(spec.schema, text, endpoint, status);
      }

      if (status === 401 && spec.auth && token !== undefined && !refreshedAfter401) {
        refreshedAfter401 = true;
        this.#tokens.invalidate(token);
        log.info("{endpoint}: 401, refreshing the token and retrying once", { endpoint });
        continue;
      }

      const idempotent = spec.method !== "POST";
      if (
        (status === 429 || (status >= 500 && idempotent && !looksLikeHtml(text, res))) &&
        retries < this.#maxRetries
      ) {
        const ra = parseRetryAfter(res.headers.get("retry-after"), Date.now());
        const delay = Math.min(
          this.#backoffMaxMs,
          ra ?? backoffDelay(retries, this.#backoffBaseMs, this.#backoffMaxMs),
        );
        retries++;
        // A 429 pauses the whole shared budget, not just this caller.
        const pauseAll = status === 429 && spec.budget;
        if (pauseAll) this.#pausedUntil = Math.max(this.#pausedUntil, performance.now() + delay);
        log.warn("{endpoint}: HTTP {status}, retry {retry}/{max} in {delayMs} ms", {
          endpoint,
          status,
          retry: retries,
          max: this.#maxRetries,
          delayMs: delay,
        });
        if (!pauseAll) await this.#sleep(delay, endpoint);
        continue;
      }
      throw this.#failure(endpoint, status, text, res, retries, refreshedAfter401);
    }
  }

  #report(endpoint: string, status: number | "error", started: number): void {
    if (!this.#onRequest) return;
    try {
      this.#onRequest(endpoint, status, performance.now() - started);
    } catch (e) {
      log.warn("onRequest hook threw: {error}", { error: String(e) });
    }
  }

  /**
   * The elements of a list answer that pass `schema`; each one that does not
   * is skipped, reported to `onMalformedRow` and logged at a bounded rate, so
   * one bad row never costs the rest of its batch. `data: null` is an empty list.
   */
  #rows<T>(data: readonly unknown[] | null, schema: z.ZodType<T>, endpoint: string): T[] {
    const out: T[] = [];
    for (const [i, row] of (data ?? []).entries()) {
      const r = schema.safeParse(row);
      if (r.success) {
        out.push(r.data);
        continue;
      }
      const issue = r.error.issues[0];
      const text = `data[${i}].${issue?.path.map(String).join(".") ?? ""}: ${
        issue?.message ?? "invalid"
      }`;
      try {
        this.#onMalformedRow?.(endpoint, text);
      } catch { /* a counter hook */ }
      if (this.#rowLogLimit.allow(endpoint)) {
        log.warn("{endpoint}: skipped a malformed element ({issue}); the rest is used", {
          endpoint,
          issue: truncate(text, 200),
        });
      }
    }
    return out;
  }

  #parse<T>(schema: z.ZodType<T>, text: string, endpoint: string, status: number): T {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new KickApiError(
        "malformed",
        `${endpoint}: HTTP ${status} with a non-JSON body (${text.length} bytes: ${
          JSON.stringify(truncate(text, 80))
        })`,
        { endpoint, status, cause: e },
      );
    }
    const r = schema.safeParse(json);
    if (!r.success) {
      const issue = r.error.issues[0];
      const path = issue?.path.map(String).join(".") || "(root)";
      throw new KickApiError(
        "malformed",
        `${endpoint}: response failed validation at ${path}: ${issue?.message ?? "invalid"}`,
        { endpoint, status, issuePath: path, cause: r.error },
      );
    }
    return r.data;
  }

  #blocked(endpoint: string, status: number, text: string, res: Response): KickApiError {
    const ref = /"reference"\s*:\s*"([^"]*)"/.exec(text)?.[1];
    const ray = res.headers.get("cf-ray");
    const what = looksLikeHtml(text, res)
      ? (/Just a moment/i.test(text)
        ? 'a Cloudflare "Just a moment..." challenge page'
        : "an HTML page")
      : '"Request blocked by security policy."';
    return new KickApiError(
      "blocked",
      `${endpoint}: blocked by Cloudflare (HTTP ${status}, ${what}${
        ref ? `, reference ${ref}` : ""
      }${ray ? `, cf-ray ${ray}` : ""}); back off for ~${
        Math.round(this.#blockedBackoffMs / 1000)
      } s before retrying`,
      { endpoint, status, retryAfterMs: this.#blockedBackoffMs },
    );
  }

  #failure(
    endpoint: string,
    status: number,
    text: string,
    res: Response,
    retries: number,
    refreshed: boolean,
  ): KickApiError {
    if (
      looksLikeHtml(text, res) ||
      (status === 403 &&
        (/Request blocked by security policy/i.test(text) || res.headers.has("cf-ray")))
    ) {
      return this.#blocked(endpoint, status, text, res);
    }
    const detail = errorDetail(text);
    const msg = `${endpoint}: HTTP ${status}${detail ? ` (${detail})` : ""}`;
    if (/event subscription limit reached/i.test(text)) {
      return new KickApiError(
        "subscription_limit",
        `${endpoint}: event subscription limit reached (HTTP ${status})`,
        {
          endpoint,
          status,
        },
      );
    }
    if (status === 401) {
      return new KickApiError(
        "unauthorized",
        `${msg}${refreshed ? " even after refreshing the token" : ""}`,
        {
          endpoint,
          status,
        },
      );
    }
    if (status === 429) {
      const ra = parseRetryAfter(res.headers.get("retry-after"), Date.now());
      return new KickApiError("rate_limited", `${msg} after ${retries} retries`, {
        endpoint,
        status,
        retryAfterMs: ra ?? backoffDelay(retries, this.#backoffBaseMs, this.#backoffMaxMs),
      });
    }
    if (status === 403) return new KickApiError("forbidden", msg, { endpoint, status });
    if (status === 404) return new KickApiError("not_found", msg, { endpoint, status });
    if (status >= 500) return new KickApiError("server", msg, { endpoint, status });
    return new KickApiError("bad_request", msg, { endpoint, status });
  }
}

function chunk<T>(xs: T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

/** `{[key]: ms}` for a sane RFC 3339 time, `{}` for null, garbage or Go's zero time. */
function optTime<K extends string>(key: K, v: string | null | undefined): { [P in K]?: number } {
  if (!v) return {};
  const ms = Date.parse(v);
  if (Number.isNaN(ms) || ms < Date.UTC(2000, 0, 1)) return {};
  return { [key]: ms } as { [P in K]?: number };
}

function looksLikeHtml(text: string, res: Response): boolean {
  const ct = res.headers.get("content-type") ?? "";
  return /text\/html/i.test(ct) || /^\s*<(!doctype|html)/i.test(text);
}

/** A short, safe description of an error body: `message`/`error`/`data` string, else its size. */
function errorDetail(text: string): string {
  if (text.trim() === "") return "empty body";
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    const parts = ["message", "error", "data"].map((k) => j?.[k]).filter((v) =>
      typeof v === "string"
    );
    if (parts.length) return truncate(parts.join(": "), 200);
  } catch { /* not JSON */ }
  return `${text.length}-byte body`;
}
