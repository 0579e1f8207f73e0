/**
 * A faithful local stand-in for Kick's official API (docs/kick-protocol.md §4):
 * `id.kick.com` (`POST /oauth/token`), `api.kick.com/public/v1`
 * (`/channels`, `/livestreams`, `/events/subscriptions`, `/public-key`) and
 * the unofficial, Cloudflare-fronted `kick.com/api/v2/channels/{slug}` (§2,
 * §5), all answered from one {@linkcode World} on one `Deno.serve` port.
 *
 * Envelopes and error bodies are those captured in `tests/fixtures/`
 * (`api-*.json`). Fault injection (`failNext`, `setDelay`, `holdNext`,
 * `expireAllTokens`, blocking the unofficial endpoint) lets tests reproduce
 * 401/429/403/timeouts/malformed bodies and response races.
 *
 * Responses are computed when a request *arrives* and then delayed/held, so
 * a held reconciliation response reports the world as it was when it was
 * requested — exactly the race kickmon has to survive.
 *
 * @module
 */

import type { SimStreamer, World } from "./world.ts";
import { abortableSleep } from "../../src/util/abortable_sleep.ts";
import { ulid, WebhookSender } from "./webhook_sender.ts";

/** A canned response for {@linkcode ApiServer.failNext}. */
export interface FaultResponse {
  /** HTTP status. */
  readonly status: number;
  /** Body sent verbatim (JSON text, HTML, or anything malformed). */
  readonly body: string;
  /** Extra headers, e.g. `{"retry-after": "1"}`; `content-type` defaults to JSON. */
  readonly headers?: Record<string, string>;
}

/** What {@linkcode ApiServerOptions.onRequest} receives. */
export interface ApiRequestInfo {
  /** HTTP method, e.g. `GET`. */
  readonly method: string;
  /** URL path, e.g. `/public/v1/channels`. */
  readonly path: string;
  /** Full request URL incl. query. */
  readonly url: URL;
  /** Status of the response about to be sent. */
  readonly status: number;
}

/** Options of {@linkcode startApiServer}. */
export interface ApiServerOptions {
  /** The simulated truth every endpoint answers from. */
  readonly world: World;
  /** The only accepted `client_id`. */
  readonly clientId: string;
  /** The only accepted `client_secret`. */
  readonly clientSecret: string;
  /** `expires_in` of issued tokens, in seconds (default 7200). */
  readonly tokenLifetimeSec?: number;
  /** Send `expires_in` as a numeric string, as the docs example does (default false: number). */
  readonly expiresInAsString?: boolean;
  /** Listen address (default `127.0.0.1`). */
  readonly hostname?: string;
  /** Listen port (default 0: any free port). */
  readonly port?: number;
  /**
   * PEM served by `GET /public/v1/public-key` (e.g. a
   * `WebhookSender.publicKeyPem`); default: a key generated on first request.
   */
  readonly webhookPublicKeyPem?: string;
  /** Maximum event subscriptions per app (default 1000, §4.7). */
  readonly subscriptionLimit?: number;
  /**
   * v1 `GET /public/v1/livestreams` answers 404 `{"message":"Not Found"}`, as
   * it will once Kick removes it (§4.5; default false). `/users/livestreams`
   * keeps answering.
   */
  readonly v1LivestreamsGone?: boolean;
  /**
   * v1 `/livestreams` answers with `Deprecation: @1782172800` (RFC 9745, the
   * changelog's 2026-06-23) and `Sunset` (RFC 8594) headers (default false).
   */
  readonly v1LivestreamsDeprecated?: boolean;
  /** Start with the unofficial endpoint blocked (default false). */
  readonly unofficialBlocked?: false | "json" | "html";
  /**
   * Called for every request after its response is computed and before it
   * is sent; the response waits for a returned promise (lets a test hold it).
   */
  readonly onRequest?: (info: ApiRequestInfo) => void | Promise<void>;
  /**
   * Answers a request before the world does (after `failNext` faults): the replay of a capture
   * (`replay.ts`). `undefined` lets the world answer.
   */
  readonly answer?: (method: string, url: URL) => FaultResponse | undefined;
}

/** One stored event subscription (shape of `GET /events/subscriptions` items, §4.7). */
export interface SimSubscription {
  /** Subscription id (ULID). */
  readonly id: string;
  /** The simulated app's id (ULID, fixed per server). */
  readonly app_id: string;
  /** Whose events. */
  readonly broadcaster_user_id: number;
  /** Event name, e.g. `livestream.status.updated`. */
  readonly event: string;
  /** Event version. */
  readonly version: number;
  /** Always `webhook`. */
  readonly method: string;
  /** RFC 3339. */
  readonly created_at: string;
  /** RFC 3339. */
  readonly updated_at: string;
}

/** A response held by {@linkcode ApiServer.holdNext}. */
export interface HeldResponse {
  /** Resolves when a matching request has arrived and its response is being held. */
  readonly reached: Promise<void>;
  /** Sends the held response (safe to call before `reached` or twice). */
  release(): void;
}

/** A running simulator; see {@linkcode startApiServer}. */
export interface ApiServer {
  /** Origin of the simulated `id.kick.com` (`{oauthUrl}/oauth/token`). */
  readonly oauthUrl: string;
  /** Simulated `https://api.kick.com/public/v1`. */
  readonly apiUrl: string;
  /** Simulated `https://kick.com/api/v2`. */
  readonly unofficialUrl: string;
  /** `http://127.0.0.1:{port}`. */
  readonly origin: string;
  /**
   * Answers the next `times` requests matching `path` with `response`.
   * `path` is a URL path (`/public/v1/channels`) optionally prefixed by a
   * method (`POST /public/v1/events/subscriptions`); a path ending in `/`
   * matches by prefix (`/api/v2/channels/`).
   */
  failNext(path: string, response: FaultResponse, times?: number): void;
  /** Delays every response matching `path` by `ms` (0 removes the delay). */
  setDelay(path: string, ms: number): void;
  /** Holds the next response matching `path` until released. */
  holdNext(path: string): HeldResponse;
  /** Makes every issued token expired (the API then answers 401). */
  expireAllTokens(): void;
  /** Requests received so far for `path` (or `METHOD path`). */
  requests(path: string): number;
  /**
   * Accepts another app's credentials (besides `clientId`), so that each of
   * several kickmon instances can be told apart by its OAuth client (issue 14).
   */
  addClient(clientId: string, clientSecret: string): void;
  /**
   * Requests under `/public/v1/` made with a valid token of `clientId`, for
   * `path` (or `METHOD path`), or all of them when `path` is omitted. Public
   * key fetches (`/public/v1/public-key`, no token needed) count only when
   * they carried one.
   */
  requestsBy(clientId: string, path?: string): number;
  /** Blocks the unofficial endpoint with Cloudflare's 403 (`json` body or `html` challenge), or unblocks it. */
  setUnofficialBlocked(mode: false | "json" | "html"): void;
  /** Makes v1 `/livestreams` answer 404 (true) or answer again (false). */
  setV1LivestreamsGone(gone: boolean): void;
  /** Adds (true) or removes (false) `Deprecation`/`Sunset` headers on v1 `/livestreams` answers. */
  setV1LivestreamsDeprecated(deprecated: boolean): void;
  /** Changes the event subscription limit. */
  setSubscriptionLimit(n: number): void;
  /** Changes the PEM served by `/public-key` (simulates key rotation). */
  setWebhookPublicKeyPem(pem: string): void;
  /** Current event subscriptions. */
  subscriptions(): readonly SimSubscription[];
  /** Releases held responses, aborts delays and stops the server. */
  close(): Promise<void>;
}

/** Cloudflare's 403 body, verbatim from `api-error-cloudflare-403-1.json` (§4.3). */
export const CLOUDFLARE_403_BODY =
  '{"error":"Request blocked by security policy.","reference":"9e4db7e3"}';

/** A Cloudflare "Just a moment..." challenge page (abridged; §5, kient #22). */
export const CLOUDFLARE_CHALLENGE_HTML =
  '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head><body><noscript>Enable JavaScript and cookies to continue</noscript></body></html>';

/** `POST /events/subscriptions` over the limit, verbatim from `api-error-subscription-limit-1.json` (§4.7). */
export const SUBSCRIPTION_LIMIT_BODY =
  '{"data":"event subscription limit reached","message":"Bad request"}';

/**
 * Headers of a v1 `/livestreams` answer in the deprecated mode: RFC 9745's
 * `Deprecation` (the changelog's date, 2026-06-23) and RFC 8594's `Sunset`
 * (made up: Kick published no removal date, §4.5).
 */
export const V1_DEPRECATION_HEADERS: Readonly<Record<string, string>> = {
  deprecation: "@1782172800",
  sunset: "Thu, 31 Dec 2026 23:59:59 GMT",
};

const ZERO_TIME = "0001-01-01T00:00:00Z";
const JSON_HEADERS = { "content-type": "application/json" };

interface Computed {
  status: number;
  body: string | null;
  headers: Record<string, string>;
}

/**
 * Starts the simulator on `Deno.serve` (127.0.0.1, a free port by default).
 *
 * Endpoints (all under one origin):
 * - `POST /oauth/token` — form `grant_type=client_credentials&client_id&client_secret`;
 *   200 `{"access_token","token_type":"Bearer","expires_in"}`; wrong client →
 *   401 `{"error":"invalid_client","error_description":…}`; bad form → 400
 *   `{"error":"Invalid request"}` (§4.1).
 * - `GET /public/v1/channels?broadcaster_user_id=…&slug=…` (≤50 each) — bearer
 *   required, else 401 `{"message":"unauthorized"}`; `data[]` shaped as
 *   `api-channels-1.json`; offline channels have `stream.is_live:false`,
 *   `start_time:"0001-01-01T00:00:00Z"` and an empty title (§4.4).
 * - `GET /public/v1/livestreams?broadcaster_user_id=…&limit=…` — only live
 *   streamers, shaped as `api-livestreams-1.json` incl. `channel_id` (§4.5);
 *   404 with `v1LivestreamsGone`, {@linkcode V1_DEPRECATION_HEADERS} with
 *   `v1LivestreamsDeprecated`.
 * - `GET /public/v1/users/livestreams?user_id=…` (1–100) — live streamers only,
 *   v2-shaped rows without a channel id (undocumented, §4.5).
 * - `GET|POST|DELETE /public/v1/events/subscriptions` — stateful; over the
 *   limit → 400 with {@linkcode SUBSCRIPTION_LIMIT_BODY}; DELETE → 204 (§4.7).
 * - `GET /public/v1/public-key` — `{"data":{"public_key":PEM},"message":"OK"}` (§4.8).
 * - `GET /api/v2/channels/{slug}` — `{id, user_id, slug, …}` without auth, or
 *   Cloudflare's 403 when blocked (§2, §5).
 *
 * @throws {Deno.errors.AddrInUse} when `port` is taken.
 * @example
 * ```ts
 * const world = new World();
 * world.add({ userId: 2570626, slug: "bossmanjack", channelId: 2515504, live: true });
 * const sim = startApiServer({ world, clientId: "cid", clientSecret: "secret" });
 * const tokens = new TokenProvider({ oauthUrl: sim.oauthUrl, clientId: "cid", clientSecret: "secret" });
 * const api = new KickApi({ baseUrl: sim.apiUrl, tokens, unofficialBaseUrl: sim.unofficialUrl });
 * console.log(await api.getChannels({ slugs: ["bossmanjack"] }));
 * await sim.close();
 * ```
 */
export function startApiServer(opts: ApiServerOptions): ApiServer {
  const world = opts.world;
  const lifetimeSec = opts.tokenLifetimeSec ?? 7200;
  const tokens = new Map<string, number>(); // token -> expiresAt (ms)
  const tokenClient = new Map<string, string>(); // token -> client_id it was issued to
  const clients = new Map<string, string>([[opts.clientId, opts.clientSecret]]);
  const counts = new Map<string, number>();
  const byClient = new Map<string, Map<string, number>>(); // client_id -> key -> count
  const faults: { key: string; response: FaultResponse; remaining: number }[] = [];
  const delays = new Map<string, number>();
  const holds: { key: string; gate: Promise<void>; arrived: () => void }[] = [];
  const releasers = new Set<() => void>();
  const shutdown = new AbortController();
  const subs: SimSubscription[] = [];
  const appId = ulid();
  let subscriptionLimit = opts.subscriptionLimit ?? 1000;
  let unofficialBlocked: false | "json" | "html" = opts.unofficialBlocked ?? false;
  let v1Gone = opts.v1LivestreamsGone ?? false;
  let v1Deprecated = opts.v1LivestreamsDeprecated ?? false;
  let publicKeyPem: string | Promise<string> | undefined = opts.webhookPublicKeyPem;

  const matches = (key: string, method: string, path: string): boolean => {
    const m = /^([A-Z]+) (.*)$/.exec(key);
    const [kMethod, kPath] = m ? [m[1], m[2]] : [undefined, key];
    if (kMethod && kMethod !== method) return false;
    return kPath.endsWith("/") ? path.startsWith(kPath) : path === kPath;
  };

  const json = (
    status: number,
    value: unknown,
    headers: Record<string, string> = {},
  ): Computed => ({
    status,
    body: JSON.stringify(value),
    headers: { ...JSON_HEADERS, ...headers },
  });

  const authorized = (req: Request): boolean => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "");
    if (!m) return false;
    const exp = tokens.get(m[1]);
    return exp !== undefined && Date.now() < exp;
  };
  const unauthorized = (): Computed => json(401, { message: "unauthorized" });
  const badRequest = (detail: string): Computed =>
    // Not captured from Kick; modelled on the captured 400 envelope (§4.3).
    json(400, { data: detail, message: "Bad request" });

  const parseIds = (url: URL, name: string): number[] | string => {
    const out: number[] = [];
    for (const v of url.searchParams.getAll(name)) {
      if (!/^\d+$/.test(v)) return `invalid ${name}: ${v}`;
      out.push(Number(v));
    }
    return out;
  };

  const channelElement = (s: SimStreamer) => {
    // Key order and shape as tests/fixtures/api-channels-1.json.
    const live = s.live;
    return {
      active_subscribers_count: 0,
      banner_picture: "",
      broadcaster_user_id: s.userId,
      canceled_subscribers_count: 0,
      category: live
        ? {
          id: 15,
          name: "Just Chatting",
          thumbnail: "https://files.kick.com/images/subcategories/15/banner/sim.webp",
        }
        : { id: 0, name: "", thumbnail: "" },
      channel_description: `${s.slug} (simulated)`,
      slug: s.slug,
      stream: {
        custom_tags: [],
        is_live: live,
        is_mature: false,
        key: "",
        language: "en",
        start_time: live && s.startedAt ? s.startedAt : ZERO_TIME,
        url: "",
        viewer_count: live ? 100 : 0,
        thumbnail: "",
      },
      stream_title: live ? s.title : "",
    };
  };

  const livestreamElement = (s: SimStreamer) => ({
    // Key order and shape as tests/fixtures/api-livestreams-1.json.
    broadcaster_user_id: s.userId,
    category: {
      id: 15,
      name: "Just Chatting",
      thumbnail: "https://files.kick.com/images/subcategories/15/banner/sim.webp",
    },
    channel_id: s.channelId,
    has_mature_content: false,
    language: "en",
    profile_picture: "https://kick.com/img/default-profile-pictures/default2.jpeg",
    slug: s.slug,
    started_at: s.startedAt ?? new Date().toISOString(),
    stream_title: s.title,
    thumbnail: "",
    viewer_count: 100,
    custom_tags: [],
  });

  const getPublicKeyPem = (): Promise<string> => {
    if (publicKeyPem === undefined) publicKeyPem = generateDefaultPem();
    return Promise.resolve(publicKeyPem);
  };

  async function compute(req: Request, url: URL): Promise<Computed> {
    const path = url.pathname;
    const method = req.method;

    if (path === "/oauth/token") {
      if (method !== "POST") return json(405, { error: "Invalid request" });
      const form = new URLSearchParams(await req.text());
      if (
        form.get("grant_type") !== "client_credentials" || !form.get("client_id") ||
        !form.get("client_secret")
      ) {
        return json(400, { error: "Invalid request" });
      }
      const clientId = form.get("client_id")!;
      if (!clients.has(clientId) || clients.get(clientId) !== form.get("client_secret")) {
        return json(401, {
          error: "invalid_client",
          error_description: "Client authentication failed",
        });
      }
      const token = randomToken();
      tokens.set(token, Date.now() + lifetimeSec * 1000);
      tokenClient.set(token, clientId);
      return json(200, {
        access_token: token,
        token_type: "Bearer",
        expires_in: opts.expiresInAsString ? String(lifetimeSec) : lifetimeSec,
      });
    }

    if (path.startsWith("/api/v2/channels/")) {
      if (method !== "GET") return json(405, { message: "Method not allowed" });
      if (unofficialBlocked === "json") {
        return {
          status: 403,
          body: CLOUDFLARE_403_BODY,
          headers: { ...JSON_HEADERS, "cf-ray": "8f00000000000000-AMS" },
        };
      }
      if (unofficialBlocked === "html") {
        return {
          status: 403,
          body: CLOUDFLARE_CHALLENGE_HTML,
          headers: {
            "content-type": "text/html; charset=UTF-8",
            "cf-ray": "8f00000000000000-AMS",
            "cf-mitigated": "challenge",
          },
        };
      }
      const slug = decodeURIComponent(path.slice("/api/v2/channels/".length));
      const s = world.bySlug(slug);
      if (!s) return json(404, { message: "Not Found" });
      return json(200, {
        id: s.channelId,
        user_id: s.userId,
        slug: s.slug,
        is_banned: false,
        playback_url:
          `https://fa723fc1b171.us-west-2.playback.live-video.net/api/video/v1/sim.${s.slug}.m3u8`,
        vod_enabled: true,
        subscription_enabled: true,
        followers_count: 0,
        user: { id: s.userId, username: s.slug },
        chatroom: { id: s.channelId + 1_000_000, channel_id: s.channelId },
        livestream: s.live
          ? {
            id: s.livestreamId,
            slug: `${s.livestreamId}-${s.slug}`,
            channel_id: s.channelId,
            created_at: s.startedAt,
            session_title: s.title,
            is_live: true,
          }
          : null,
      });
    }

    if (!path.startsWith("/public/v1/")) return json(404, { message: "Not Found" });
    const route = path.slice("/public/v1".length);

    if (route === "/public-key" && method === "GET") {
      return json(200, { data: { public_key: await getPublicKeyPem() }, message: "OK" });
    }

    if (!authorized(req)) return unauthorized();

    if (route === "/channels" && method === "GET") {
      const ids = parseIds(url, "broadcaster_user_id");
      if (typeof ids === "string") return badRequest(ids);
      const slugs = url.searchParams.getAll("slug");
      if (ids.length > 50 || slugs.length > 50) return badRequest("too many values (max 50)");
      const found = new Map<number, SimStreamer>();
      for (const id of ids) {
        const s = world.byUserId(id);
        if (s) found.set(s.userId, s);
      }
      for (const slug of slugs) {
        const s = world.bySlug(slug);
        if (s) found.set(s.userId, s);
      }
      return json(200, { data: [...found.values()].map(channelElement), message: "OK" });
    }

    if (route === "/livestreams" && method === "GET") {
      if (v1Gone) return json(404, { message: "Not Found" });
      const ids = parseIds(url, "broadcaster_user_id");
      if (typeof ids === "string") return badRequest(ids);
      const limitRaw = url.searchParams.get("limit");
      const limit = limitRaw === null ? 25 : Number(limitRaw);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
        return badRequest("limit must be between 1 and 100");
      }
      const pool = ids.length > 0
        ? ids.map((id) => world.byUserId(id)).filter((s) => s !== undefined)
        : world.all();
      const seen = new Set<number>();
      const live = pool.filter((s) => s.live && !seen.has(s.userId) && seen.add(s.userId));
      return json(
        200,
        { data: live.slice(0, limit).map(livestreamElement), message: "OK" },
        v1Deprecated ? V1_DEPRECATION_HEADERS : {},
      );
    }

    if (route === "/users/livestreams" && method === "GET") {
      // Undocumented (§4.5, Low–Medium): `user_id` repeatable and required, live rows only,
      // v2-shaped (no channel id).
      const ids = parseIds(url, "user_id");
      if (typeof ids === "string") return badRequest(ids);
      if (ids.length === 0 || ids.length > 100) return badRequest("user_id: 1 to 100 values");
      const live = [...new Set(ids)].map((id) => world.byUserId(id))
        .filter((s) => s !== undefined && s.live) as SimStreamer[];
      return json(200, {
        data: live.map((s) => ({
          id: `00000000-0000-4000-8000-${String(s.userId).padStart(12, "0")}`,
          broadcaster_user: { id: s.userId, username: s.slug, profile_picture: "" },
          channel: { slug: s.slug },
          started_at: s.startedAt ?? new Date().toISOString(),
          title: s.title,
          viewer_count: 100,
        })),
        message: "OK",
      });
    }

    if (route === "/events/subscriptions") {
      if (method === "GET") return json(200, { data: subs, message: "OK" });
      if (method === "DELETE") {
        const ids = new Set(url.searchParams.getAll("id"));
        if (ids.size === 0) return badRequest("id is required");
        for (let i = subs.length - 1; i >= 0; i--) if (ids.has(subs[i].id)) subs.splice(i, 1);
        return { status: 204, body: null, headers: {} };
      }
      if (method === "POST") {
        let body: unknown;
        try {
          body = JSON.parse(await req.text());
        } catch {
          return badRequest("invalid JSON body");
        }
        const b = body as {
          broadcaster_user_id?: unknown;
          events?: { name?: unknown; version?: unknown }[];
          method?: unknown;
        };
        if (
          typeof b?.broadcaster_user_id !== "number" || !Array.isArray(b.events) ||
          b.events.length === 0 ||
          b.method !== "webhook" ||
          !b.events.every((e) => typeof e?.name === "string" && typeof e?.version === "number")
        ) {
          return badRequest("invalid request body");
        }
        const events = b.events as { name: string; version: number }[];
        const bid = b.broadcaster_user_id;
        const fresh = events.filter((e) =>
          !subs.some((s) =>
            s.broadcaster_user_id === bid && s.event === e.name && s.version === e.version
          )
        );
        if (subs.length + fresh.length > subscriptionLimit) {
          return { status: 400, body: SUBSCRIPTION_LIMIT_BODY, headers: JSON_HEADERS };
        }
        const now = new Date().toISOString();
        const data = events.map((e) => {
          let s = subs.find((x) =>
            x.broadcaster_user_id === bid && x.event === e.name && x.version === e.version
          );
          if (!s) {
            s = {
              app_id: appId,
              broadcaster_user_id: bid,
              created_at: now,
              event: e.name,
              id: ulid(),
              method: "webhook",
              updated_at: now,
              version: e.version,
            };
            subs.push(s);
          }
          return { error: "", name: e.name, subscription_id: s.id, version: e.version };
        });
        return json(200, { data, message: "OK" });
      }
    }
    return json(404, { message: "Not Found" });
  }

  const server = Deno.serve(
    {
      hostname: opts.hostname ?? "127.0.0.1",
      port: opts.port ?? 0,
      onListen: () => {},
    },
    async (req) => {
      const url = new URL(req.url);
      const method = req.method;
      const path = url.pathname;
      counts.set(path, (counts.get(path) ?? 0) + 1);
      counts.set(`${method} ${path}`, (counts.get(`${method} ${path}`) ?? 0) + 1);
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.get("authorization") ?? "")?.[1];
      const client = bearer !== undefined && authorized(req) ? tokenClient.get(bearer) : undefined;
      if (client !== undefined && path.startsWith("/public/v1/")) {
        const m = byClient.get(client) ?? new Map<string, number>();
        byClient.set(client, m);
        for (const k of ["*", path, `${method} ${path}`]) m.set(k, (m.get(k) ?? 0) + 1);
      }

      let out: Computed;
      let canned: FaultResponse | undefined;
      const fi = faults.findIndex((f) => matches(f.key, method, path));
      if (fi >= 0) {
        const f = faults[fi];
        if (--f.remaining <= 0) faults.splice(fi, 1);
        canned = f.response;
      } else {
        canned = opts.answer?.(method, url);
      }
      if (canned) {
        if (!req.bodyUsed) await req.body?.cancel();
        out = {
          status: canned.status,
          body: canned.body,
          headers: { ...JSON_HEADERS, ...canned.headers },
        };
      } else {
        out = await compute(req, url);
        if (!req.bodyUsed) await req.body?.cancel();
      }

      for (const [key, ms] of delays) {
        if (ms > 0 && matches(key, method, path)) {
          await abortableSleep(ms, shutdown.signal);
          break;
        }
      }
      const hi = holds.findIndex((h) => matches(h.key, method, path));
      if (hi >= 0) {
        const h = holds.splice(hi, 1)[0];
        h.arrived();
        await h.gate;
      }
      if (opts.onRequest) await opts.onRequest({ method, path, url, status: out.status });
      const nullBody = out.status === 204 || out.status === 304 || method === "HEAD";
      return new Response(nullBody ? null : out.body, { status: out.status, headers: out.headers });
    },
  );

  const origin = `http://${server.addr.hostname}:${server.addr.port}`;
  return {
    origin,
    oauthUrl: origin,
    apiUrl: `${origin}/public/v1`,
    unofficialUrl: `${origin}/api/v2`,
    failNext(path, response, times = 1) {
      faults.push({ key: path, response, remaining: times });
    },
    setDelay(path, ms) {
      if (ms > 0) delays.set(path, ms);
      else delays.delete(path);
    },
    holdNext(path) {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let arrived!: () => void;
      const reached = new Promise<void>((r) => (arrived = r));
      holds.push({ key: path, gate, arrived });
      releasers.add(release);
      return {
        reached,
        release: () => {
          releasers.delete(release);
          release();
        },
      };
    },
    expireAllTokens() {
      for (const k of tokens.keys()) tokens.set(k, 0);
    },
    requests(path) {
      return counts.get(path) ?? 0;
    },
    addClient(clientId, clientSecret) {
      clients.set(clientId, clientSecret);
    },
    requestsBy(clientId, path) {
      return byClient.get(clientId)?.get(path ?? "*") ?? 0;
    },
    setUnofficialBlocked(mode) {
      unofficialBlocked = mode;
    },
    setV1LivestreamsGone(gone) {
      v1Gone = gone;
    },
    setV1LivestreamsDeprecated(deprecated) {
      v1Deprecated = deprecated;
    },
    setSubscriptionLimit(n) {
      subscriptionLimit = n;
    },
    setWebhookPublicKeyPem(pem) {
      publicKeyPem = pem;
    },
    subscriptions() {
      return subs.map((s) => ({ ...s }));
    },
    async close() {
      shutdown.abort();
      for (const r of releasers) r();
      releasers.clear();
      holds.length = 0;
      await server.shutdown();
    },
  };
}

function randomToken(): string {
  const b = crypto.getRandomValues(new Uint8Array(24));
  return "sim_" +
    btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function generateDefaultPem(): Promise<string> {
  return (await WebhookSender.create()).publicKeyPem;
}
