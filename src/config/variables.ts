/**
 * Every environment variable kickmon reads, one row each: the single source
 * from which `loadConfig`'s validation (`config.ts`), `kickmon config show`
 * and its redaction, `kickmon config generate-template`, `.env.example` and
 * the README's "Configuration" table (`docs.ts`) are derived. To add a
 * variable, add a row here and its place in `Config` (`types.ts`, the
 * assembly in `loadConfig`), then run `deno task docs`.
 *
 * Units. A number that is a duration or a size has its {@linkcode Unit} in its
 * row (the README's `unit` column). The variables are written in two units,
 * kept for compatibility with existing env files: the coarse timeouts and
 * intervals (`KICK_API_TIMEOUT`, `DATABASE_CONNECT_TIMEOUT`,
 * `MONITORING_RECONCILE_INTERVAL`, `MONITORING_RESYNC_INTERVAL`,
 * `MONITORING_SHUTDOWN_TIMEOUT`, `MONITORING_LEADER_TAKEOVER`) are in seconds; backoffs, timer and poll
 * periods are in milliseconds. Inside kickmon every duration is in ms
 * (`Config` fields end in `Ms`), except `database.connectTimeoutSec`.
 *
 * One concept (the variable table) in ~520 lines: the rows are the
 * documentation.
 *
 * @example
 * ```ts
 * import { VARIABLES } from "./variables.ts";
 * console.log(VARIABLES.KICK_API_TIMEOUT.unit); // "s"
 * ```
 *
 * @module
 */
import { z } from "zod";
import { bool, hostPort, httpUrl, int, nonEmpty, oneOf, text } from "./parsers.ts";
import { redactUrlPassword } from "./redact.ts";
import type { Config } from "./types.ts";

/** The unit a number is written in: milliseconds, seconds or bytes. */
export type Unit = "ms" | "s" | "bytes";

/** The word for each {@linkcode Unit} in prose (the env file's comments). */
export const UNIT_WORDS: Readonly<Record<Unit, string>> = {
  ms: "milliseconds",
  s: "seconds",
  bytes: "bytes",
};

/**
 * One configuration variable.
 *
 * @typeParam T what {@linkcode VariableRow.parse} yields.
 */
export interface VariableRow<T = unknown> {
  /** The default as written in an env file; `""` means none (or one computed at load). */
  readonly default: string;
  /** For a duration or size: the unit the value is written in. */
  readonly unit?: Unit;
  /** Its meaning, one sentence or two, Markdown (the README cell and the env file comment). */
  readonly doc: string;
  /** Validates the text (default filled in) into the value `loadConfig` assembles `Config` from. */
  readonly parse: z.ZodType<T, string>;
  /** A secret: never logged, printed as `[REDACTED]`, shipped empty in `.env.example`. */
  readonly secret?: boolean;
  /** For a value that embeds a secret (a URL's password): how it is printed. */
  readonly redact?: (value: string) => string;
  /**
   * Its effective value in a loaded `Config`, as `kickmon config show` prints
   * it before redaction, in the variable's own unit.
   */
  readonly show: (c: Config) => string;
}

/** A row, with `parse`'s output type kept for {@linkcode ParsedVariables}. */
function row<T>(r: VariableRow<T>): VariableRow<T> {
  return r;
}

const listen = (h: string, p: number) => `${h.includes(":") ? `[${h}]` : h}:${p}`;

/**
 * The rows, in documentation order (the order of `.env.example` and the README).
 *
 * @example
 * ```ts
 * VARIABLES.DATABASE_PORT.parse.parse("5432"); // 5432
 * ```
 */
export const VARIABLES = {
  KICK_CLIENT_ID: row({
    default: "",
    doc: "Kick app client id (kick.com/settings/developer). Required.",
    parse: nonEmpty,
    show: (c) => c.kick.clientId === "-" ? "" : c.kick.clientId,
  }),
  KICK_CLIENT_SECRET: row({
    default: "",
    doc: "Kick app client secret. Required. Secret.",
    parse: nonEmpty,
    secret: true,
    show: (c) => c.kick.clientSecret,
  }),
  KICK_OAUTH_URL: row({
    default: "https://id.kick.com",
    doc: "OAuth 2.1 server (client credentials).",
    parse: httpUrl,
    show: (c) => c.kick.oauthUrl,
  }),
  KICK_API_URL: row({
    default: "https://api.kick.com/public/v1",
    doc: "Official public API base URL.",
    parse: httpUrl,
    show: (c) => c.kick.apiUrl,
  }),
  KICK_API_MAX_REQUESTS_PER_MINUTE: row({
    default: "60",
    doc: "Request budget shared by every official-API caller.",
    parse: int(1, 100_000),
    show: (c) => String(c.kick.apiMaxRequestsPerMinute),
  }),
  KICK_API_TIMEOUT: row({
    default: "10",
    unit: "s",
    doc: "Official API / OAuth request timeout.",
    parse: int(1, 300, "seconds"),
    show: (c) => String(c.kick.apiTimeoutMs / 1000),
  }),
  KICK_UNOFFICIAL_CHANNEL_LOOKUP: row({
    default: "false",
    doc: "Also ask kick.com/api/v2 for channel ids (behind Cloudflare, unsupported by Kick).",
    parse: bool,
    show: (c) => String(c.kick.unofficialChannelLookup),
  }),
  KICK_UNOFFICIAL_API_URL: row({
    default: "https://kick.com/api/v2",
    doc: "Unofficial API base URL.",
    parse: httpUrl,
    show: (c) => c.kick.unofficialApiUrl,
  }),
  KICK_PUSHER_KEY: row({
    default: "32cbd69e4b950bf97679",
    doc: "Pusher app key used by kick.com.",
    parse: z.string().trim().regex(/^[A-Za-z0-9_-]{4,64}$/, {
      error: "expected a Pusher app key (letters and digits)",
    }),
    show: (c) => c.kick.pusher.key,
  }),
  KICK_PUSHER_CLUSTER: row({
    default: "us2",
    doc: "Pusher cluster.",
    parse: z.string().trim().regex(/^[a-z0-9-]{1,32}$/, {
      error: "expected a Pusher cluster name such as us2",
    }),
    show: (c) => c.kick.pusher.cluster,
  }),
  KICK_PUSHER_HOST: row({
    default: "",
    doc: "Pusher host; empty means ws-<cluster>.pusher.com.",
    parse: text,
    show: (c) => c.kick.pusher.host,
  }),
  KICK_PUSHER_PORT: row({
    default: "443",
    doc: "Pusher port.",
    parse: int(1, 65535, "a port"),
    show: (c) => String(c.kick.pusher.port),
  }),
  KICK_PUSHER_TLS: row({
    default: "true",
    doc: "Use wss:// (TLS) for Pusher.",
    parse: bool,
    show: (c) => String(c.kick.pusher.tls),
  }),
  KICK_PUSHER_MAX_CHANNELS_PER_CONNECTION: row({
    default: "250",
    doc: "Channels per Pusher connection before another connection (shard) is opened.",
    parse: int(1, 100_000),
    show: (c) => String(c.kick.pusher.maxChannelsPerConnection),
  }),
  KICK_PUSHER_CONNECT_SPACING: row({
    default: "15",
    unit: "ms",
    doc: "Least time between two Pusher connection attempts, at start and on every reconnect. " +
      "It spreads the burst Kick's Pusher sees when every connection (re)connects at once, at " +
      "start and after a network cut: at 15, ~67 attempts a second, so 50,000 channels at 250 " +
      "per connection (200 connections) are connecting within 3 s. Raise it (e.g. to 100-500) " +
      "when Pusher refuses or closes bursts of connections (4004 over quota, 4100 over " +
      "capacity, docs/kick-protocol.md §1.4); 0 lets every connection try at once.",
    parse: int(0, 60_000, "milliseconds"),
    show: (c) => String(c.kick.pusher.connectSpacingMs),
  }),
  KICK_PUSHER_PONG_TIMEOUT: row({
    default: "30000",
    unit: "ms",
    doc: "Wait for pusher:pong (after activity_timeout of silence) before replacing a socket.",
    parse: int(100, 600_000, "milliseconds"),
    show: (c) => String(c.kick.pusher.pongTimeoutMs),
  }),
  KICK_PUSHER_REFUSED_RETRY_DELAY: row({
    default: "60000",
    unit: "ms",
    doc: "Wait before retrying after a 4000-4099 refusal (wrong or rotated key, over quota).",
    parse: int(100, 3_600_000, "milliseconds"),
    show: (c) => String(c.kick.pusher.refusedRetryMs),
  }),
  KICK_WEBHOOK_ENABLED: row({
    default: "false",
    doc: "Receive Kick's official webhooks.",
    parse: bool,
    show: (c) => String(c.kick.webhook.enabled),
  }),
  KICK_WEBHOOK_LISTEN: row({
    default: "127.0.0.1:8081",
    doc: "Webhook listener address (host:port).",
    parse: hostPort,
    show: (c) => listen(c.kick.webhook.hostname, c.kick.webhook.port),
  }),
  KICK_WEBHOOK_PUBLIC_KEY: row({
    default: "",
    doc: "PEM that overrides Kick's webhook public key (default: fetched from the API).",
    parse: z.string().trim().refine(
      (v) => v === "" || v.includes("BEGIN PUBLIC KEY"),
      { error: "expected a PEM public key (-----BEGIN PUBLIC KEY-----…)" },
    ),
    show: (c) => c.kick.webhook.publicKeyPem ? "(PEM set)" : "",
  }),
  DATABASE_URL: row({
    default: "",
    doc: "postgres:// URL; when set, the DATABASE_* parts are ignored.",
    parse: z.string().trim().refine((v) => {
      if (v === "") return true;
      try {
        return ["postgres:", "postgresql:"].includes(new URL(v).protocol);
      } catch {
        return false;
      }
    }, { error: "expected postgres://user:password@host:port/database" }),
    redact: redactUrlPassword,
    show: (c) => c.database.url,
  }),
  DATABASE_HOST: row({
    default: "localhost",
    doc: "PostgreSQL host.",
    parse: nonEmpty,
    show: (c) => c.database.host,
  }),
  DATABASE_PORT: row({
    default: "5432",
    doc: "PostgreSQL port.",
    parse: int(1, 65535, "a port"),
    show: (c) => String(c.database.port),
  }),
  DATABASE_NAME: row({
    default: "kickmon",
    doc: "Database name.",
    parse: nonEmpty,
    show: (c) => c.database.name,
  }),
  DATABASE_USER: row({
    default: "kickmon",
    doc: "Database user.",
    parse: nonEmpty,
    show: (c) => c.database.user,
  }),
  DATABASE_PASSWORD: row({
    default: "",
    doc: "Database password. Secret.",
    // May legitimately begin or end with spaces: never trimmed.
    parse: z.string(),
    secret: true,
    show: (c) => c.database.password,
  }),
  DATABASE_SSLMODE: row({
    default: "disable",
    doc:
      "`disable`, `require` (TLS, certificate not checked) or `verify-full` (TLS; CA and host name checked).",
    parse: z.enum(["disable", "require", "verify-full"], {
      error: "expected disable, require or verify-full",
    }),
    show: (c) => c.database.sslmode,
  }),
  DATABASE_SSLROOTCERT: row({
    default: "",
    doc: "verify-full only: PEM file of the CA certificates to trust (libpq's sslrootcert); " +
      "empty means the system's roots. The binary must be allowed to read it " +
      "(`KICKMON_READ_PATHS` at build).",
    parse: z.string(),
    show: (c) => c.database.sslRootCert ? "(PEM read)" : "",
  }),
  DATABASE_POOL_SIZE: row({
    default: "5",
    doc: "Maximum PostgreSQL connections.",
    parse: int(2, 100),
    show: (c) => String(c.database.poolSize),
  }),
  DATABASE_CONNECT_TIMEOUT: row({
    default: "5",
    unit: "s",
    doc: "Connect timeout.",
    parse: int(1, 300, "seconds"),
    show: (c) => String(c.database.connectTimeoutSec),
  }),
  DATABASE_SCHEMA: row({
    default: "public",
    doc:
      "Schema of the `streamers` and `status_events` tables (kickmon's own data is always in the schema `kickmon`).",
    parse: z.string().trim().min(1).max(63, { error: "at most 63 bytes" }),
    show: (c) => c.database.schema,
  }),
  MONITORING_RECONNECT_DELAY: row({
    default: "1000",
    unit: "ms",
    doc: "Base reconnect backoff (exponential, full jitter).",
    parse: int(10, 600_000, "milliseconds"),
    show: (c) => String(c.monitoring.reconnectDelayMs),
  }),
  MONITORING_MAX_RECONNECT_DELAY: row({
    default: "30000",
    unit: "ms",
    doc: "Reconnect backoff cap; at least `MONITORING_RECONNECT_DELAY`.",
    parse: int(100, 3_600_000, "milliseconds"),
    show: (c) => String(c.monitoring.maxReconnectDelayMs),
  }),
  MONITORING_MAX_RECONNECT_ATTEMPTS: row({
    default: "0",
    doc: "Consecutive failed reconnects before exiting 1 (systemd restarts); 0 = never give up.",
    parse: int(0, 1_000_000),
    show: (c) => String(c.monitoring.maxReconnectAttempts),
  }),
  MONITORING_RECONCILE_INTERVAL: row({
    default: "60",
    unit: "s",
    doc: "Time between reconciliations against the official API.",
    parse: int(1, 86_400, "seconds"),
    show: (c) => String(c.monitoring.reconcileIntervalMs / 1000),
  }),
  MONITORING_RESYNC_INTERVAL: row({
    default: "300",
    unit: "s",
    doc: "Time between full re-reads of the streamers table (safety net for lost NOTIFYs).",
    parse: int(1, 86_400, "seconds"),
    show: (c) => String(c.monitoring.resyncIntervalMs / 1000),
  }),
  MONITORING_SHUTDOWN_TIMEOUT: row({
    default: "10",
    unit: "s",
    doc: "Time to flush pending writes on SIGTERM/SIGINT.",
    parse: int(1, 600, "seconds"),
    show: (c) => String(c.monitoring.shutdownTimeoutMs / 1000),
  }),
  MONITORING_LEADER_TAKEOVER: row({
    default: "10",
    unit: "s",
    doc:
      'High availability: the longest a standby waits to take over the leader\'s work (reconciliation, identity resolution, webhook subscriptions) after the leader died or lost the database; at least 5. See "High availability".',
    parse: int(5, 3600, "seconds"),
    show: (c) => String(c.monitoring.leaderTakeoverMs / 1000),
  }),
  MONITORING_LEADER_ELIGIBLE: row({
    default: "auto",
    doc:
      "Whether this instance may become the leader: `true`, `false`, or `auto` (yes for `kickmon start`; for `kickmon start --manual` only when it has its state directory to itself, i.e. no service runs beside it).",
    parse: oneOf(["auto", "true", "false"], "expected auto, true or false"),
    show: (c) => c.monitoring.leaderEligible,
  }),
  MONITORING_LIST_FOLLOW: row({
    default: "auto",
    doc:
      "How list changes are seen: `trigger` (LISTEN; installs the list trigger at start if it may), `poll`, or `auto` (LISTEN when the list trigger is installed, else poll).",
    parse: oneOf(["auto", "trigger", "poll"], "expected auto, trigger or poll"),
    show: (c) => c.monitoring.listFollow,
  }),
  MONITORING_LIST_POLL_INTERVAL: row({
    default: "1000",
    unit: "ms",
    doc: "Time between checks of the `streamers` table when the list is polled.",
    parse: int(100, 3_600_000, "milliseconds"),
    show: (c) => String(c.monitoring.listPollIntervalMs),
  }),
  SYSTEM_LOG_LEVEL: row({
    default: "info",
    doc: "trace, debug, info, warning, error or fatal.",
    parse: z.string().trim().toLowerCase().transform((v) => v === "warn" ? "warning" : v)
      .pipe(z.enum(["trace", "debug", "info", "warning", "error", "fatal"], {
        error: "expected trace, debug, info, warning, error or fatal",
      })),
    show: (c) => c.system.logLevel,
  }),
  SYSTEM_JSON_LOGGING: row({
    default: "true",
    doc: "JSON lines on stdout (false: plain text).",
    parse: bool,
    show: (c) => String(c.system.jsonLogging),
  }),
  SYSTEM_STATE_DIRECTORY: row({
    default: "",
    doc: "State directory (spool, PID file); default $STATE_DIRECTORY, else /var/lib/kickmon " +
      "in the bundle and the binary, ./state from source.",
    parse: text,
    show: (c) => c.system.stateDirectory,
  }),
  SYSTEM_SPOOL_MAX_BYTES: row({
    default: "67108864",
    unit: "bytes",
    doc: "Bound on the outage spool file.",
    parse: int(65_536, 2 ** 40, "bytes"),
    show: (c) => String(c.system.spoolMaxBytes),
  }),
  HEALTH_CHECK_ENABLED: row({
    default: "true",
    doc: "Serve /health and /metrics.",
    parse: bool,
    show: (c) => String(c.health.enabled),
  }),
  HEALTH_CHECK_LISTEN: row({
    default: "127.0.0.1:8080",
    doc: "Health/metrics listen address.",
    parse: hostPort,
    show: (c) => listen(c.health.hostname, c.health.port),
  }),
  MANUAL_MODE_REFRESH_RATE: row({
    default: "1000",
    unit: "ms",
    doc: "Live view redraw period.",
    parse: int(50, 60_000, "milliseconds"),
    show: (c) => String(c.manual.refreshRateMs),
  }),
  MANUAL_MODE_MAX_STREAMERS: row({
    default: "50",
    doc: "Rows shown by the live view.",
    parse: int(1, 100_000),
    show: (c) => String(c.manual.maxStreamers),
  }),
  KICKMON_ENV_FILE: row({
    default: "",
    doc: "Path of the env file the environment came from; not loaded at start. Warned about " +
      "when others can read it; re-read on SIGHUP (log level at once, others need a restart).",
    parse: text,
    show: (c) => c.envFile ?? "",
  }),
};

/** One configuration variable's name. */
export type ConfigVariable = keyof typeof VARIABLES;

/**
 * Every environment variable kickmon reads, in documentation order.
 *
 * @example
 * ```ts
 * CONFIG_VARIABLES.includes("DATABASE_URL"); // true
 * ```
 */
export const CONFIG_VARIABLES: readonly ConfigVariable[] = Object.keys(
  VARIABLES,
) as ConfigVariable[];

/**
 * Variables whose values are secrets: never logged, redacted by `config show`.
 *
 * @example
 * ```ts
 * SECRET_VARIABLES.has("DATABASE_PASSWORD"); // true
 * ```
 */
export const SECRET_VARIABLES: ReadonlySet<ConfigVariable> = new Set(
  CONFIG_VARIABLES.filter((name) => VARIABLES[name].secret),
);

/**
 * Each variable's default (as written in an env file) and meaning: a view of
 * {@linkcode VARIABLES} for callers that need only these two.
 *
 * @example
 * ```ts
 * CONFIG_DOCS.KICK_PUSHER_PORT.def; // "443"
 * ```
 */
export const CONFIG_DOCS: Readonly<Record<ConfigVariable, { def: string; doc: string }>> = Object
  .fromEntries(
    CONFIG_VARIABLES.map((
      name,
    ) => [name, { def: VARIABLES[name].default, doc: VARIABLES[name].doc }]),
  ) as Record<ConfigVariable, { def: string; doc: string }>;

/** Every variable's value after {@linkcode parseVariables}, typed by its row's `parse`. */
export type ParsedVariables = {
  readonly [K in ConfigVariable]: typeof VARIABLES[K] extends VariableRow<infer T> ? T : never;
};

/** One variable that did not parse, with the parser's message. */
export interface VariableIssue {
  readonly variable: string;
  readonly message: string;
}

const schema = z.object(
  Object.fromEntries(CONFIG_VARIABLES.map((name) => [name, VARIABLES[name].parse])),
);

/**
 * Parses the text of every variable (defaults already filled in) with its
 * row's `parse`, all at once so that every bad one is reported.
 *
 * @param input variable name → text, every {@linkcode CONFIG_VARIABLES} entry present.
 * @returns the typed values, or every issue and the zod error (for a `cause`).
 *
 * @example
 * ```ts
 * const input = Object.fromEntries(CONFIG_VARIABLES.map((n) => [n, VARIABLES[n].default]));
 * const r = parseVariables({ ...input, KICK_CLIENT_ID: "id", KICK_CLIENT_SECRET: "s" });
 * if (r.ok) console.log(r.values.KICK_API_TIMEOUT); // 10 (seconds)
 * ```
 */
export function parseVariables(
  input: Readonly<Record<ConfigVariable, string>>,
):
  | { readonly ok: true; readonly values: ParsedVariables }
  | { readonly ok: false; readonly issues: readonly VariableIssue[]; readonly error: z.ZodError } {
  const parsed = schema.safeParse(input);
  if (parsed.success) return { ok: true, values: parsed.data as unknown as ParsedVariables };
  return {
    ok: false,
    issues: parsed.error.issues.map((i) => ({
      variable: String(i.path[0] ?? "?"),
      message: i.message,
    })),
    error: parsed.error,
  };
}
