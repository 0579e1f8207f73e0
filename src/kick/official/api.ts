/**
 * Client for Kick's official REST API (`https://api.kick.com/public/v1`,
 * docs/kick-protocol.md §4.3–§4.9): the endpoints and their typed domain results
 * ({@linkcode ApiChannel}, {@linkcode ApiLivestream}, …), plus the unofficial,
 * Cloudflare-fronted `kick.com/api/v2/channels/{slug}` (§2, §5) used only to
 * learn a channel id (`kick/unofficial/channel_lookup.ts`).
 *
 * Below the endpoints: the raw wire schemas (`wire.ts`), the request loop
 * with the shared budget, token refresh and retries (`request.ts`), the
 * error kinds (`api_error.ts`) and the endpoint capability record
 * (`capabilities.ts`, {@linkcode KickApi.capabilities}: which endpoints
 * answer, are deprecated or gone, detected from every answer). Every failure becomes a
 * {@linkcode KickApiError} with a `kind`; nothing a server sends can crash
 * the caller.
 *
 * One concept over ~500 lines: the client of every endpoint kickmon calls,
 * each method the request and the wire-to-domain mapping of one endpoint;
 * everything below the endpoints already lives in the modules named above.
 *
 * @module
 */

import { z } from "zod";
import { getLogger } from "@logtape/logtape";
import { LogRateLimiter } from "../../log/logging.ts";
import { truncate } from "../http/text.ts";
import { type UnofficialChannel, UnofficialChannelLookup } from "../unofficial/channel_lookup.ts";
import { KickApiError } from "./api_error.ts";
import { EndpointCapabilities, type EndpointCapabilitiesOptions } from "./capabilities.ts";
import { ApiRequester, type ApiRequesterOptions } from "./request.ts";
import {
  ChannelWire,
  CreatedSubscriptionWire,
  envelope,
  EventSubscriptionWire,
  ListEnvelopeWire,
  LivestreamWire,
  PublicKeyWire,
  UserLivestreamWire,
} from "./wire.ts";

const log = getLogger(["kickmon", "api"]);

/** Most ids or slugs per `/channels` or `/livestreams` request (§4.4). */
export const MAX_IDS_PER_REQUEST = 50;

/** Most `user_id`s per `/users/livestreams` request (§4.5, §10.5). */
export const MAX_USER_IDS_PER_REQUEST = 100;

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

/**
 * A live stream from the undocumented `GET /users/livestreams` (§10.5). Only
 * live streamers are listed; there is no channel id.
 */
export interface ApiUserLivestream {
  /** `broadcaster_user.id`. */
  readonly broadcasterUserId: number;
  /** `broadcaster_user.username` or `channel.slug`. */
  readonly slug?: string;
  /** `id`: the livestream's UUID (not Pusher's numeric livestream id). */
  readonly livestreamId?: string;
  /** `started_at` in ms since epoch. */
  readonly startedAt?: number;
  /** `title`. */
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

/**
 * Options of {@linkcode KickApi}: those of the request loop
 * ({@linkcode ApiRequesterOptions}: token source, budget, timeout, `fetch`,
 * `onRequest`, retries and backoff) and these.
 */
export interface KickApiOptions extends ApiRequesterOptions {
  /** e.g. `https://api.kick.com/public/v1`. */
  readonly baseUrl: string;
  /** e.g. `https://kick.com/api/v2` (default). */
  readonly unofficialBaseUrl?: string;
  /**
   * Called for each element of a list answer that fails validation and is
   * skipped (the rest of the answer is used): endpoint label, the issue's
   * path and message.
   */
  readonly onMalformedRow?: (endpoint: string, issue: string) => void;
  /** Called when an endpoint's capability changes (see `capabilities.ts`). */
  readonly onCapabilityChange?: EndpointCapabilitiesOptions["onChange"];
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
  readonly #requester: ApiRequester;
  readonly #unofficial: UnofficialChannelLookup;
  readonly #onMalformedRow?: KickApiOptions["onMalformedRow"];
  readonly #rowLogLimit = new LogRateLimiter(3, 60_000);
  /** What each tracked endpoint is known to do, from its answers (`capabilities.ts`). */
  readonly capabilities: EndpointCapabilities;

  /**
   * Creates a client; no request is made until a method is called.
   *
   * @param opts See {@linkcode KickApiOptions}.
   * @throws {TypeError} when a base URL is invalid or `maxRequestsPerMinute` ≤ 0.
   */
  constructor(opts: KickApiOptions) {
    this.#base = new URL(opts.baseUrl).href.replace(/\/+$/, "");
    const capabilities = new EndpointCapabilities({ onChange: opts.onCapabilityChange });
    this.capabilities = capabilities;
    this.#requester = new ApiRequester({
      ...opts,
      onAnswer: (endpoint, status, headers) => {
        capabilities.record(endpoint, status, headers);
        opts.onAnswer?.(endpoint, status, headers);
      },
    });
    this.#unofficial = new UnofficialChannelLookup(this.#requester, opts.unofficialBaseUrl);
    this.#onMalformedRow = opts.onMalformedRow;
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
      const body = await this.#requester.request({
        method: "GET",
        url,
        endpoint: "GET /channels",
        auth: true,
        budget: true,
        schema: ListEnvelopeWire,
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
      const body = await this.#requester.request({
        method: "GET",
        url,
        endpoint: "GET /livestreams",
        auth: true,
        budget: true,
        schema: ListEnvelopeWire,
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
   * The undocumented `GET /users/livestreams?user_id=…` (§10.5) in batches of
   * ≤100 ids ({@linkcode MAX_USER_IDS_PER_REQUEST}). Returns only the
   * streamers that are live, without channel ids. Empty input → `[]`
   * without a request. A 404/410 marks the endpoint `gone` in
   * {@linkcode KickApi.capabilities}. Unlike the other list answers, one
   * malformed row fails the whole answer (`malformed`): only live streamers
   * are listed, so a skipped row would read as "offline".
   *
   * @throws {KickApiError} see {@linkcode KickApiErrorKind} (`not_found` when the endpoint is gone,
   *   `malformed` for any row that does not match its schema).
   * @throws {OAuthError} when no token can be obtained.
   * @example
   * ```ts
   * const live = new Set((await api.getUsersLivestreams(ids)).map((l) => l.broadcasterUserId));
   * ```
   */
  async getUsersLivestreams(userIds: readonly number[]): Promise<ApiUserLivestream[]> {
    const out: ApiUserLivestream[] = [];
    const endpoint = "GET /users/livestreams";
    for (const batch of chunk([...new Set(userIds)], MAX_USER_IDS_PER_REQUEST)) {
      const url = this.#url("/users/livestreams");
      for (const id of batch) url.searchParams.append("user_id", String(id));
      // Strict, unlike the other lists: this answer names only the live streamers, so a
      // skipped row would silently read as "offline". One bad row fails the batch.
      const body = await this.#requester.request({
        method: "GET",
        url,
        endpoint,
        auth: true,
        budget: true,
        schema: envelope(z.array(UserLivestreamWire).nullable()),
      });
      for (const l of body.data ?? []) {
        const slug = l.broadcaster_user.username ?? l.channel?.slug;
        out.push({
          broadcasterUserId: l.broadcaster_user.id,
          ...(slug ? { slug } : {}),
          ...(l.id != null ? { livestreamId: String(l.id) } : {}),
          ...optTime("startedAt", l.started_at),
          ...(l.title ? { title: l.title } : {}),
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
    const body = await this.#requester.request({
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
    const body = await this.#requester.request({
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
      await this.#requester.request<undefined>({
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
    const body = await this.#requester.request({
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
   * `GET {unofficialBaseUrl}/channels/{slug}` without auth (§2), through
   * `UnofficialChannelLookup` (`kick/unofficial/channel_lookup.ts`): the only
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
  getUnofficialChannel(slug: string): Promise<UnofficialChannel> {
    return this.#unofficial.getChannel(slug);
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
    this.#requester.close();
  }

  #url(path: string): URL {
    return new URL(this.#base + path);
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
