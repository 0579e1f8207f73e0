/**
 * What the contract suite is held against: a {@linkcode ContractTarget}
 * (base URLs, Pusher URL, credentials, the streamer to look at, how long to
 * watch Pusher), and {@linkcode liveTargetFromEnv}, which reads it from the
 * same variables kickmon's configuration reads (`src/config/config.ts`),
 * defaulting to the real Kick.
 *
 * @module
 */
import { CONFIG_DOCS, type ConfigVariable } from "../../src/config/config.ts";

/** Information the suite passes to {@linkcode ContractTarget.onSubscribed}. */
export interface SubscribedInfo {
  /** The Pusher channel id subscribed to (`channel.{channelId}`). */
  readonly channelId: number;
  /** Its broadcaster user id. */
  readonly broadcasterUserId: number;
  /** Its slug. */
  readonly slug: string;
}

/**
 * Everything the suite needs to reach one Kick (the real one or the
 * simulator).
 *
 * @example
 * ```ts
 * const target: ContractTarget = {
 *   oauthBaseUrl: "https://id.kick.com",
 *   apiBaseUrl: "https://api.kick.com/public/v1",
 *   pusherUrl: "wss://ws-us2.pusher.com/app/32cbd69e4b950bf97679?protocol=7&client=js&version=8.4.0&flash=false",
 *   clientId: "…",
 *   clientSecret: "…",
 *   observeSeconds: 30,
 *   reportDir: "contract-report",
 * };
 * ```
 */
export interface ContractTarget {
  /** Origin of `POST /oauth/token`, e.g. `https://id.kick.com` (§4.1). */
  readonly oauthBaseUrl: string;
  /** e.g. `https://api.kick.com/public/v1` (§4.3). */
  readonly apiBaseUrl: string;
  /** e.g. `https://kick.com/api/v2`; absent: the unofficial lookup is not checked (§2, §5). */
  readonly unofficialBaseUrl?: string;
  /** Full Pusher URL, `ws(s)://host:port/app/{key}?protocol=7&…` (§1.1). */
  readonly pusherUrl: string;
  /** Kick app client id. */
  readonly clientId: string;
  /** Kick app client secret (redacted from every message and file). */
  readonly clientSecret: string;
  /** Slug to look up; absent: the most-watched live stream from `/livestreams` is used. */
  readonly streamer?: string;
  /** How long to watch the subscribed channel for status frames, seconds. */
  readonly observeSeconds: number;
  /** Where failures and `summary.json` go (created). */
  readonly reportDir: string;
  /** Timeout of each HTTP request and each awaited Pusher frame, ms (default 15 000). */
  readonly timeoutMs?: number;
  /**
   * Pusher events that must be seen within the window (the simulator run
   * makes the simulator send them); the window ends early once all are seen.
   * Absent: whatever arrives is checked, and none arriving is not a failure.
   */
  readonly requireEvents?: readonly string[];
  /** Called once `channel.{id}` is acknowledged (the simulator run emits its frames here). */
  readonly onSubscribed?: (info: SubscribedInfo) => void | Promise<void>;
}

/** Default observation window of the live run, seconds. */
export const DEFAULT_OBSERVE_SECONDS = 30;

/** Default report directory of the live run (relative to the working directory). */
export const DEFAULT_REPORT_DIR = "contract-report";

/** {@linkcode liveTargetFromEnv}'s answer: a target, or why the live suite is skipped. */
export type LiveTarget =
  | { readonly ok: true; readonly target: ContractTarget }
  | { readonly ok: false; readonly reason: string };

/**
 * The live target from environment variables: `KICK_CLIENT_ID`,
 * `KICK_CLIENT_SECRET` (both required, else `ok: false` with the reason),
 * `KICK_OAUTH_URL`, `KICK_API_URL`, `KICK_UNOFFICIAL_CHANNEL_LOOKUP` +
 * `KICK_UNOFFICIAL_API_URL`, `KICK_PUSHER_KEY`/`_CLUSTER`/`_HOST`/`_PORT`/`_TLS`
 * with kickmon's defaults (`CONFIG_DOCS` in src/config/config.ts), plus
 * `KICK_CONTRACT_STREAMER` (slug), `KICK_CONTRACT_OBSERVE_SECONDS` (default
 * {@linkcode DEFAULT_OBSERVE_SECONDS}) and `KICKMON_CONTRACT_REPORT_DIR`
 * (default {@linkcode DEFAULT_REPORT_DIR}).
 *
 * @param env the environment, e.g. `Deno.env.toObject()`.
 * @example
 * ```ts
 * const live = liveTargetFromEnv(Deno.env.toObject());
 * if (!live.ok) console.log(`skipped: ${live.reason}`);
 * ```
 */
export function liveTargetFromEnv(env: Record<string, string | undefined>): LiveTarget {
  const get = (k: ConfigVariable) => {
    const v = env[k]?.trim();
    return v ? v : CONFIG_DOCS[k].def;
  };
  const missing = (["KICK_CLIENT_ID", "KICK_CLIENT_SECRET"] as const).filter((k) =>
    !env[k]?.trim()
  );
  if (missing.length > 0) {
    return {
      ok: false,
      reason: `${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not set ` +
        "(set both to a Kick app's credentials to check Kick's real answers)",
    };
  }
  const observe = Number(env.KICK_CONTRACT_OBSERVE_SECONDS?.trim() || DEFAULT_OBSERVE_SECONDS);
  const tls = /^(1|true|yes|on)$/i.test(get("KICK_PUSHER_TLS"));
  const rawHost = get("KICK_PUSHER_HOST") || `ws-${get("KICK_PUSHER_CLUSTER")}.pusher.com`;
  const host = rawHost.includes(":") && !rawHost.startsWith("[") ? `[${rawHost}]` : rawHost;
  const streamer = env.KICK_CONTRACT_STREAMER?.trim();
  return {
    ok: true,
    target: {
      oauthBaseUrl: get("KICK_OAUTH_URL"),
      apiBaseUrl: get("KICK_API_URL"),
      ...(/^(1|true|yes|on)$/i.test(get("KICK_UNOFFICIAL_CHANNEL_LOOKUP"))
        ? { unofficialBaseUrl: get("KICK_UNOFFICIAL_API_URL") }
        : {}),
      pusherUrl: `${tls ? "wss" : "ws"}://${host}:${get("KICK_PUSHER_PORT")}/app/${
        encodeURIComponent(get("KICK_PUSHER_KEY"))
      }?protocol=7&client=js&version=8.4.0&flash=false`,
      clientId: env.KICK_CLIENT_ID!.trim(),
      clientSecret: env.KICK_CLIENT_SECRET!.trim(),
      ...(streamer ? { streamer } : {}),
      observeSeconds: Number.isFinite(observe) && observe >= 0 ? observe : DEFAULT_OBSERVE_SECONDS,
      reportDir: env.KICKMON_CONTRACT_REPORT_DIR?.trim() || DEFAULT_REPORT_DIR,
    },
  };
}
