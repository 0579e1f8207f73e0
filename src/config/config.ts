/**
 * kickmon's configuration: read from environment variables (systemd's
 * `EnvironmentFile=` in production, `deno run --env-file` in development),
 * validated with zod into one typed {@linkcode Config}.
 *
 * A wrong value is reported as a {@linkcode ConfigError} naming each
 * variable and what was expected. Secrets never leave this module in clear
 * text except through the typed object itself: {@linkcode redactedConfig}
 * is what `kickmon config show` prints.
 *
 * @module
 */
import { z } from "zod";
import { defaultStateDirectory } from "../build_info.ts";
import { bool, hostPort, httpUrl, int, nonEmpty } from "./parsers.ts";
import { redactUrlPassword } from "./redact.ts";
import type { Config, DatabaseConfig } from "./types.ts";

export type { Config, DatabaseConfig } from "./types.ts";
export { redactUrlPassword } from "./redact.ts";

/** Every environment variable kickmon reads, in documentation order. */
export const CONFIG_VARIABLES = [
  "KICK_CLIENT_ID",
  "KICK_CLIENT_SECRET",
  "KICK_OAUTH_URL",
  "KICK_API_URL",
  "KICK_API_MAX_REQUESTS_PER_MINUTE",
  "KICK_API_TIMEOUT",
  "KICK_UNOFFICIAL_CHANNEL_LOOKUP",
  "KICK_UNOFFICIAL_API_URL",
  "KICK_PUSHER_KEY",
  "KICK_PUSHER_CLUSTER",
  "KICK_PUSHER_HOST",
  "KICK_PUSHER_PORT",
  "KICK_PUSHER_TLS",
  "KICK_PUSHER_MAX_CHANNELS_PER_CONNECTION",
  "KICK_PUSHER_PONG_TIMEOUT",
  "KICK_PUSHER_REFUSED_RETRY_DELAY",
  "KICK_WEBHOOK_ENABLED",
  "KICK_WEBHOOK_LISTEN",
  "KICK_WEBHOOK_PUBLIC_KEY",
  "DATABASE_URL",
  "DATABASE_HOST",
  "DATABASE_PORT",
  "DATABASE_NAME",
  "DATABASE_USER",
  "DATABASE_PASSWORD",
  "DATABASE_SSLMODE",
  "DATABASE_SSLROOTCERT",
  "DATABASE_POOL_SIZE",
  "DATABASE_CONNECT_TIMEOUT",
  "DATABASE_SCHEMA",
  "MONITORING_RECONNECT_DELAY",
  "MONITORING_MAX_RECONNECT_DELAY",
  "MONITORING_MAX_RECONNECT_ATTEMPTS",
  "MONITORING_RECONCILE_INTERVAL",
  "MONITORING_RESYNC_INTERVAL",
  "MONITORING_SHUTDOWN_TIMEOUT",
  "MONITORING_LIST_FOLLOW",
  "MONITORING_LIST_POLL_INTERVAL",
  "SYSTEM_LOG_LEVEL",
  "SYSTEM_JSON_LOGGING",
  "SYSTEM_STATE_DIRECTORY",
  "SYSTEM_SPOOL_MAX_BYTES",
  "HEALTH_CHECK_ENABLED",
  "HEALTH_CHECK_LISTEN",
  "MANUAL_MODE_REFRESH_RATE",
  "MANUAL_MODE_MAX_STREAMERS",
  "KICKMON_ENV_FILE",
] as const;

/** One configuration variable's name. */
export type ConfigVariable = typeof CONFIG_VARIABLES[number];

/** Variables whose values are secrets: never logged, redacted by `config show`. */
export const SECRET_VARIABLES: ReadonlySet<ConfigVariable> = new Set([
  "KICK_CLIENT_SECRET",
  "DATABASE_PASSWORD",
]);

/** Documentation for each variable: default (as written in an env file) and meaning. */
export const CONFIG_DOCS: Readonly<Record<ConfigVariable, { def: string; doc: string }>> = {
  KICK_CLIENT_ID: { def: "", doc: "Kick app client id (kick.com/settings/developer). Required." },
  KICK_CLIENT_SECRET: { def: "", doc: "Kick app client secret. Required. Secret." },
  KICK_OAUTH_URL: { def: "https://id.kick.com", doc: "OAuth 2.1 server (client credentials)." },
  KICK_API_URL: { def: "https://api.kick.com/public/v1", doc: "Official public API base URL." },
  KICK_API_MAX_REQUESTS_PER_MINUTE: {
    def: "60",
    doc: "Request budget shared by every official-API caller.",
  },
  KICK_API_TIMEOUT: { def: "10", doc: "Official API / OAuth request timeout, seconds." },
  KICK_UNOFFICIAL_CHANNEL_LOOKUP: {
    def: "false",
    doc: "Also ask kick.com/api/v2 for channel ids (behind Cloudflare, unsupported by Kick).",
  },
  KICK_UNOFFICIAL_API_URL: { def: "https://kick.com/api/v2", doc: "Unofficial API base URL." },
  KICK_PUSHER_KEY: { def: "32cbd69e4b950bf97679", doc: "Pusher app key used by kick.com." },
  KICK_PUSHER_CLUSTER: { def: "us2", doc: "Pusher cluster." },
  KICK_PUSHER_HOST: { def: "", doc: "Pusher host; empty means ws-<cluster>.pusher.com." },
  KICK_PUSHER_PORT: { def: "443", doc: "Pusher port." },
  KICK_PUSHER_TLS: { def: "true", doc: "Use wss:// (TLS) for Pusher." },
  KICK_PUSHER_MAX_CHANNELS_PER_CONNECTION: {
    def: "250",
    doc: "Channels per Pusher connection before another connection (shard) is opened.",
  },
  KICK_PUSHER_PONG_TIMEOUT: {
    def: "30000",
    doc:
      "ms to wait for pusher:pong (after activity_timeout of silence) before replacing a socket.",
  },
  KICK_PUSHER_REFUSED_RETRY_DELAY: {
    def: "60000",
    doc: "ms before retrying after a 4000-4099 refusal (wrong or rotated key, over quota).",
  },
  KICK_WEBHOOK_ENABLED: { def: "false", doc: "Receive Kick's official webhooks." },
  KICK_WEBHOOK_LISTEN: { def: "127.0.0.1:8081", doc: "Webhook listener address (host:port)." },
  KICK_WEBHOOK_PUBLIC_KEY: {
    def: "",
    doc: "PEM that overrides Kick's webhook public key (default: fetched from the API).",
  },
  DATABASE_URL: { def: "", doc: "postgres:// URL; when set, the DATABASE_* parts are ignored." },
  DATABASE_HOST: { def: "localhost", doc: "PostgreSQL host." },
  DATABASE_PORT: { def: "5432", doc: "PostgreSQL port." },
  DATABASE_NAME: { def: "kickmon", doc: "Database name." },
  DATABASE_USER: { def: "kickmon", doc: "Database user." },
  DATABASE_PASSWORD: { def: "", doc: "Database password. Secret." },
  DATABASE_SSLMODE: {
    def: "disable",
    doc:
      "`disable`, `require` (TLS, certificate not checked) or `verify-full` (TLS; CA and host name checked).",
  },
  DATABASE_SSLROOTCERT: {
    def: "",
    doc: "verify-full only: PEM file of the CA certificates to trust (libpq's sslrootcert); " +
      "empty means the system's roots. The binary must be allowed to read it (KICKMON_READ_PATHS at build).",
  },
  DATABASE_POOL_SIZE: { def: "5", doc: "Maximum PostgreSQL connections." },
  DATABASE_CONNECT_TIMEOUT: { def: "5", doc: "Connect timeout, seconds." },
  DATABASE_SCHEMA: {
    def: "public",
    doc:
      "Schema of the `streamers` and `status_events` tables (kickmon's own data is always in the schema `kickmon`).",
  },

  MONITORING_RECONNECT_DELAY: {
    def: "1000",
    doc: "Base reconnect backoff, ms (exponential, full jitter).",
  },
  MONITORING_MAX_RECONNECT_DELAY: { def: "30000", doc: "Reconnect backoff cap, ms." },
  MONITORING_MAX_RECONNECT_ATTEMPTS: {
    def: "0",
    doc: "Consecutive failed reconnects before exiting 1 (systemd restarts); 0 = never give up.",
  },
  MONITORING_RECONCILE_INTERVAL: {
    def: "60",
    doc: "Seconds between reconciliations against the official API.",
  },
  MONITORING_RESYNC_INTERVAL: {
    def: "300",
    doc: "Seconds between full re-reads of the streamers table (safety net for lost NOTIFYs).",
  },
  MONITORING_SHUTDOWN_TIMEOUT: {
    def: "10",
    doc: "Seconds to flush pending writes on SIGTERM/SIGINT.",
  },
  MONITORING_LIST_FOLLOW: {
    def: "auto",
    doc:
      "How list changes are seen: `trigger` (LISTEN; installs the list trigger at start if it may), `poll`, or `auto` (LISTEN when the list trigger is installed, else poll).",
  },

  MONITORING_LIST_POLL_INTERVAL: {
    def: "1000",
    doc: "ms between checks of the `streamers` table when the list is polled.",
  },

  SYSTEM_LOG_LEVEL: { def: "info", doc: "trace, debug, info, warning, error or fatal." },
  SYSTEM_JSON_LOGGING: { def: "true", doc: "JSON lines on stdout (false: plain text)." },
  SYSTEM_STATE_DIRECTORY: {
    def: "",
    doc: "State directory (spool, PID file); default $STATE_DIRECTORY, else /var/lib/kickmon " +
      "in the bundle and the binary, ./state from source.",
  },
  SYSTEM_SPOOL_MAX_BYTES: {
    def: "67108864",
    doc: "Bound on the outage spool file, bytes.",
  },
  HEALTH_CHECK_ENABLED: { def: "true", doc: "Serve /health and /metrics." },
  HEALTH_CHECK_LISTEN: { def: "127.0.0.1:8080", doc: "Health/metrics listen address." },
  MANUAL_MODE_REFRESH_RATE: { def: "1000", doc: "Live view redraw period, ms." },
  MANUAL_MODE_MAX_STREAMERS: { def: "50", doc: "Rows shown by the live view." },
  KICKMON_ENV_FILE: {
    def: "",
    doc: "Path of the env file the environment came from; not loaded at start. Warned about " +
      "when others can read it; re-read on SIGHUP (log level at once, others need a restart).",
  },
};

/** One problem with one variable. */
export interface ConfigIssue {
  readonly variable: ConfigVariable | string;
  readonly message: string;
}

/**
 * Thrown by {@linkcode loadConfig} when any variable is missing or malformed.
 * `issues` names every bad variable; `message` lists them one per line.
 *
 * @example
 * ```ts
 * try {
 *   loadConfig({ DATABASE_PORT: "abc" });
 * } catch (e) {
 *   if (e instanceof ConfigError) console.error(e.message);
 * }
 * ```
 */
export class ConfigError extends Error {
  /** Each bad variable with what was expected. */
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], options?: ErrorOptions) {
    super(
      `invalid configuration:\n${issues.map((i) => `  ${i.variable}: ${i.message}`).join("\n")}`,
      options,
    );
    this.name = "ConfigError";
    this.issues = issues;
  }
}

const schema = z.object({
  KICK_CLIENT_ID: nonEmpty,
  KICK_CLIENT_SECRET: nonEmpty,
  KICK_OAUTH_URL: httpUrl,
  KICK_API_URL: httpUrl,
  KICK_API_MAX_REQUESTS_PER_MINUTE: int(1, 100_000),
  KICK_API_TIMEOUT: int(1, 300, "seconds"),
  KICK_UNOFFICIAL_CHANNEL_LOOKUP: bool,
  KICK_UNOFFICIAL_API_URL: httpUrl,
  KICK_PUSHER_KEY: z.string().trim().regex(/^[A-Za-z0-9_-]{4,64}$/, {
    error: "expected a Pusher app key (letters and digits)",
  }),
  KICK_PUSHER_CLUSTER: z.string().trim().regex(/^[a-z0-9-]{1,32}$/, {
    error: "expected a Pusher cluster name such as us2",
  }),
  KICK_PUSHER_HOST: z.string().trim(),
  KICK_PUSHER_PORT: int(1, 65535, "a port"),
  KICK_PUSHER_TLS: bool,
  KICK_PUSHER_MAX_CHANNELS_PER_CONNECTION: int(1, 100_000),
  KICK_PUSHER_PONG_TIMEOUT: int(100, 600_000, "milliseconds"),
  KICK_PUSHER_REFUSED_RETRY_DELAY: int(100, 3_600_000, "milliseconds"),
  KICK_WEBHOOK_ENABLED: bool,
  KICK_WEBHOOK_LISTEN: hostPort,
  KICK_WEBHOOK_PUBLIC_KEY: z.string().trim().refine(
    (v) => v === "" || v.includes("BEGIN PUBLIC KEY"),
    { error: "expected a PEM public key (-----BEGIN PUBLIC KEY-----…)" },
  ),
  DATABASE_URL: z.string().trim().refine((v) => {
    if (v === "") return true;
    try {
      return ["postgres:", "postgresql:"].includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, { error: "expected postgres://user:password@host:port/database" }),
  DATABASE_HOST: nonEmpty,
  DATABASE_PORT: int(1, 65535, "a port"),
  DATABASE_NAME: nonEmpty,
  DATABASE_USER: nonEmpty,
  DATABASE_PASSWORD: z.string(),
  DATABASE_SSLMODE: z.enum(["disable", "require", "verify-full"], {
    error: "expected disable, require or verify-full",
  }),
  DATABASE_SSLROOTCERT: z.string(),
  DATABASE_POOL_SIZE: int(2, 100),
  DATABASE_CONNECT_TIMEOUT: int(1, 300, "seconds"),
  DATABASE_SCHEMA: z.string().trim().min(1).max(63, { error: "at most 63 bytes" }),
  MONITORING_RECONNECT_DELAY: int(10, 600_000, "milliseconds"),
  MONITORING_MAX_RECONNECT_DELAY: int(100, 3_600_000, "milliseconds"),
  MONITORING_MAX_RECONNECT_ATTEMPTS: int(0, 1_000_000),
  MONITORING_RECONCILE_INTERVAL: int(1, 86_400, "seconds"),
  MONITORING_RESYNC_INTERVAL: int(1, 86_400, "seconds"),
  MONITORING_SHUTDOWN_TIMEOUT: int(1, 600, "seconds"),
  MONITORING_LIST_FOLLOW: z.string().trim().toLowerCase().pipe(
    z.enum(["auto", "trigger", "poll"], { error: "expected auto, trigger or poll" }),
  ),
  MONITORING_LIST_POLL_INTERVAL: int(100, 3_600_000, "milliseconds"),
  SYSTEM_LOG_LEVEL: z.string().trim().toLowerCase().transform((v) => v === "warn" ? "warning" : v)
    .pipe(z.enum(["trace", "debug", "info", "warning", "error", "fatal"], {
      error: "expected trace, debug, info, warning, error or fatal",
    })),
  SYSTEM_JSON_LOGGING: bool,
  SYSTEM_STATE_DIRECTORY: z.string().trim(),
  SYSTEM_SPOOL_MAX_BYTES: int(65_536, 2 ** 40, "bytes"),
  HEALTH_CHECK_ENABLED: bool,
  HEALTH_CHECK_LISTEN: hostPort,
  MANUAL_MODE_REFRESH_RATE: int(50, 60_000, "milliseconds"),
  MANUAL_MODE_MAX_STREAMERS: int(1, 100_000),
  KICKMON_ENV_FILE: z.string().trim(),
});

/** Options for {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /**
   * Whether the Kick app credentials must be present. Commands that only touch
   * the database (`db migrate`, `streamers list`) pass `false`. Default `true`.
   */
  readonly requireKickCredentials?: boolean;
}

/**
 * Reads every variable in {@linkcode CONFIG_VARIABLES} from the process
 * environment, one `Deno.env.get` each, so that a narrow `--allow-env=…`
 * permission list suffices. Unset variables are simply absent.
 *
 * @returns the variables that are set.
 * @throws {Deno.errors.NotCapable} when the permission for one is missing.
 *
 * @example
 * ```ts
 * const config = loadConfig(readEnvironment());
 * ```
 */
export function readEnvironment(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...CONFIG_VARIABLES, "STATE_DIRECTORY"]) {
    const v = Deno.env.get(name);
    if (v !== undefined) out[name] = v;
  }
  return out;
}

/**
 * Validates an environment into a {@linkcode Config}. Empty strings count as
 * unset, so the default applies.
 *
 * @param env variable name → value (e.g. from {@linkcode readEnvironment}).
 * @throws {ConfigError} naming every missing or malformed variable.
 *
 * @example
 * ```ts
 * const config = loadConfig({
 *   KICK_CLIENT_ID: "id",
 *   KICK_CLIENT_SECRET: "secret",
 *   DATABASE_URL: "postgres://kickmon@localhost/kickmon",
 * });
 * console.log(config.kick.pusher.host); // ws-us2.pusher.com
 * ```
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>>,
  options: LoadConfigOptions = {},
): Config {
  const input: Record<string, string> = {};
  for (const name of CONFIG_VARIABLES) {
    const v = env[name];
    input[name] = v !== undefined && v.trim() !== "" ? v : CONFIG_DOCS[name].def;
  }
  if (options.requireKickCredentials === false) {
    if (input.KICK_CLIENT_ID === "") input.KICK_CLIENT_ID = "-";
    if (input.KICK_CLIENT_SECRET === "") input.KICK_CLIENT_SECRET = "-";
  }
  // DATABASE_PASSWORD may legitimately contain spaces; never trim it.
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({
      variable: String(i.path[0] ?? "?"),
      message: i.message,
    }));
    throw new ConfigError(issues, { cause: parsed.error });
  }
  const e = parsed.data;
  const dbFromUrl = e.DATABASE_URL !== "" ? new URL(e.DATABASE_URL) : null;
  const database: DatabaseConfig = dbFromUrl
    ? {
      url: withoutParams(e.DATABASE_URL, ["sslrootcert"]),
      host: decodeURIComponent(dbFromUrl.hostname) || "localhost",
      port: Number(dbFromUrl.port || 5432),
      name: decodeURIComponent(dbFromUrl.pathname.replace(/^\//, "")) || e.DATABASE_USER,
      user: decodeURIComponent(dbFromUrl.username) || e.DATABASE_USER,
      password: decodeURIComponent(dbFromUrl.password),
      sslmode: (dbFromUrl.searchParams.get("sslmode") as DatabaseConfig["sslmode"] | null) ??
        e.DATABASE_SSLMODE,
      poolSize: e.DATABASE_POOL_SIZE,
      connectTimeoutSec: e.DATABASE_CONNECT_TIMEOUT,
      schema: e.DATABASE_SCHEMA,
    }
    : {
      url: `postgres://${encodeURIComponent(e.DATABASE_USER)}${
        e.DATABASE_PASSWORD ? ":" + encodeURIComponent(e.DATABASE_PASSWORD) : ""
      }@${
        e.DATABASE_HOST.includes(":") ? `[${e.DATABASE_HOST}]` : e.DATABASE_HOST
      }:${e.DATABASE_PORT}/${encodeURIComponent(e.DATABASE_NAME)}`,
      host: e.DATABASE_HOST,
      port: e.DATABASE_PORT,
      name: e.DATABASE_NAME,
      user: e.DATABASE_USER,
      password: e.DATABASE_PASSWORD,
      sslmode: e.DATABASE_SSLMODE,
      poolSize: e.DATABASE_POOL_SIZE,
      connectTimeoutSec: e.DATABASE_CONNECT_TIMEOUT,
      schema: e.DATABASE_SCHEMA,
    };
  if (!["disable", "require", "verify-full"].includes(database.sslmode)) {
    throw new ConfigError([{
      variable: "DATABASE_URL",
      message: `sslmode=${database.sslmode} is not supported; use disable, require or verify-full`,
    }]);
  }
  const rootCertPath = dbFromUrl?.searchParams.get("sslrootcert") || e.DATABASE_SSLROOTCERT;
  const rootCert = rootCertPath
    ? readRootCert(rootCertPath, database.sslmode, dbFromUrl?.searchParams.has("sslrootcert"))
    : undefined;
  if (e.MONITORING_MAX_RECONNECT_DELAY < e.MONITORING_RECONNECT_DELAY) {
    throw new ConfigError([{
      variable: "MONITORING_MAX_RECONNECT_DELAY",
      message: "must be at least MONITORING_RECONNECT_DELAY",
    }]);
  }
  return {
    kick: {
      clientId: e.KICK_CLIENT_ID,
      clientSecret: e.KICK_CLIENT_SECRET,
      oauthUrl: e.KICK_OAUTH_URL,
      apiUrl: e.KICK_API_URL,
      apiMaxRequestsPerMinute: e.KICK_API_MAX_REQUESTS_PER_MINUTE,
      apiTimeoutMs: e.KICK_API_TIMEOUT * 1000,
      unofficialChannelLookup: e.KICK_UNOFFICIAL_CHANNEL_LOOKUP,
      unofficialApiUrl: e.KICK_UNOFFICIAL_API_URL,
      pusher: {
        key: e.KICK_PUSHER_KEY,
        cluster: e.KICK_PUSHER_CLUSTER,
        host: e.KICK_PUSHER_HOST || `ws-${e.KICK_PUSHER_CLUSTER}.pusher.com`,
        port: e.KICK_PUSHER_PORT,
        tls: e.KICK_PUSHER_TLS,
        maxChannelsPerConnection: e.KICK_PUSHER_MAX_CHANNELS_PER_CONNECTION,
        pongTimeoutMs: e.KICK_PUSHER_PONG_TIMEOUT,
        refusedRetryMs: e.KICK_PUSHER_REFUSED_RETRY_DELAY,
      },
      webhook: {
        enabled: e.KICK_WEBHOOK_ENABLED,
        hostname: e.KICK_WEBHOOK_LISTEN.hostname,
        port: e.KICK_WEBHOOK_LISTEN.port,
        publicKeyPem: e.KICK_WEBHOOK_PUBLIC_KEY || null,
      },
    },
    database: rootCert === undefined ? database : { ...database, sslRootCert: rootCert },
    monitoring: {
      reconnectDelayMs: e.MONITORING_RECONNECT_DELAY,
      maxReconnectDelayMs: e.MONITORING_MAX_RECONNECT_DELAY,
      maxReconnectAttempts: e.MONITORING_MAX_RECONNECT_ATTEMPTS,
      reconcileIntervalMs: e.MONITORING_RECONCILE_INTERVAL * 1000,
      resyncIntervalMs: e.MONITORING_RESYNC_INTERVAL * 1000,
      shutdownTimeoutMs: e.MONITORING_SHUTDOWN_TIMEOUT * 1000,
      listFollow: e.MONITORING_LIST_FOLLOW,
      listPollIntervalMs: e.MONITORING_LIST_POLL_INTERVAL,
    },
    system: {
      logLevel: e.SYSTEM_LOG_LEVEL,
      jsonLogging: e.SYSTEM_JSON_LOGGING,
      stateDirectory: e.SYSTEM_STATE_DIRECTORY || env.STATE_DIRECTORY?.split(":")[0] ||
        defaultStateDirectory(),
      spoolMaxBytes: e.SYSTEM_SPOOL_MAX_BYTES,
    },
    health: {
      enabled: e.HEALTH_CHECK_ENABLED,
      hostname: e.HEALTH_CHECK_LISTEN.hostname,
      port: e.HEALTH_CHECK_LISTEN.port,
    },
    manual: {
      refreshRateMs: e.MANUAL_MODE_REFRESH_RATE,
      maxStreamers: e.MANUAL_MODE_MAX_STREAMERS,
    },
    envFile: e.KICKMON_ENV_FILE || null,
  };
}

/**
 * The URL without the given query parameters. kickmon handles them itself;
 * postgres.js would send unknown ones to the server as run-time parameters,
 * which the server refuses.
 */
function withoutParams(url: string, names: readonly string[]): string {
  const u = new URL(url);
  if (!names.some((n) => u.searchParams.has(n))) return url;
  for (const n of names) u.searchParams.delete(n);
  return u.toString();
}

/**
 * Reads `DATABASE_SSLROOTCERT` (or the URL's `sslrootcert`) for verify-full.
 *
 * @returns the PEM text.
 * @throws {ConfigError} naming the variable when sslmode is not verify-full,
 *   the file cannot be read (missing, or not allowed by the permission flags),
 *   or it holds no PEM certificate.
 */
function readRootCert(path: string, sslmode: string, fromUrl = false): string {
  const variable = fromUrl ? "DATABASE_URL" : "DATABASE_SSLROOTCERT";
  const fail = (message: string, cause?: unknown): never => {
    throw new ConfigError([{ variable, message }], { cause });
  };
  if (sslmode !== "verify-full") {
    fail(`a root certificate is only used with sslmode verify-full (sslmode is ${sslmode})`);
  }
  let pem = "";
  try {
    pem = Deno.readTextFileSync(path);
  } catch (e) {
    fail(`cannot read ${path}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`, e);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    fail(`${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  return pem;
}

/**
 * Parses an env file (`KEY=value` lines, `#` comments, optional `export `,
 * single or double quotes) as systemd's `EnvironmentFile=` and
 * `deno --env-file` read it.
 *
 * @example
 * ```ts
 * parseEnvFile("A=1\n# c\nB='two words'"); // { A: "1", B: "two words" }
 * ```
 */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/);
    if (!m) continue;
    let v = m[2];
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) {
      v = v.slice(1, -1);
    }
    out[m[1]] = v;
  }
  return out;
}

/**
 * The secret values inside a config (for log redaction), skipping empty ones.
 *
 * @example
 * ```ts
 * for (const s of secretValues(config)) registerSecret(s);
 * ```
 */
export function secretValues(config: Config): string[] {
  return [config.kick.clientSecret, config.database.password].filter((s) => s.length >= 3);
}

/**
 * The effective value of every variable, secrets replaced by `[REDACTED]`,
 * as `kickmon config show` prints it.
 *
 * @example
 * ```ts
 * console.log(redactedConfig(readEnvironment()));
 * ```
 */
export function redactedConfig(
  env: Readonly<Record<string, string | undefined>>,
): Record<ConfigVariable, string> {
  const out = {} as Record<ConfigVariable, string>;
  for (const name of CONFIG_VARIABLES) {
    const raw = env[name];
    const v = raw !== undefined && raw !== "" ? raw : CONFIG_DOCS[name].def;
    if (SECRET_VARIABLES.has(name)) out[name] = v ? "[REDACTED]" : "";
    else if (name === "DATABASE_URL" && v) out[name] = redactUrlPassword(v);
    else out[name] = v;
  }
  return out;
}

/**
 * Every variable as kickmon uses it after validation, as `kickmon config
 * show` prints it: defaults filled in, values trimmed and normalized
 * (`true`/`false`, `warning` for `WARN`, URLs without a trailing slash, the
 * Pusher host a cluster implies, the state directory in use, the database
 * parts read from `DATABASE_URL`), secrets replaced by `[REDACTED]`.
 * Durations keep their variables' units (seconds or ms, see the README).
 *
 * @example
 * ```ts
 * normalizedConfig(loadConfig({ SYSTEM_LOG_LEVEL: " WARN " }, { requireKickCredentials: false }))
 *   .SYSTEM_LOG_LEVEL; // "warning"
 * ```
 */
export function normalizedConfig(c: Config): Record<ConfigVariable, string> {
  const secret = (v: string) => (v && v !== "-" ? "[REDACTED]" : "");
  const listen = (h: string, p: number) => `${h.includes(":") ? `[${h}]` : h}:${p}`;
  const k = c.kick;
  const d = c.database;
  return {
    KICK_CLIENT_ID: k.clientId === "-" ? "" : k.clientId,
    KICK_CLIENT_SECRET: secret(k.clientSecret),
    KICK_OAUTH_URL: k.oauthUrl,
    KICK_API_URL: k.apiUrl,
    KICK_API_MAX_REQUESTS_PER_MINUTE: String(k.apiMaxRequestsPerMinute),
    KICK_API_TIMEOUT: String(k.apiTimeoutMs / 1000),
    KICK_UNOFFICIAL_CHANNEL_LOOKUP: String(k.unofficialChannelLookup),
    KICK_UNOFFICIAL_API_URL: k.unofficialApiUrl,
    KICK_PUSHER_KEY: k.pusher.key,
    KICK_PUSHER_CLUSTER: k.pusher.cluster,
    KICK_PUSHER_HOST: k.pusher.host,
    KICK_PUSHER_PORT: String(k.pusher.port),
    KICK_PUSHER_TLS: String(k.pusher.tls),
    KICK_PUSHER_MAX_CHANNELS_PER_CONNECTION: String(k.pusher.maxChannelsPerConnection),
    KICK_PUSHER_PONG_TIMEOUT: String(k.pusher.pongTimeoutMs),
    KICK_PUSHER_REFUSED_RETRY_DELAY: String(k.pusher.refusedRetryMs),
    KICK_WEBHOOK_ENABLED: String(k.webhook.enabled),
    KICK_WEBHOOK_LISTEN: listen(k.webhook.hostname, k.webhook.port),
    KICK_WEBHOOK_PUBLIC_KEY: k.webhook.publicKeyPem ? "(PEM set)" : "",
    DATABASE_URL: redactUrlPassword(d.url),
    DATABASE_HOST: d.host,
    DATABASE_PORT: String(d.port),
    DATABASE_NAME: d.name,
    DATABASE_USER: d.user,
    DATABASE_PASSWORD: secret(d.password),
    DATABASE_SSLMODE: d.sslmode,
    DATABASE_SSLROOTCERT: d.sslRootCert ? "(PEM read)" : "",
    DATABASE_POOL_SIZE: String(d.poolSize),
    DATABASE_CONNECT_TIMEOUT: String(d.connectTimeoutSec),
    DATABASE_SCHEMA: d.schema,
    MONITORING_RECONNECT_DELAY: String(c.monitoring.reconnectDelayMs),
    MONITORING_MAX_RECONNECT_DELAY: String(c.monitoring.maxReconnectDelayMs),
    MONITORING_MAX_RECONNECT_ATTEMPTS: String(c.monitoring.maxReconnectAttempts),
    MONITORING_RECONCILE_INTERVAL: String(c.monitoring.reconcileIntervalMs / 1000),
    MONITORING_RESYNC_INTERVAL: String(c.monitoring.resyncIntervalMs / 1000),
    MONITORING_SHUTDOWN_TIMEOUT: String(c.monitoring.shutdownTimeoutMs / 1000),
    MONITORING_LIST_FOLLOW: c.monitoring.listFollow,
    MONITORING_LIST_POLL_INTERVAL: String(c.monitoring.listPollIntervalMs),
    SYSTEM_LOG_LEVEL: c.system.logLevel,
    SYSTEM_JSON_LOGGING: String(c.system.jsonLogging),
    SYSTEM_STATE_DIRECTORY: c.system.stateDirectory,
    SYSTEM_SPOOL_MAX_BYTES: String(c.system.spoolMaxBytes),
    HEALTH_CHECK_ENABLED: String(c.health.enabled),
    HEALTH_CHECK_LISTEN: listen(c.health.hostname, c.health.port),
    MANUAL_MODE_REFRESH_RATE: String(c.manual.refreshRateMs),
    MANUAL_MODE_MAX_STREAMERS: String(c.manual.maxStreamers),
    KICKMON_ENV_FILE: c.envFile ?? "",
  };
}

/**
 * An env file documenting every variable with its default, as printed by
 * `kickmon config generate-template`.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile(".env", configTemplate());
 * ```
 */
export function configTemplate(): string {
  const lines = ["# kickmon configuration (systemd EnvironmentFile= or deno --env-file)", ""];
  for (const name of CONFIG_VARIABLES) {
    lines.push(`# ${CONFIG_DOCS[name].doc}`);
    lines.push(`${name}=${CONFIG_DOCS[name].def}`);
    lines.push("");
  }
  return lines.join("\n");
}
