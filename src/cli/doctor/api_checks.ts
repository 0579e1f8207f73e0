/**
 * `kickmon doctor`'s checks of Kick's official side: the OAuth client
 * credentials grant (`oauth token`), `GET /channels` for the streamer
 * (`api /channels`), v1 `GET /livestreams` (`api /livestreams v1`), the
 * undocumented `GET /users/livestreams` (`api /users/livestreams`) and the
 * unofficial `kick.com/api/v2/channels/{slug}` lookup (`unofficial lookup`).
 * Each returns one {@linkcode CheckResult} and never throws.
 *
 * @module
 */
import type { Config } from "../../config/config.ts";
import type { ApiChannel, KickApi } from "../../kick/official/api.ts";
import { KickApiError } from "../../kick/official/api_error.ts";
import type { TokenProvider } from "../../kick/official/oauth.ts";
import { InvalidCredentialsError, OAuthError } from "../../kick/official/oauth_error.ts";
import { registerSecret } from "../../log/logging.ts";
import { type CheckResult, errText, type Found, result, round } from "./check.ts";

/**
 * The one-sentence remedy for a failed Kick API request, by
 * {@linkcode KickApiError} kind.
 *
 * @example
 * ```ts
 * apiRemedy(new Error("boom")); // "check KICK_API_URL and that this host reaches it"
 * ```
 */
export function apiRemedy(e: unknown): string {
  if (e instanceof KickApiError) {
    switch (e.kind) {
      case "blocked":
        return "Cloudflare blocks this host's address: run kickmon from an address Kick does not challenge, or wait and retry later";
      case "unauthorized":
        return "the token was refused: check that the Kick app behind KICK_CLIENT_ID is enabled";
      case "rate_limited":
        return "the app is over Kick's rate limit: lower KICK_API_MAX_REQUESTS_PER_MINUTE or stop other users of this app";
      case "timeout":
      case "network":
        return "check KICK_API_URL and that this host reaches it (proxy, firewall, DNS)";
      case "malformed":
        return "Kick answered something kickmon does not understand: check KICK_API_URL points at Kick's public API";
      default:
        return "check KICK_API_URL and the Kick developer status page, then run doctor again";
    }
  }
  return "check KICK_API_URL and that this host reaches it";
}

/**
 * What a failed Kick API request reports: `HTTP {status}, {kind}: {message}`.
 *
 * @example
 * ```ts
 * apiDetail(new Error("fetch failed")); // "fetch failed"
 * ```
 */
export function apiDetail(e: unknown): string {
  if (e instanceof KickApiError) {
    return `${e.status ? `HTTP ${e.status}, ` : ""}${e.kind}: ${e.message}`;
  }
  return errText(e);
}

/**
 * `oauth token`: client credentials grant, `expires_in` (s), scopes by
 * introspection (`POST /oauth/token/introspect`, optional). Puts the token in
 * `found.token` and registers it for masking.
 *
 * @param timeoutMs timeout of the introspection request, ms.
 *
 * @example
 * ```ts
 * checks.push(await checkOAuth(config, tokens, found, 10_000));
 * ```
 */
export async function checkOAuth(
  config: Config,
  tokens: TokenProvider,
  found: Found,
  timeoutMs: number,
): Promise<CheckResult> {
  const t = performance.now();
  const asked = Date.now();
  try {
    const token = await tokens.getToken();
    registerSecret(token);
    found.token = token;
    const expiresAt = tokens.state().expiresAt;
    const expiresIn = expiresAt ? Math.round((expiresAt - asked) / 1000) : null;
    const ms = round(performance.now() - t);
    let scopes = "scopes not reported";
    try {
      const res = await fetch(
        `${config.kick.oauthUrl.replace(/\/+$/, "")}/oauth/token/introspect`,
        {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, accept: "application/json" },
          signal: AbortSignal.timeout(timeoutMs),
        },
      );
      const text = await res.text();
      if (res.ok) {
        const scope = (JSON.parse(text) as { data?: { scope?: unknown } }).data?.scope;
        if (typeof scope === "string") scopes = `scopes "${scope}"`;
        else scopes = "introspection reports no scopes";
      } else scopes = `scopes not reported (introspection HTTP ${res.status})`;
    } catch {
      // introspection is optional
    }
    return result(
      "oauth token",
      t,
      "ok",
      `token obtained in ${ms} ms, expires_in ${expiresIn ?? "?"} s, ${scopes}`,
    );
  } catch (e) {
    if (e instanceof InvalidCredentialsError) {
      return result(
        "oauth token",
        t,
        "fail",
        `Kick rejected the client credentials (${e.code}${e.status ? `, HTTP ${e.status}` : ""})`,
        "copy KICK_CLIENT_ID and KICK_CLIENT_SECRET again from your app on kick.com (Settings → Developer)",
      );
    }
    return result(
      "oauth token",
      t,
      "fail",
      e instanceof OAuthError ? `${e.code}: ${e.message}` : errText(e),
      "check KICK_OAUTH_URL and that this host reaches it (proxy, firewall, DNS)",
    );
  }
}

/**
 * The detail of a check that needs the access token when there is none.
 *
 * @example
 * ```ts
 * result("api /channels", performance.now(), "fail", NO_TOKEN, FIX_TOKEN);
 * ```
 */
export const NO_TOKEN = "no access token (see the oauth token line)";
/**
 * The remedy of a check that needs the access token when there is none.
 *
 * @example
 * ```ts
 * result("api /channels", performance.now(), "fail", NO_TOKEN, FIX_TOKEN);
 * ```
 */
export const FIX_TOKEN = "fix the oauth token check first";

/**
 * `api /channels`: the streamer's channel by slug. Puts its user id in
 * `found.userId`.
 *
 * @example
 * ```ts
 * checks.push(await checkChannels(api, found));
 * ```
 */
export async function checkChannels(api: KickApi, found: Found): Promise<CheckResult> {
  const t = performance.now();
  if (!found.slug) {
    return result(
      "api /channels",
      t,
      "warn",
      "no streamer to look up (no active row with a username)",
      "pass --streamer NAME or add one with 'kickmon streamers add NAME'",
    );
  }
  if (!found.token) return result("api /channels", t, "fail", NO_TOKEN, FIX_TOKEN);
  let rows: ApiChannel[];
  try {
    rows = await api.getChannels({ slugs: [found.slug] });
  } catch (e) {
    return result("api /channels", t, "fail", apiDetail(e), apiRemedy(e));
  }
  const c = rows.find((r) => r.slug.toLowerCase() === found.slug!.toLowerCase()) ?? rows[0];
  if (!c) {
    return result(
      "api /channels",
      t,
      "fail",
      `HTTP 200, but Kick has no channel "${found.slug}"`,
      "check the username's spelling (kick.com/<username>)",
    );
  }
  found.userId = c.broadcasterUserId;
  return result(
    "api /channels",
    t,
    "ok",
    `HTTP 200, ${c.slug}: user id ${c.broadcasterUserId}, ${c.isLive ? "live" : "offline"}`,
  );
}

/**
 * The streamer's user id a per-streamer API check asks about, or what the
 * check says when it cannot ask: `fail` without a token, `warn` without a
 * user id.
 *
 * @param t when the check started (`performance.now()`, ms).
 *
 * @example
 * ```ts
 * const userId = userToAsk("api /livestreams v1", performance.now(), found);
 * if (typeof userId !== "number") return userId;
 * ```
 */
export function userToAsk(name: string, t: number, found: Found): number | CheckResult {
  if (!found.token) return result(name, t, "fail", NO_TOKEN, FIX_TOKEN);
  if (found.userId === null) {
    return result(
      name,
      t,
      "warn",
      "not asked: no streamer's user id known",
      "pass --streamer NAME",
    );
  }
  return found.userId;
}

/**
 * `api /livestreams v1`: still answering (the only official source of channel
 * ids, docs/kick-protocol.md §4.5, §10.6). `ok` while it answers without deprecation
 * headers; `warn` when it answers with `Deprecation`/`Sunset` (RFC 9745 /
 * RFC 8594: it still gives channel ids, but not for long); `fail` on 404/410
 * (gone), with what kickmon does instead. Puts the channel id of a live
 * streamer in `found.channelId` when none is known yet.
 *
 * @example
 * ```ts
 * checks.push(await checkLivestreams(config, api, found));
 * ```
 */
export async function checkLivestreams(
  config: Config,
  api: KickApi,
  found: Found,
): Promise<CheckResult> {
  const t = performance.now();
  const name = "api /livestreams v1";
  const userId = userToAsk(name, t, found);
  if (typeof userId !== "number") return userId;
  try {
    const rows = await api.getLivestreams([userId]);
    const mine = rows.find((r) => r.broadcasterUserId === userId);
    if (mine && found.channelId === null) {
      found.channelId = mine.channelId;
      found.channelIdFrom = "/livestreams";
    }
    const answer = mine
      ? `HTTP 200, live, channel id ${mine.channelId}`
      : "HTTP 200, not live (no row)";
    const cap = api.capabilities.get("GET /livestreams");
    if (cap.state === "deprecated") {
      return result(
        name,
        t,
        "warn",
        `${answer}; Kick marks it deprecated (Deprecation: ${cap.deprecation ?? "-"}, Sunset: ${
          cap.sunset ?? "-"
        })`,
        "nothing breaks yet: give streamers without a channel id one now " +
          "('kickmon streamers set-channel-id') or enable KICK_UNOFFICIAL_CHANNEL_LOOKUP=true " +
          "before it is removed",
      );
    }
    return result(
      name,
      t,
      "ok",
      `${answer}; deprecated since 2026-06-23 but answering (the only official source of channel ids)`,
    );
  } catch (e) {
    if (e instanceof KickApiError && (e.kind === "not_found" || e.status === 410)) {
      return result(
        name,
        t,
        "fail",
        `HTTP ${e.status}: v1 /livestreams is gone (deprecated 2026-06-23); kickmon reconciles ` +
          "through /channels and /users/livestreams, but learns no channel ids from Kick's official API",
        config.kick.unofficialChannelLookup
          ? "kickmon takes channel ids from the unofficial lookup (enabled); for a streamer it " +
            "cannot find, give the id with 'kickmon streamers set-channel-id <username> <channel_id>'"
          : "give each new streamer's channel id with 'kickmon streamers set-channel-id <username> " +
            "<channel_id>' or set KICK_UNOFFICIAL_CHANNEL_LOOKUP=true; without one a streamer gets " +
            "no Pusher subscription (reconciliation only)",
      );
    }
    return result(name, t, "fail", apiDetail(e), apiRemedy(e));
  }
}

/**
 * `api /users/livestreams`: an undocumented endpoint; `warn` when it does not
 * answer.
 *
 * @param timeoutMs timeout of the request, ms.
 *
 * @example
 * ```ts
 * checks.push(await checkUsersLivestreams(config, found, 10_000));
 * ```
 */
export async function checkUsersLivestreams(
  config: Config,
  found: Found,
  timeoutMs: number,
): Promise<CheckResult> {
  const t = performance.now();
  const name = "api /users/livestreams";
  const userId = userToAsk(name, t, found);
  if (typeof userId !== "number") return userId;
  const url = new URL(`${config.kick.apiUrl.replace(/\/+$/, "")}/users/livestreams`);
  url.searchParams.set("user_id", String(userId));
  try {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${found.token}`, accept: "application/json" },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (res.ok) {
      let rows = "?";
      try {
        const d = (JSON.parse(text) as { data?: unknown }).data;
        if (Array.isArray(d)) rows = String(d.length);
      } catch { /* counted as ? */ }
      return result(
        name,
        t,
        "ok",
        `HTTP ${res.status}, ${rows} rows (kickmon asks it who is live for lists over 50, 100 ids a request)`,
      );
    }
    return result(
      name,
      t,
      "warn",
      `not available (HTTP ${res.status})`,
      "nothing to do now: kickmon does not need it and reconciles through /channels (50 ids a " +
        "request; it is undocumented, a possible successor of v1 /livestreams)",
    );
  } catch (e) {
    return result(
      name,
      t,
      "warn",
      `not available: ${errText(e)}`,
      "nothing to do now: kickmon does not need it and reconciles through /channels",
    );
  }
}

/**
 * `unofficial lookup`: `kick.com/api/v2/channels/{slug}` when enabled. Puts
 * the channel id in `found.channelId` when none is known yet.
 *
 * @example
 * ```ts
 * checks.push(await checkUnofficial(config, api, found));
 * ```
 */
export async function checkUnofficial(
  config: Config,
  api: KickApi,
  found: Found,
): Promise<CheckResult> {
  const t = performance.now();
  const name = "unofficial lookup";
  if (!config.kick.unofficialChannelLookup) {
    return result(name, t, "ok", "disabled (KICK_UNOFFICIAL_CHANNEL_LOOKUP=false)");
  }
  if (!found.slug) {
    return result(name, t, "warn", "not asked: no streamer known", "pass --streamer NAME");
  }
  try {
    const c = await api.getUnofficialChannel(found.slug);
    if (found.channelId === null) {
      found.channelId = c.channelId;
      found.channelIdFrom = "the unofficial lookup";
    }
    return result(name, t, "ok", `HTTP 200, ${c.slug}: channel id ${c.channelId}`);
  } catch (e) {
    if (e instanceof KickApiError && e.kind === "blocked") {
      const html = /HTML|challenge/i.test(e.message);
      return result(
        name,
        t,
        "fail",
        `HTTP ${e.status}: Cloudflare ${html ? "HTML challenge page" : "403 block"} (${e.message})`,
        "set KICK_UNOFFICIAL_CHANNEL_LOOKUP=false (channel ids then come from /livestreams while live) " +
          "or run kickmon from an address Cloudflare does not challenge",
      );
    }
    return result(name, t, "fail", apiDetail(e), apiRemedy(e));
  }
}
