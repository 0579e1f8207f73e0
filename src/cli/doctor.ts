/**
 * `kickmon doctor [--streamer NAME] [--json]`: the day-one check an operator
 * runs with the real env file. Every check is one line — `ok | warn | fail`,
 * what was measured (latency in ms, HTTP status, the key fact) and, on
 * warn/fail, the remedy in one sentence. Exit 0 when nothing failed, 1
 * otherwise. No secret is printed: every configured secret and the access
 * token are masked in the output, whatever a message contains.
 *
 * Checks, in order: configuration; database reachable, schema current,
 * privileges (from {@linkcode databaseHealth}); OAuth client credentials
 * (token, `expires_in`, scopes when introspection says); `GET /channels` for
 * the streamer; `GET /livestreams` (v1); `GET /users/livestreams`; the
 * webhook public key; the unofficial lookup (when enabled); Pusher connect,
 * subscribe and ping; the webhook listener (when webhooks are enabled).
 *
 * @module
 */
import type { Command } from "commander";
import {
  type Config,
  ConfigError,
  loadConfig,
  readEnvironment,
  secretValues,
} from "../config/config.ts";
import { connectDatabase, DatabaseError } from "../db/client.ts";
import { listStreamerViews, type StreamerView } from "../db/streamers_repo.ts";
import type { ApiChannel, KickApi } from "../kick/official/api.ts";
import { KickApiError } from "../kick/official/api_error.ts";
import type { TokenProvider } from "../kick/official/oauth.ts";
import { InvalidCredentialsError, OAuthError } from "../kick/official/oauth_error.ts";
import { importKickPublicKey } from "../kick/official/webhook_signature.ts";
import { channelName } from "../kick/pusher/frames.ts";
import { registerSecret } from "../log/logging.ts";
import { createKickApi } from "../service/official.ts";
import { databaseHealth } from "./db_commands.ts";
import { healthUrl, type SetExit } from "./service_commands.ts";
import { EXIT } from "./errors.ts";

/** Outcome of one check. */
export type CheckStatus = "ok" | "warn" | "fail";

/** One line of the report. */
export interface CheckResult {
  /** Short check name, e.g. `oauth token`. */
  readonly name: string;
  readonly status: CheckStatus;
  /** What was measured (status code, key fact). Secret-free. */
  readonly detail: string;
  /** One sentence saying what to do; present on warn/fail. */
  readonly remedy?: string;
  /** How long the check took, ms. */
  readonly ms: number;
}

/** Options of {@linkcode runDoctor}. */
export interface DoctorOptions {
  /** Channel slug to check; default: the first active row of the list. */
  readonly streamer?: string;
  /** Timeout of each network step (HTTP request, Pusher frame), ms. Default 10 000. */
  readonly timeoutMs?: number;
  /** The environment to read (default: the process environment). */
  readonly env?: Record<string, string | undefined>;
}

const errText = (e: unknown): string => {
  if (!(e instanceof Error)) return String(e);
  // fetch's "fetch failed" / WebSocket errors carry the useful part in `cause`.
  const cause = e.cause instanceof Error ? e.cause.message : "";
  return cause && !e.message.includes(cause) ? `${e.message}: ${cause}` : e.message;
};
const round = (ms: number) => Math.round(ms * 10) / 10;

function result(
  name: string,
  started: number,
  status: CheckStatus,
  detail: string,
  remedy?: string,
): CheckResult {
  const ms = round(performance.now() - started);
  return remedy && status !== "ok"
    ? { name, status, detail, remedy, ms }
    : { name, status, detail, ms };
}

/** What the checks learn and pass on to later ones. */
interface Found {
  rows: StreamerView[] | null;
  slug: string | null;
  userId: number | null;
  channelId: number | null;
  channelIdFrom: string | null;
  token: string | null;
}

function apiRemedy(e: unknown): string {
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

function apiDetail(e: unknown): string {
  if (e instanceof KickApiError) {
    return `${e.status ? `HTTP ${e.status}, ` : ""}${e.kind}: ${e.message}`;
  }
  return errText(e);
}

/** `configuration`: every variable valid, Kick credentials present. */
function checkConfig(
  env: Record<string, string | undefined>,
): { check: CheckResult; config: Config | null } {
  const t = performance.now();
  try {
    const config = loadConfig(env, { requireKickCredentials: true });
    for (const s of secretValues(config)) registerSecret(s);
    return {
      config,
      check: result(
        "configuration",
        t,
        "ok",
        `valid${config.envFile ? ` (${config.envFile})` : ""}; API ${config.kick.apiUrl}, ` +
          `Pusher ${config.kick.pusher.host}:${config.kick.pusher.port}`,
      ),
    };
  } catch (e) {
    return {
      config: null,
      check: result(
        "configuration",
        t,
        "fail",
        e instanceof ConfigError ? e.message.replace(/\s*\n\s*/g, "; ") : errText(e),
        "fix the named variables in the env file ('kickmon config generate-template' lists them all)",
      ),
    };
  }
}

/** `database reachable`, `database schema`, `database privileges`; reads the list too. */
async function checkDatabase(config: Config, found: Found): Promise<CheckResult[]> {
  const t = performance.now();
  registerSecret(config.database.password);
  const sql = connectDatabase(config.database, { max: 1 });
  try {
    let h;
    try {
      h = await databaseHealth(sql, config);
    } catch (e) {
      const t2 = performance.now();
      const why = "not checked: the database is unreachable";
      const fix = "fix the database reachable check first";
      return [
        result(
          "database reachable",
          t,
          "fail",
          e instanceof DatabaseError && e.code ? `${e.code}: ${errText(e)}` : errText(e),
          "check DATABASE_URL (host, port, user, password, TLS) and that PostgreSQL accepts this host",
        ),
        result("database schema", t2, "fail", why, fix),
        result("database privileges", t2, "fail", why, fix),
      ];
    }
    const out = [
      result(
        "database reachable",
        t,
        "ok",
        `PostgreSQL ${h.server_version}, ${h.tls ?? "no TLS"}, ${h.latency_ms} ms round trip; ` +
          `role ${h.role} on ${h.database}`,
      ),
    ];
    const t2 = performance.now();
    out.push(
      h.pending.length === 0
        ? result("database schema", t2, "ok", `current (kickmon schema ${h.kickmon_schema})`)
        : result(
          "database schema",
          t2,
          "warn",
          `pending: ${h.pending.join(", ")}`,
          "run 'kickmon db migrate' (or let 'kickmon start' do it)",
        ),
    );
    out.push(
      h.problems.length === 0
        ? result(
          "database privileges",
          t2,
          "ok",
          `role ${h.role} has what kickmon needs on schema ${h.schema}`,
        )
        : result(
          "database privileges",
          t2,
          "fail",
          h.problems.map((p) => p.message).join("; "),
          `as the tables' owner or a superuser run: ${h.problems.map((p) => p.fix).join(" ")}`,
        ),
    );
    try {
      found.rows = await listStreamerViews(sql);
    } catch {
      found.rows = null; // the privileges line already says why
    }
    return out;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

/** `oauth token`: client credentials grant, `expires_in`, scopes by introspection. */
async function checkOAuth(
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

const NO_TOKEN = "no access token (see the oauth token line)";
const FIX_TOKEN = "fix the oauth token check first";

/** `api /channels`: the streamer's channel by slug. */
async function checkChannels(api: KickApi, found: Found): Promise<CheckResult> {
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
 */
function userToAsk(name: string, t: number, found: Found): number | CheckResult {
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

/** `api /livestreams v1`: still answering (the only official source of channel ids). */
async function checkLivestreams(api: KickApi, found: Found): Promise<CheckResult> {
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
    return result(
      name,
      t,
      "ok",
      `${
        mine ? `HTTP 200, live, channel id ${mine.channelId}` : "HTTP 200, not live (no row)"
      }; deprecated since 2026-06-23 but answering (the only official source of channel ids)`,
    );
  } catch (e) {
    if (e instanceof KickApiError && (e.kind === "not_found" || e.status === 410)) {
      return result(
        name,
        t,
        "warn",
        `HTTP ${e.status}: v1 /livestreams is gone (deprecated 2026-06-23)`,
        "channel ids are then known only from rows that already have one or from the unofficial lookup " +
          "(KICK_UNOFFICIAL_CHANNEL_LOOKUP=true); new streamers get no Pusher subscription otherwise",
      );
    }
    return result(name, t, "fail", apiDetail(e), apiRemedy(e));
  }
}

/** `api /users/livestreams`: an undocumented endpoint; `warn` when it does not answer. */
async function checkUsersLivestreams(
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
      return result(name, t, "ok", `HTTP ${res.status}, ${rows} rows`);
    }
    return result(
      name,
      t,
      "warn",
      `not available (HTTP ${res.status})`,
      "nothing to do now: kickmon does not need it (it is undocumented; a possible successor of v1 /livestreams)",
    );
  } catch (e) {
    return result(
      name,
      t,
      "warn",
      `not available: ${errText(e)}`,
      "nothing to do now: kickmon does not need it",
    );
  }
}

/** `webhook public key`: `GET /public-key` imports as an RSA key; matches a configured one. */
async function checkPublicKey(config: Config, api: KickApi, found: Found): Promise<CheckResult> {
  const t = performance.now();
  const name = "webhook public key";
  const bad: CheckStatus = config.kick.webhook.enabled ? "fail" : "warn";
  const configured = config.kick.webhook.publicKeyPem;
  if (configured) {
    try {
      await importKickPublicKey(configured);
    } catch (e) {
      return result(
        name,
        t,
        "fail",
        `KICK_WEBHOOK_PUBLIC_KEY does not import: ${errText(e)}`,
        "paste the whole PEM from GET /public-key, or leave the variable empty to fetch it",
      );
    }
  }
  if (!found.token) return result(name, t, bad, NO_TOKEN, FIX_TOKEN);
  try {
    const pem = await api.getPublicKey();
    await importKickPublicKey(pem);
    const norm = (s: string) => s.replace(/\s+/g, "");
    if (configured && norm(configured) !== norm(pem)) {
      return result(
        name,
        t,
        "warn",
        "HTTP 200, but it differs from KICK_WEBHOOK_PUBLIC_KEY",
        "Kick rotated its key: update KICK_WEBHOOK_PUBLIC_KEY or leave it empty",
      );
    }
    return result(
      name,
      t,
      "ok",
      `HTTP 200, RSA public key imports${configured ? ", same as KICK_WEBHOOK_PUBLIC_KEY" : ""}`,
    );
  } catch (e) {
    return result(name, t, bad, apiDetail(e), apiRemedy(e));
  }
}

/** `unofficial lookup`: `kick.com/api/v2/channels/{slug}` when enabled. */
async function checkUnofficial(config: Config, api: KickApi, found: Found): Promise<CheckResult> {
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

/** A one-shot Pusher client on a plain WebSocket. */
class PusherProbe {
  readonly #ws: WebSocket;
  readonly #queue: Array<{ event: string; data: unknown; channel?: string }> = [];
  #waiter: (() => void) | null = null;
  #closed: string | null = null;

  constructor(url: string) {
    this.#ws = new WebSocket(url);
    this.#ws.onmessage = (m) => {
      try {
        const f = JSON.parse(String(m.data));
        const data = typeof f.data === "string"
          ? (() => {
            try {
              return JSON.parse(f.data);
            } catch {
              return f.data;
            }
          })()
          : f.data;
        this.#queue.push({ event: String(f.event), data, channel: f.channel });
      } catch { /* not a Pusher frame */ }
      this.#waiter?.();
    };
    this.#ws.onclose = (c) => {
      this.#closed = `closed ${c.code}${c.reason ? ` ${c.reason}` : ""}`;
      this.#waiter?.();
    };
    this.#ws.onerror = (e) => {
      this.#closed ??= `WebSocket error: ${(e as ErrorEvent).message ?? "connection failed"}`;
      this.#waiter?.();
    };
  }

  /** The next frame whose event is in `events`, or a `pusher:error`; throws on close/timeout. */
  async next(
    events: string[],
    timeoutMs: number,
  ): Promise<{ event: string; data: unknown; channel?: string }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const i = this.#queue.findIndex((f) =>
        events.includes(f.event) || f.event === "pusher:error"
      );
      if (i >= 0) return this.#queue.splice(i, 1)[0];
      if (this.#closed) throw new Error(this.#closed);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${events.join(" or ")} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = null;
    }
  }

  send(event: string, data: unknown): void {
    this.#ws.send(JSON.stringify({ event, data }));
  }

  close(): void {
    try {
      this.#ws.close(1000);
    } catch { /* already closed */ }
  }
}

function pusherErrorText(data: unknown): { code: number | null; text: string } {
  const d = (data ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof d.code === "number" ? d.code : null;
  return { code, text: `pusher:error ${code ?? "(no code)"}: ${String(d.message ?? "")}` };
}

const PUSHER_REFUSED_REMEDY =
  "Kick refused the Pusher app key: read the current key from kick.com (browser DevTools → WS) " +
  "and set KICK_PUSHER_KEY (and KICK_PUSHER_CLUSTER)";

/** `pusher connect`, `pusher subscribe`, `pusher ping`. */
async function checkPusher(config: Config, found: Found, timeoutMs: number) {
  const p = config.kick.pusher;
  const host = p.host.includes(":") && !p.host.startsWith("[") ? `[${p.host}]` : p.host;
  const url = `${p.tls ? "wss" : "ws"}://${host}:${p.port}/app/${
    encodeURIComponent(p.key)
  }?protocol=7&client=js&version=8.4.0&flash=false`;
  const out: CheckResult[] = [];
  let t = performance.now();
  const probe = new PusherProbe(url);
  try {
    try {
      const f = await probe.next(["pusher:connection_established"], timeoutMs);
      if (f.event === "pusher:error") {
        const { code, text } = pusherErrorText(f.data);
        const refused = code !== null && code >= 4000 && code <= 4099;
        out.push(
          result(
            "pusher connect",
            t,
            "fail",
            `${p.host}:${p.port}: ${text}`,
            refused
              ? (code === 4000
                ? "this server wants TLS: set KICK_PUSHER_TLS=true"
                : PUSHER_REFUSED_REMEDY)
              : "Pusher answered with an error: retry later; if it stays, check KICK_PUSHER_HOST",
          ),
        );
        throw new Error("not connected");
      }
      const d = (f.data ?? {}) as { activity_timeout?: unknown; socket_id?: unknown };
      if (typeof d.activity_timeout !== "number") {
        out.push(
          result(
            "pusher connect",
            t,
            "fail",
            "pusher:connection_established without activity_timeout",
            "check that KICK_PUSHER_HOST is a Pusher server",
          ),
        );
        throw new Error("not connected");
      }
      out.push(
        result(
          "pusher connect",
          t,
          "ok",
          `${p.host}:${p.port}${
            p.tls ? " (TLS)" : ""
          }: connection_established, activity_timeout ${d.activity_timeout} s`,
        ),
      );
    } catch (e) {
      if (out.length === 0) {
        out.push(
          result(
            "pusher connect",
            t,
            "fail",
            `${p.host}:${p.port}: ${errText(e)}`,
            "check KICK_PUSHER_HOST, KICK_PUSHER_PORT and KICK_PUSHER_TLS, and that this host reaches it",
          ),
        );
      }
      const why = "not connected (see the pusher connect line)";
      const fix = "fix the pusher connect check first";
      t = performance.now();
      out.push(result("pusher subscribe", t, "fail", why, fix));
      out.push(result("pusher ping", t, "fail", why, fix));
      return out;
    }

    t = performance.now();
    if (found.channelId === null) {
      out.push(
        result(
          "pusher subscribe",
          t,
          "warn",
          "no channel id known (streamer offline and no row has one)",
          "run doctor again while the streamer is live, or with --streamer NAME of a live channel",
        ),
      );
    } else {
      const channel = channelName(found.channelId);
      probe.send("pusher:subscribe", { auth: "", channel });
      try {
        const f = await probe.next(
          ["pusher_internal:subscription_succeeded", "pusher:subscription_error"],
          timeoutMs,
        );
        if (f.event === "pusher_internal:subscription_succeeded" && f.channel === channel) {
          out.push(
            result(
              "pusher subscribe",
              t,
              "ok",
              `${channel} (from ${found.channelIdFrom}): subscription_succeeded`,
            ),
          );
        } else {
          out.push(
            result(
              "pusher subscribe",
              t,
              "fail",
              `${channel}: ${f.event === "pusher:error" ? pusherErrorText(f.data).text : f.event}`,
              "Kick refused a public channel: check the channel id, then retry later",
            ),
          );
        }
      } catch (e) {
        out.push(
          result(
            "pusher subscribe",
            t,
            "fail",
            `${channel}: ${errText(e)}`,
            "check that KICK_PUSHER_HOST is Kick's Pusher server",
          ),
        );
      }
    }

    t = performance.now();
    probe.send("pusher:ping", {});
    try {
      const f = await probe.next(["pusher:pong"], timeoutMs);
      if (f.event !== "pusher:pong") throw new Error(pusherErrorText(f.data).text);
      out.push(result("pusher ping", t, "ok", `pong in ${round(performance.now() - t)} ms`));
    } catch (e) {
      out.push(
        result(
          "pusher ping",
          t,
          "fail",
          errText(e),
          "the connection does not answer pings: check proxies between this host and Pusher",
        ),
      );
    }
    return out;
  } finally {
    probe.close();
  }
}

/** `webhook listener`: something answers on `KICK_WEBHOOK_LISTEN` (a running kickmon). */
async function checkWebhookListener(config: Config, timeoutMs: number): Promise<CheckResult> {
  const t = performance.now();
  const w = config.kick.webhook;
  const name = "webhook listener";
  if (!w.enabled) return result(name, t, "ok", "webhooks disabled (KICK_WEBHOOK_ENABLED=false)");
  const url = healthUrl({ hostname: w.hostname, port: w.port }).replace(
    /\/health$/,
    "/webhooks/kick",
  );
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(Math.min(timeoutMs, 3000)) });
    await res.body?.cancel();
    return result(
      name,
      t,
      "ok",
      `${w.hostname}:${w.port} is bound (GET answered HTTP ${res.status})`,
    );
  } catch (e) {
    return result(
      name,
      t,
      "warn",
      `nothing listens on ${w.hostname}:${w.port} (${errText(e)})`,
      "start kickmon ('kickmon start' or 'systemctl start kickmon') and make this port reachable from Kick",
    );
  }
}

/**
 * Runs every check in order. Never throws for a failing check: each becomes
 * a `fail` line. Secrets (configured and the access token) are masked in
 * every `detail` and `remedy`.
 *
 * @param opts streamer slug, per-step timeout in ms, environment.
 * @returns one result per check, in order.
 *
 * @example
 * ```ts
 * const checks = await runDoctor({ streamer: "bossmanjack" });
 * const failed = checks.some((c) => c.status === "fail");
 * ```
 */
export async function runDoctor(opts: DoctorOptions = {}): Promise<CheckResult[]> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const env = opts.env ?? readEnvironment();
  const { check, config } = checkConfig(env);
  const checks: CheckResult[] = [check];
  if (!config) return mask(checks, envSecrets(env));
  const found: Found = {
    rows: null,
    slug: null,
    userId: null,
    channelId: null,
    channelIdFrom: null,
    token: null,
  };
  checks.push(...await checkDatabase(config, found));

  const wanted = opts.streamer?.trim().replace(/^https?:\/\/(www\.)?kick\.com\//i, "")
    .replace(/\/+$/, "");
  const active = (found.rows ?? []).filter((r) => r.isActive);
  const row = wanted
    ? (found.rows ?? []).find((r) => r.username?.toLowerCase() === wanted.toLowerCase())
    : active.find((r) => r.username);
  found.slug = wanted || row?.username || null;
  if (row?.kickChannelId) {
    found.channelId = row.kickChannelId;
    found.channelIdFrom = "the database";
  } else if (!wanted) {
    const withId = active.find((r) => r.kickChannelId);
    if (withId?.kickChannelId) {
      found.channelId = withId.kickChannelId;
      found.channelIdFrom = `the database (${withId.username ?? `#${withId.id}`})`;
    }
  }

  // One attempt per request: a diagnosis reports what happens, it does not retry it away.
  const { api, tokens } = createKickApi(config, { oneShot: true, timeoutMs });
  try {
    checks.push(await checkOAuth(config, tokens, found, timeoutMs));
    checks.push(await checkChannels(api, found));
    checks.push(await checkLivestreams(api, found));
    checks.push(await checkUsersLivestreams(config, found, timeoutMs));
    checks.push(await checkPublicKey(config, api, found));
    checks.push(await checkUnofficial(config, api, found));
    checks.push(...await checkPusher(config, found, timeoutMs));
    checks.push(await checkWebhookListener(config, timeoutMs));
  } finally {
    api.close();
    tokens.close();
  }
  return mask(checks, [...secretValues(config), ...(found.token ? [found.token] : [])]);
}

/** Secrets straight from the environment, for when the configuration does not load. */
function envSecrets(env: Record<string, string | undefined>): string[] {
  const out = [env.KICK_CLIENT_SECRET, env.DATABASE_PASSWORD];
  try {
    if (env.DATABASE_URL) out.push(decodeURIComponent(new URL(env.DATABASE_URL).password));
  } catch { /* not a URL: nothing to take from it */ }
  return out.filter((s): s is string => typeof s === "string" && s.length >= 3);
}

function mask(checks: CheckResult[], secrets: string[]): CheckResult[] {
  const hide = (s: string) => {
    for (const v of secrets) if (v && v.length >= 3) s = s.split(v).join("***");
    return s;
  };
  return checks.map((c) => ({
    ...c,
    detail: hide(c.detail),
    ...(c.remedy ? { remedy: hide(c.remedy) } : {}),
  }));
}

/**
 * One report line: `ok   name  detail (N ms)`, and on warn/fail `: remedy`.
 *
 * @example
 * ```ts
 * formatCheck({ name: "oauth token", status: "ok", detail: "token obtained", ms: 12 });
 * // "ok    oauth token             token obtained (12 ms)"
 * ```
 */
export function formatCheck(c: CheckResult): string {
  const line = `${c.status.padEnd(5)} ${c.name.padEnd(23)} ${c.detail} (${c.ms} ms)`;
  return c.remedy ? `${line} → ${c.remedy}` : line;
}

/**
 * Registers `kickmon doctor` on the program.
 *
 * @param program the root command.
 * @param setExit receives 0 when no check failed, 1 otherwise.
 *
 * @example
 * ```ts
 * registerDoctorCommand(program, (c) => (code = c));
 * ```
 */
export function registerDoctorCommand(program: Command, setExit: SetExit): void {
  program.command("doctor")
    .description("check configuration, database, Kick's API, Pusher and webhooks, one line each")
    .option("--streamer <name>", "the streamer to check (default: the first active row)")
    .option("--json", "print JSON")
    .action(async (opts: { streamer?: string; json?: boolean }) => {
      const checks = await runDoctor({ streamer: opts.streamer });
      const failed = checks.some((c) => c.status === "fail");
      if (opts.json) {
        console.log(JSON.stringify({ ok: !failed, checks }, null, 2));
      } else {
        for (const c of checks) console.log(formatCheck(c));
        const n = (s: CheckStatus) => checks.filter((c) => c.status === s).length;
        console.log(`${n("ok")} ok, ${n("warn")} warn, ${n("fail")} fail`);
      }
      setExit(failed ? EXIT.failure : EXIT.ok);
    });
}
