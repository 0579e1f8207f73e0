/**
 * The shape of kickmon's typed configuration, {@linkcode Config}, as
 * `loadConfig` (`config.ts`) returns it. Every duration here is in
 * milliseconds and says so in its name (`…Ms`), whatever unit its variable
 * is written in (see `variables.ts`); the one exception is
 * `database.connectTimeoutSec`, in seconds as postgres.js takes it.
 *
 * A module of its own so that the variable rows (`variables.ts`), which say
 * where each variable's effective value lives, can name it without importing
 * `config.ts`.
 *
 * @example
 * ```ts
 * import type { Config } from "./types.ts";
 * const reconcileEvery = (c: Config) => c.monitoring.reconcileIntervalMs;
 * ```
 *
 * @module
 */

/**
 * Database connection settings (`DATABASE_*`).
 *
 * @example
 * ```ts
 * const where = (d: DatabaseConfig) => `${d.host}:${d.port}/${d.name}`;
 * ```
 */
export interface DatabaseConfig {
  /** Full connection URL (built from the parts when DATABASE_URL is unset). */
  readonly url: string;
  readonly host: string;
  /** TCP port, 1..65535. */
  readonly port: number;
  readonly name: string;
  readonly user: string;
  readonly password: string;
  readonly sslmode: "disable" | "require" | "verify-full";
  /**
   * PEM text of the CA bundle named by `DATABASE_SSLROOTCERT` (or `sslrootcert=`
   * in the URL), read at load time; verify-full only.
   */
  readonly sslRootCert?: string;
  /** Maximum connections, 2..100. */
  readonly poolSize: number;
  /** Seconds. */
  readonly connectTimeoutSec: number;
  /** Schema of the other system's tables (`DATABASE_SCHEMA`, default `public`). */
  readonly schema: string;
}

/**
 * The typed configuration. Durations carry their unit in the name (ms unless
 * `…Sec`); sizes are bytes.
 *
 * @example
 * ```ts
 * const pusherUrl = (c: Config) =>
 *   `${c.kick.pusher.tls ? "wss" : "ws"}://${c.kick.pusher.host}:${c.kick.pusher.port}`;
 * ```
 */
export interface Config {
  readonly kick: {
    readonly clientId: string;
    readonly clientSecret: string;
    readonly oauthUrl: string;
    readonly apiUrl: string;
    readonly apiMaxRequestsPerMinute: number;
    /** ms (`KICK_API_TIMEOUT` is in seconds). */
    readonly apiTimeoutMs: number;
    readonly unofficialChannelLookup: boolean;
    readonly unofficialApiUrl: string;
    readonly pusher: {
      readonly key: string;
      readonly cluster: string;
      /** The host to connect to: `KICK_PUSHER_HOST`, else `ws-<cluster>.pusher.com`. */
      readonly host: string;
      readonly port: number;
      readonly tls: boolean;
      readonly maxChannelsPerConnection: number;
      /** Least time between two connection attempts (`KICK_PUSHER_CONNECT_SPACING`), ms. */
      readonly connectSpacingMs: number;
      /** ms. */
      readonly pongTimeoutMs: number;
      /** ms. */
      readonly refusedRetryMs: number;
    };
    readonly webhook: {
      readonly enabled: boolean;
      readonly hostname: string;
      readonly port: number;
      readonly publicKeyPem: string | null;
    };
  };
  readonly database: DatabaseConfig;
  readonly monitoring: {
    /** ms. */
    readonly reconnectDelayMs: number;
    /** ms. */
    readonly maxReconnectDelayMs: number;
    /** 0 = never give up. */
    readonly maxReconnectAttempts: number;
    /** ms (`MONITORING_RECONCILE_INTERVAL` is in seconds). */
    readonly reconcileIntervalMs: number;
    /** ms (`MONITORING_RESYNC_INTERVAL` is in seconds). */
    readonly resyncIntervalMs: number;
    /** ms (`MONITORING_SHUTDOWN_TIMEOUT` is in seconds). */
    readonly shutdownTimeoutMs: number;
    /** ms (`MONITORING_LEADER_TAKEOVER` is in seconds): a standby takes over within this. */
    readonly leaderTakeoverMs: number;
    /** `MONITORING_LEADER_ELIGIBLE`: `auto` decides by command (see `src/cli/start.ts`). */
    readonly leaderEligible: "auto" | "true" | "false";
    /** How list changes are followed (`MONITORING_LIST_FOLLOW`). */
    readonly listFollow: "auto" | "trigger" | "poll";
    /** ms. */
    readonly listPollIntervalMs: number;
  };
  readonly system: {
    readonly logLevel: "trace" | "debug" | "info" | "warning" | "error" | "fatal";
    readonly jsonLogging: boolean;
    readonly stateDirectory: string;
    /** Bytes. */
    readonly spoolMaxBytes: number;
  };
  readonly health: { readonly enabled: boolean; readonly hostname: string; readonly port: number };
  /** `refreshRateMs`: ms. */
  readonly manual: { readonly refreshRateMs: number; readonly maxStreamers: number };
  /** The env file in use (`KICKMON_ENV_FILE`), or null. */
  readonly envFile: string | null;
}
