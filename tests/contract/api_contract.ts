/**
 * The HTTP contracts: every answer kickmon reads from Kick's OAuth server,
 * official API and the unofficial lookup, held against the program's own
 * zod schemas (src/kick/official/oauth.ts, api.ts, webhook.ts), strictly:
 * each list element must parse (kick-protocol.md §4.1, §4.3–§4.8, §2, §5;
 * what kickmon tolerates is in §10.4).
 *
 * Each function is one contract: it returns a line saying what it checked,
 * throws {@linkcode ContractFailure} when the contract is broken and
 * {@linkcode ContractSkip} (named reason) when it cannot be checked here.
 *
 * @module
 */
import { z } from "zod";
import {
  ChannelWire,
  envelope,
  EventSubscriptionWire,
  LivestreamWire,
  PublicKeyWire,
} from "../../src/kick/official/wire.ts";
import { UnofficialChannelWire } from "../../src/kick/unofficial/channel_lookup.ts";
import { OAuthTokenResponseWire } from "../../src/kick/official/oauth.ts";
import { OAuthErrorResponseWire } from "../../src/kick/official/oauth_error.ts";
import { importKickPublicKey } from "../../src/kick/official/webhook_signature.ts";
import {
  bearer,
  checkRows,
  checkSchema,
  type ContractRun,
  exchange,
  failure,
  parseJson,
  skipIfCloudflare,
} from "./check.ts";
import { ContractSkip } from "./report.ts";

const API = "src/kick/official/api.ts";

function apiUrl(run: ContractRun, path: string, query: [string, string][] = []): URL {
  const url = new URL(run.target.apiBaseUrl.replace(/\/+$/, "") + path);
  for (const [k, v] of query) url.searchParams.append(k, v);
  return url;
}

function tokenRequest(run: ContractRun, secret: string) {
  return exchange(run, new URL(`${run.target.oauthBaseUrl.replace(/\/+$/, "")}/oauth/token`), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: run.target.clientId,
      client_secret: secret,
    }),
  });
}

/**
 * `POST /oauth/token` (client credentials, §4.1) → HTTP 200 parsed by
 * `OAuthTokenResponseWire`. Keeps the token (and registers it for redaction).
 *
 * @example
 * ```ts
 * await runContract(t, run, "oauth: client-credentials token", () => oauthToken(run));
 * ```
 */
export async function oauthToken(run: ContractRun): Promise<string> {
  const x = await tokenRequest(run, run.target.clientSecret);
  // The token is hidden before anything about this answer can be printed.
  const token = /"access_token"\s*:\s*"([^"]+)"/.exec(x.text)?.[1];
  if (token) run.redactor.add(token);
  skipIfCloudflare(x);
  const expected = "HTTP 200 parsed by OAuthTokenResponseWire (src/kick/official/oauth.ts)";
  const body = checkSchema(
    run,
    x,
    OAuthTokenResponseWire,
    parseJson(run, x, 200, expected),
    expected,
  );
  run.redactor.add(body.access_token);
  run.found.token = body.access_token;
  return `HTTP 200, expires_in ${body.expires_in} s, token_type ${body.token_type ?? "(none)"}`;
}

/**
 * `POST /oauth/token` with a wrong secret → a 4xx parsed by
 * `OAuthErrorResponseWire` (§4.1, §4.3).
 *
 * @example
 * ```ts
 * await runContract(t, run, "oauth: invalid secret", () => oauthInvalidSecret(run));
 * ```
 */
export async function oauthInvalidSecret(run: ContractRun): Promise<string> {
  const wrong = `contract-invalid-${crypto.randomUUID()}`;
  const x = await tokenRequest(run, wrong);
  skipIfCloudflare(x);
  const expected = "HTTP 4xx parsed by OAuthErrorResponseWire (src/kick/official/oauth.ts)";
  const body = checkSchema(
    run,
    x,
    OAuthErrorResponseWire,
    parseJson(run, x, (s) => s >= 400 && s < 500, expected),
    expected,
  );
  return `HTTP ${x.status}, error "${body.error}"`;
}

/**
 * v1 `GET /livestreams` (§4.5): once without a filter to find a live
 * streamer (`limit=10`), and, when a streamer is known, as kickmon asks it
 * (`broadcaster_user_id=…&limit=100`); every element parsed by
 * `LivestreamWire`. A 404 or 410 is a named skip: Kick deprecated v1 on
 * 2026-06-23 (§10.6).
 *
 * @param phase `discover` (before `/channels`) or `by_id` (after it).
 * @example
 * ```ts
 * await runContract(t, run, "api: /livestreams v1", () => livestreams(run, "discover"));
 * ```
 */
export async function livestreams(run: ContractRun, phase: "discover" | "by_id"): Promise<string> {
  const headers = bearer(run);
  const query: [string, string][] = phase === "discover"
    ? [["limit", "10"]]
    : [["broadcaster_user_id", String(needUserId(run))], ["limit", "100"]];
  const x = await exchange(run, apiUrl(run, "/livestreams", query), { headers });
  skipIfCloudflare(x);
  if (x.status === 404 || x.status === 410) {
    throw new ContractSkip(
      `${x.endpoint}: HTTP ${x.status}: v1 /livestreams is gone (deprecated 2026-06-23); ` +
        "kickmon then learns channel ids only from the unofficial lookup",
    );
  }
  const rows = checkRows(run, x, LivestreamWire, `LivestreamWire (${API})`);
  if (phase === "discover") {
    const first = rows[0];
    if (first && !run.found.slug) run.found.slug = first.slug ?? undefined;
    if (first && first.slug) {
      run.found.channel ??= {
        id: first.channel_id,
        userId: first.broadcaster_user_id,
        slug: first.slug,
        from: "/livestreams (a live stream)",
      };
    }
    return `HTTP 200, ${rows.length} live streams, every element parsed`;
  }
  const mine = rows.find((r) => r.broadcaster_user_id === run.found.userId);
  if (mine && run.found.slug) {
    run.found.channel = {
      id: mine.channel_id,
      userId: mine.broadcaster_user_id,
      slug: run.found.slug,
      from: `/livestreams (${run.found.slug} is live)`,
    };
  }
  return `HTTP 200, ${mine ? `live, channel id ${mine.channel_id}` : "not live (no row)"}; ` +
    "deprecated since 2026-06-23 but answering";
}

function needUserId(run: ContractRun): number {
  if (run.found.userId === undefined) {
    throw new ContractSkip("needs the streamer's user id: the /channels by slug contract failed");
  }
  return run.found.userId;
}

/**
 * `GET /channels?slug=…` (§4.4): every element parsed by `ChannelWire`, and
 * the asked slug among them. Keeps its `broadcaster_user_id`.
 *
 * @example
 * ```ts
 * await runContract(t, run, "api: /channels by slug", () => channelsBySlug(run));
 * ```
 */
export async function channelsBySlug(run: ContractRun): Promise<string> {
  const headers = bearer(run);
  const slug = run.found.slug;
  if (!slug) {
    throw new ContractSkip(
      "no streamer to ask about: set KICK_CONTRACT_STREAMER (no live stream came from /livestreams)",
    );
  }
  const x = await exchange(run, apiUrl(run, "/channels", [["slug", slug]]), { headers });
  skipIfCloudflare(x);
  const rows = checkRows(run, x, ChannelWire, `ChannelWire (${API})`);
  const c = rows.find((r) => r.slug.toLowerCase() === slug.toLowerCase());
  if (!c) throw failure(run, x, `an element with slug "${slug}"`, ["no such element"]);
  run.found.userId = c.broadcaster_user_id;
  return `HTTP 200, ${rows.length} element(s) parsed; ${c.slug}: user id ${c.broadcaster_user_id}, ${
    c.stream.is_live ? "live" : "offline"
  }`;
}

/**
 * `GET /channels?broadcaster_user_id=…` (§4.4): every element parsed by
 * `ChannelWire`, and the asked id among them.
 *
 * @example
 * ```ts
 * await runContract(t, run, "api: /channels by broadcaster_user_id", () => channelsById(run));
 * ```
 */
export async function channelsById(run: ContractRun): Promise<string> {
  const headers = bearer(run);
  const id = needUserId(run);
  const x = await exchange(run, apiUrl(run, "/channels", [["broadcaster_user_id", String(id)]]), {
    headers,
  });
  skipIfCloudflare(x);
  const rows = checkRows(run, x, ChannelWire, `ChannelWire (${API})`);
  if (!rows.some((r) => r.broadcaster_user_id === id)) {
    throw failure(run, x, `an element with broadcaster_user_id ${id}`, ["no such element"]);
  }
  return `HTTP 200, ${rows.length} element(s) parsed, user id ${id} present`;
}

/**
 * `GET /users/livestreams?user_id=…` (undocumented, §4.5, §10.5): kickmon
 * does not read it (only `kickmon doctor` counts its rows), so only the
 * list envelope is held to the program's `ListEnvelopeWire`. Not answering (4xx/5xx) is
 * a named skip.
 *
 * @example
 * ```ts
 * await runContract(t, run, "api: /users/livestreams", () => usersLivestreams(run));
 * ```
 */
export async function usersLivestreams(run: ContractRun): Promise<string> {
  const headers = bearer(run);
  const id = needUserId(run);
  const x = await exchange(run, apiUrl(run, "/users/livestreams", [["user_id", String(id)]]), {
    headers,
  });
  skipIfCloudflare(x);
  if (x.status >= 400) {
    throw new ContractSkip(
      `${x.endpoint}: not answering (HTTP ${x.status}); kickmon does not need it`,
    );
  }
  const rows = checkRows(run, x, z.unknown(), "anything (kickmon reads no field of it)");
  return `HTTP ${x.status}, ${rows.length} row(s); envelope parsed`;
}

/**
 * `GET /events/subscriptions` (§4.7): every element parsed by
 * `EventSubscriptionWire` (the program parses the whole list with
 * `envelope(z.array(EventSubscriptionWire))`).
 *
 * @example
 * ```ts
 * await runContract(t, run, "api: /events/subscriptions", () => eventSubscriptions(run));
 * ```
 */
export async function eventSubscriptions(run: ContractRun): Promise<string> {
  const headers = bearer(run);
  const x = await exchange(run, apiUrl(run, "/events/subscriptions"), { headers });
  skipIfCloudflare(x);
  const rows = checkRows(run, x, EventSubscriptionWire, `EventSubscriptionWire (${API})`);
  const expected = `envelope(z.array(EventSubscriptionWire)) (${API})`;
  checkSchema(run, x, envelope(z.array(EventSubscriptionWire)), JSON.parse(x.text), expected);
  return `HTTP 200, ${rows.length} subscription(s), every element parsed`;
}

/**
 * `GET /public-key` (§4.8): parsed by `envelope(PublicKeyWire)`, and the
 * PEM imports with the program's `importKickPublicKey` (webhook.ts).
 *
 * @example
 * ```ts
 * await runContract(t, run, "api: /public-key", () => publicKey(run));
 * ```
 */
export async function publicKey(run: ContractRun): Promise<string> {
  const headers = bearer(run);
  const x = await exchange(run, apiUrl(run, "/public-key"), { headers });
  skipIfCloudflare(x);
  const expected = `HTTP 200 parsed by envelope(PublicKeyWire) (${API})`;
  const body = checkSchema(
    run,
    x,
    envelope(PublicKeyWire),
    parseJson(run, x, 200, expected),
    expected,
  );
  try {
    await importKickPublicKey(body.data.public_key);
  } catch (e) {
    throw failure(run, x, "a PEM importKickPublicKey accepts (src/kick/official/webhook.ts)", [
      (e as Error).message,
    ]);
  }
  return "HTTP 200, an RSA public key that imports";
}

/**
 * `GET {unofficial}/channels/{slug}` (§2): parsed by `UnofficialChannelWire`,
 * slug and user id agreeing with `/channels`. Cloudflare's 403 (HTML
 * challenge or JSON block, §5) is a named skip. Keeps the channel id when
 * no live stream gave one.
 *
 * @example
 * ```ts
 * await runContract(t, run, "unofficial: kick.com channel lookup", () => unofficialChannel(run));
 * ```
 */
export async function unofficialChannel(run: ContractRun): Promise<string> {
  const base = run.target.unofficialBaseUrl;
  if (!base) throw new ContractSkip("disabled (KICK_UNOFFICIAL_CHANNEL_LOOKUP is not true)");
  const slug = run.found.slug;
  if (!slug) throw new ContractSkip("no streamer to ask about: set KICK_CONTRACT_STREAMER");
  const url = new URL(`${base.replace(/\/+$/, "")}/channels/${encodeURIComponent(slug)}`);
  const x = await exchange(run, url, { headers: { accept: "application/json" } });
  skipIfCloudflare(x);
  const expected = `HTTP 200 parsed by UnofficialChannelWire (${API})`;
  const c = checkSchema(
    run,
    x,
    UnofficialChannelWire,
    parseJson(run, x, 200, expected),
    expected,
  );
  const problems: string[] = [];
  if (c.slug.toLowerCase() !== slug.toLowerCase()) {
    problems.push(`slug "${c.slug}", asked "${slug}"`);
  }
  if (run.found.userId !== undefined && c.user_id !== run.found.userId) {
    problems.push(`user_id ${c.user_id}, /channels says ${run.found.userId}`);
  }
  if (problems.length) throw failure(run, x, "the same channel /channels describes", problems);
  run.found.channel ??= {
    id: c.id,
    userId: c.user_id,
    slug: c.slug,
    from: "the unofficial lookup",
  };
  return `HTTP 200, ${c.slug}: channel id ${c.id}, user id ${c.user_id}`;
}
