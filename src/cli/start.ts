/**
 * `kickmon start`: run the monitor in the foreground until SIGTERM/SIGINT.
 *
 * Before anything is written to the state directory it is locked
 * (`service/state_dir_lock.ts`): a second instance on the same directory
 * exits 2 naming it, and the first is untouched (its PID file stays). The
 * monitor gets a leader elector (`service/leadership.ts`) with
 * `MONITORING_LEADER_TAKEOVER`; `MONITORING_LEADER_ELIGIBLE=auto` means
 * eligible for `kickmon start` (see {@linkcode StartOptions.eligibleByDefault}
 * for `--manual`).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import {
  type Config,
  CONFIG_VARIABLES,
  loadConfig,
  parseEnvFile,
  readEnvironment,
  secretValues,
} from "../config/config.ts";
import { explainNotCapable, NotPermittedError } from "../config/capability.ts";
import { describeError } from "../log/errors.ts";
import { registerSecret, setupLogging, shutdownLogging } from "../log/logging.ts";
import { InvalidCredentialsError } from "../kick/official/oauth_error.ts";
import { Monitor } from "../service/monitor.ts";
import { createLeaderElector } from "../service/leadership.ts";
import {
  lockStateDirectory,
  type StateDirLock,
  StateDirLockedError,
} from "../service/state_dir_lock.ts";
import { memoryLimits, memoryVerdict } from "../service/memory.ts";
import { OfficialApiPlugin } from "../service/official.ts";
import { HttpPlugin } from "../http/server.ts";
import { serveWebhooks } from "../http/webhook_listener.ts";
import { SchemaError } from "../db/inspect.ts";
import { statePaths } from "../service/state_paths.ts";
import { EXIT } from "./errors.ts";
import { pidFileText } from "./pid_file.ts";

const log = getLogger(["kickmon", "cli"]);

/**
 * Warns when the env file (which holds secrets) is readable by group or
 * others. systemd's unit installs it as root-owned mode 0640 with the
 * service's group; anything looser is reported.
 */
async function warnLooseEnvFile(path: string | null): Promise<void> {
  if (!path) return;
  try {
    const st = await Deno.stat(path);
    if (st.mode !== null && (st.mode & 0o007) !== 0) {
      log.warn(
        "env file {path} is readable by others (mode {mode}); it holds secrets: chmod 0640 or 0600",
        { path, mode: (st.mode & 0o777).toString(8) },
      );
    } else if (st.mode !== null && (st.mode & 0o070) !== 0 && st.gid !== 0) {
      // 0640 root:root (the documented install) is fine; a non-root group is not.
      log.warn("env file {path} is readable by its group {gid} (mode {mode}); prefer 0600", {
        gid: st.gid,
        path,
        mode: (st.mode & 0o777).toString(8),
      });
    }
  } catch (e) {
    log.warn("cannot check env file {path}: {error}", { path, error: String(e) });
  }
}

/**
 * Whether this run may lead: `MONITORING_LEADER_ELIGIBLE`, with `auto`
 * meaning `byDefault`.
 *
 * @param config the loaded configuration.
 * @param byDefault what `auto` means for this command (true for `kickmon start`).
 *
 * @example
 * ```ts
 * leaderEligible(config, true); // true unless MONITORING_LEADER_ELIGIBLE=false
 * ```
 */
export function leaderEligible(config: Config, byDefault: boolean): boolean {
  const v = config.monitoring.leaderEligible;
  return v === "auto" ? byDefault : v === "true";
}

/**
 * Options for {@linkcode runStart}.
 *
 * @example
 * ```ts
 * const opts: StartOptions = { eligibleByDefault: false, loggingConfigured: true };
 * ```
 */
export interface StartOptions {
  /** Prepared config (tests, demo); default: read from the environment. */
  readonly config?: Config;
  /** Extra set-up after the monitor exists and before it starts (plugins, views). */
  readonly prepare?: (monitor: Monitor) => void | Promise<void>;
  /** Resolves to request a clean stop (the live view's `q`). */
  readonly stopRequested?: Promise<void>;
  /** Skip logging set-up (the caller configured it). */
  readonly loggingConfigured?: boolean;
  /**
   * The state directory's lock, already taken by the caller (the live view
   * chooses its directory first); released when the run ends. Default: taken
   * here.
   */
  readonly stateLock?: StateDirLock;
  /** What `MONITORING_LEADER_ELIGIBLE=auto` means for this run. Default true. */
  readonly eligibleByDefault?: boolean;
}

/**
 * Runs the monitor until a stop signal, then shuts down cleanly.
 *
 * @returns the exit code: 0 after a clean stop, 1 when the service failed.
 * @throws {ConfigError} when the configuration is invalid (exit 2).
 *
 * @example
 * ```ts
 * Deno.exit(await runStart());
 * ```
 */
export async function runStart(options: StartOptions = {}): Promise<number> {
  const config = options.config ?? loadConfig(readEnvironment());
  for (const s of secretValues(config)) registerSecret(s);
  if (!options.loggingConfigured) {
    await setupLogging({ level: config.system.logLevel, json: config.system.jsonLogging });
  }
  // The state directory is this process's alone, or nothing is touched: no
  // spool, snapshot or PID file of the instance that holds it (issue 14).
  await Deno.mkdir(config.system.stateDirectory, { recursive: true }).catch(() => {});
  let stateLock: StateDirLock | undefined = options.stateLock;
  try {
    stateLock ??= lockStateDirectory(config.system.stateDirectory);
  } catch (e) {
    if (e instanceof StateDirLockedError) {
      log.fatal("{error}", { error: e.message, directory: e.directory, holderPid: e.holderPid });
      if (!options.loggingConfigured) await shutdownLogging();
      return EXIT.usage;
    }
    // Not creatable or not writable: start-up below explains that in its own words
    // (a permission this build lacks is exit 2), or runs with a failing spool as before.
    log.warn("cannot lock the state directory {directory}: {error}", {
      directory: config.system.stateDirectory,
      error: describeError(e),
    });
  }
  const leadership = createLeaderElector(config.database, {
    takeoverMs: config.monitoring.leaderTakeoverMs,
    eligible: leaderEligible(config, options.eligibleByDefault ?? true),
  });
  const monitor = new Monitor(config, { leadership });
  monitor.use(new OfficialApiPlugin(config, { serveWebhooks }));
  if (config.health.enabled) {
    monitor.use(new HttpPlugin(config.health.hostname, config.health.port));
  }
  await options.prepare?.(monitor);

  let signalled: (name: string) => void = () => {};
  const stopSignal = new Promise<string>((resolve) => (signalled = resolve));
  const onTerm = () => signalled("SIGTERM");
  const onInt = () => signalled("SIGINT");
  let current = config;
  const onHup = async () => {
    log.info("SIGHUP: reloading configuration and re-reading the streamer list");
    if (current.envFile) {
      try {
        const fromFile = parseEnvFile(await Deno.readTextFile(current.envFile));
        const next = loadConfig({ ...readEnvironment(), ...fromFile });
        const changed = CONFIG_VARIABLES.filter((v) =>
          fromFile[v] !== undefined && fromFile[v] !== Deno.env.get(v)
        );
        if (next.system.logLevel !== current.system.logLevel && !options.loggingConfigured) {
          await setupLogging({ level: next.system.logLevel, json: next.system.jsonLogging });
          log.info("log level is now {level}", { level: next.system.logLevel });
        }
        const restart = changed.filter((v) => v !== "SYSTEM_LOG_LEVEL");
        if (restart.length) {
          log.warn("changed settings that take effect only after a restart: {vars}", {
            vars: restart,
          });
        }
        current = next;
      } catch (e) {
        log.error("SIGHUP: keeping the current configuration: {error}", {
          error: e instanceof Error ? e.message : String(e),
        });
      }
    }
    await monitor.resync();
  };
  Deno.addSignalListener("SIGTERM", onTerm);
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGHUP", onHup);
  // A promise some library rejects without a handler would end the process
  // (Deno's default) and drop the in-memory queue with it. Log it loudly, with
  // its stack, and keep serving: the spool and reconciliation cover a
  // component that went wrong, a dead process covers nothing.
  const onUnhandled = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    const r = e.reason;
    log.error("unhandled promise rejection (kept running): {error}", {
      // The stack starts with the message: printing both said it twice.
      error: r instanceof Error ? (r.stack ?? r.message) : String(r),
    });
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  // Likewise an exception thrown out of a timer or callback: no such throw may
  // end the process (e.g. a write that fails with ENOSPC in some library).
  const onUncaught = (e: ErrorEvent) => {
    e.preventDefault();
    const r = e.error;
    log.error("uncaught exception (kept running): {error}", {
      error: r instanceof Error ? `${r.message}\n${r.stack ?? ""}` : String(r ?? e.message),
    });
  };
  globalThis.addEventListener("error", onUncaught);
  // After the signal listeners: a SIGTERM that follows this warning is a clean stop.
  await warnLooseEnvFile(config.envFile);
  const limits = await memoryLimits();
  const memory = memoryVerdict(limits);
  const memoryProps = {
    limits: memory.message,
    heapLimitBytes: limits.heapLimitBytes,
    cgroupLimitBytes: limits.cgroupLimitBytes,
  };
  if (memory.level === "warning") log.warn("memory: {limits}", memoryProps);
  else log.info("memory: {limits}", memoryProps);
  const pidFile = statePaths(config.system.stateDirectory).pidFile;
  let code: number = EXIT.ok;
  try {
    // Before start-up (which logs "kickmon started"), so `kickmon stop` finds it at once.
    await Deno.writeTextFile(pidFile, pidFileText()).catch(() => {});
    const started = monitor.start().then(() => null);
    const first = await Promise.race([
      started,
      stopSignal,
      monitor.fatal,
      ...(options.stopRequested ? [options.stopRequested.then(() => "stop")] : []),
    ]);
    if (first === null) {
      const reason = await Promise.race([
        stopSignal,
        monitor.fatal,
        ...(options.stopRequested ? [options.stopRequested.then(() => "stop")] : []),
      ]);
      if (reason instanceof NotPermittedError) {
        log.fatal("{error}", { error: reason.message });
        code = EXIT.usage; // a restart cannot grant a permission
      } else if (reason instanceof Error) {
        log.fatal("{error}; exiting so that the supervisor restarts kickmon", {
          error: reason.message,
        });
        code = reason instanceof SchemaError ? EXIT.usage : EXIT.failure;
      } else {
        log.info("{reason}: shutting down", { reason });
      }
    } else if (first instanceof Error) {
      log.fatal("{error}", { error: first.message });
      code = first instanceof NotPermittedError || first instanceof SchemaError
        ? EXIT.usage
        : EXIT.failure;
    } else {
      log.info("{reason} during start-up: shutting down", { reason: first });
    }
  } catch (e) {
    // A permission this build lacks (a changed DATABASE_PORT, HEALTH_CHECK_LISTEN,
    // state directory) is a configuration error: say so in kickmon's words, exit 2.
    // So is a missing privilege, column or schema in the database, like bad credentials.
    const refused = explainNotCapable(e, config);
    log.fatal("kickmon failed: {error}", {
      // A SchemaError's lines are the problems and their GRANTs: keep them all.
      error: refused ?? (e instanceof SchemaError ? e.message : describeError(e)),
    });
    code = e instanceof InvalidCredentialsError || e instanceof SchemaError || refused
      ? EXIT.usage
      : EXIT.failure;
  } finally {
    Deno.removeSignalListener("SIGTERM", onTerm);
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGHUP", onHup);
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
    globalThis.removeEventListener("error", onUncaught);
    await monitor.stop();
    await Deno.remove(pidFile).catch(() => {});
    stateLock?.release();
    log.info("kickmon stopped");
    if (!options.loggingConfigured) await shutdownLogging();
  }
  return code;
}
