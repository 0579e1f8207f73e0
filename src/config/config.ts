/**
 * kickmon's configuration: read from environment variables (systemd's
 * `EnvironmentFile=` in production, `deno run --env-file` in development),
 * validated into one typed {@linkcode Config}.
 *
 * What each variable is (default, unit, meaning, parser, secret) is one row
 * of `variables.ts`; this module fills in defaults, validates every row at
 * once, and assembles the {@linkcode Config} (`types.ts`) from the parsed
 * values, converting seconds to ms. A wrong value is reported as a
 * {@linkcode ConfigError} naming each variable and what was expected.
 * Secrets never leave this module in clear text except through the typed
 * object itself: {@linkcode normalizedConfig} is what `kickmon config show`
 * prints.
 *
 * The rows, the `Config` types, the env-file template and the redaction
 * helper are re-exported here, so that callers import the configuration from
 * this one module.
 *
 * @module
 */
import { defaultStateDirectory } from "../build_info.ts";
import { REDACTED } from "./redact.ts";
import type { Config, DatabaseConfig } from "./types.ts";
import { CONFIG_VARIABLES, type ConfigVariable, parseVariables, VARIABLES } from "./variables.ts";

export type { Config, DatabaseConfig } from "./types.ts";
export {
  CONFIG_DOCS,
  CONFIG_VARIABLES,
  type ConfigVariable,
  SECRET_VARIABLES,
  VARIABLES,
} from "./variables.ts";
export { configTemplate } from "./docs.ts";
export { redactUrlPassword } from "./redact.ts";

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
  const input = {} as Record<ConfigVariable, string>;
  for (const name of CONFIG_VARIABLES) {
    const v = env[name];
    input[name] = v !== undefined && v.trim() !== "" ? v : VARIABLES[name].default;
  }
  if (options.requireKickCredentials === false) {
    if (input.KICK_CLIENT_ID === "") input.KICK_CLIENT_ID = "-";
    if (input.KICK_CLIENT_SECRET === "") input.KICK_CLIENT_SECRET = "-";
  }
  const parsed = parseVariables(input);
  if (!parsed.ok) throw new ConfigError(parsed.issues, { cause: parsed.error });
  const e = parsed.values;
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
        connectSpacingMs: e.KICK_PUSHER_CONNECT_SPACING,
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
      leaderTakeoverMs: e.MONITORING_LEADER_TAKEOVER * 1000,
      leaderEligible: e.MONITORING_LEADER_ELIGIBLE,
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
  return CONFIG_VARIABLES.filter((name) => VARIABLES[name].secret)
    .map((name) => VARIABLES[name].show(config))
    .filter((s) => s.length >= 3);
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
    const v = raw !== undefined && raw !== "" ? raw : VARIABLES[name].default;
    out[name] = redacted(name, v);
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
  const out = {} as Record<ConfigVariable, string>;
  for (const name of CONFIG_VARIABLES) {
    const v = VARIABLES[name].show(c);
    // "-" stands in for credentials a database-only command does not need.
    out[name] = redacted(name, VARIABLES[name].secret && v === "-" ? "" : v);
  }
  return out;
}

/** `value` of `name` as it may be printed: a secret as `[REDACTED]` (empty stays empty). */
function redacted(name: ConfigVariable, value: string): string {
  const row = VARIABLES[name];
  if (row.secret) return value ? REDACTED : "";
  return value && row.redact ? row.redact(value) : value;
}
