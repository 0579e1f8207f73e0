/**
 * `kickmon start --manual`: the monitor, exactly as `kickmon start` runs it
 * ({@linkcode runStart}), with the live terminal view (`src/view/live_view.ts`,
 * UI only: rendering, keys, terminal) on top instead of log lines on stdout.
 *
 * The logs go to `<SYSTEM_STATE_DIRECTORY>/kickmon-manual.log` (the footer
 * says where) so that nothing is ever drawn over the view. Keys: `q` or
 * Ctrl-C quit cleanly (exit 0), `r` refresh, `s`/`u`/`t` sort by status,
 * username, last update, `c` clear recent changes, `h` help, arrows and
 * Page Up/Down scroll.
 *
 * **Beside a running service** (issue 14): when the configured state
 * directory is locked by another kickmon, the view runs as another instance
 * in a directory of its own, `<SYSTEM_STATE_DIRECTORY>/manual-<pid>`
 * (removed when it ends), with its health and webhook listeners off (the
 * service has those addresses), and, unless `MONITORING_LEADER_ELIGIBLE=true`,
 * never leader: it listens and writes what Pusher says (the guarded writes
 * make that harmless) but spends none of the API budget. On a directory of
 * its own it is an ordinary instance.
 *
 * @module
 */
import { type Config, loadConfig, readEnvironment } from "../config/config.ts";
import { getLogger } from "@logtape/logtape";
import { setupLogging, shutdownLogging } from "../log/logging.ts";
import type { Monitor } from "../service/monitor.ts";
import { statePaths } from "../service/state_paths.ts";
import {
  lockStateDirectory,
  type StateDirLock,
  StateDirLockedError,
} from "../service/state_dir_lock.ts";
import { colorEnabled } from "../view/ansi.ts";
import { LiveView, type ViewTerminal } from "../view/live_view.ts";
import { EXIT } from "./errors.ts";
import { runStart } from "./start.ts";

const log = getLogger(["kickmon", "cli"]);

/**
 * The one-line message printed when stdin or stdout is not a terminal.
 *
 * @example
 * ```ts
 * if (!Deno.stdout.isTerminal()) console.error(NOT_A_TERMINAL_MESSAGE);
 * ```
 */
export const NOT_A_TERMINAL_MESSAGE: string =
  "kickmon: --manual needs a terminal (stdin and stdout must be a TTY); " +
  "use 'kickmon start' for log lines on stdout";

/**
 * Options for {@linkcode runLiveView}.
 *
 * @example
 * ```ts
 * const opts: LiveViewRunOptions = { config, title: "kickmon demo (simulated Kick)" };
 * ```
 */
export interface LiveViewRunOptions {
  /** The monitor's configuration (`manual.refreshRateMs`, `manual.maxStreamers` are honoured). */
  readonly config: Config;
  /** Top-line title. Default `kickmon live view`. */
  readonly title?: string;
  /** Log file. Default `<config.system.stateDirectory>/kickmon-manual.log`. */
  readonly logPath?: string;
  /** Extra set-up of the monitor before it starts (the demo adds its logging here). */
  readonly prepare?: (monitor: Monitor) => void | Promise<void>;
  /** Colour escapes; default from `NO_COLOR`. */
  readonly color?: boolean;
  /** The terminal; default the process's. */
  readonly terminal?: ViewTerminal;
  /** Resolves to request a clean stop besides `q`/Ctrl-C (the demo's own signal handler). */
  readonly stopRequested?: Promise<void>;
}

/**
 * Runs the monitor under the live view until `q`/Ctrl-C (or SIGTERM/SIGINT),
 * then shuts down cleanly and restores the terminal, on every path. Sets up
 * logging to the log file and tears it down before returning. The caller
 * has checked that stdin/stdout are terminals.
 *
 * @returns the exit code: 0 after a clean stop, 1 when the service or the view failed.
 * @throws {Deno.errors.PermissionDenied} when the state directory or log file
 *   cannot be created (before the terminal is touched).
 * @throws {LiveViewError} when the terminal cannot be taken over.
 *
 * @example
 * ```ts
 * const code = await runLiveView({ config: loadConfig(readEnvironment()) });
 * ```
 */
export async function runLiveView(opts: LiveViewRunOptions): Promise<number> {
  await Deno.mkdir(opts.config.system.stateDirectory, { recursive: true });
  const logPath = absolute(
    opts.logPath ?? statePaths(opts.config.system.stateDirectory).manualLog,
  );
  const config0 = opts.config;
  await setupLogging({
    level: config0.system.logLevel,
    json: config0.system.jsonLogging,
    destination: { kind: "file", path: logPath },
  });
  const place = await claimStateDirectory(config0);
  const { config } = place;
  if (place.beside) {
    log.warn(
      "{directory} is in use by a running kickmon: this view runs beside it as another " +
        "instance in {own} (health and webhook listeners off, leader only if " +
        "MONITORING_LEADER_ELIGIBLE=true)",
      { directory: config0.system.stateDirectory, own: config.system.stateDirectory },
    );
  }
  const view = new LiveView({
    title: opts.title ?? "kickmon live view",
    logPath,
    refreshRateMs: config0.manual.refreshRateMs,
    maxRows: config0.manual.maxStreamers,
    color: opts.color ?? colorEnabled(),
    terminal: opts.terminal,
  });
  let code: number = EXIT.failure;
  try {
    view.open();
    code = await runStart({
      config,
      loggingConfigured: true,
      stateLock: place.lock,
      eligibleByDefault: !place.beside,
      stopRequested: opts.stopRequested
        ? Promise.race([view.stopRequested, opts.stopRequested])
        : view.stopRequested,
      prepare: async (monitor) => {
        view.attach(monitor);
        await opts.prepare?.(monitor);
      },
    });
  } finally {
    view.close();
    await shutdownLogging();
    place.lock?.release();
    if (place.beside) {
      await Deno.remove(config.system.stateDirectory, { recursive: true }).catch(() => {});
    }
  }
  if (view.failure) {
    const cause = view.failure.cause instanceof Error ? `: ${view.failure.cause.message}` : "";
    console.error(`kickmon: ${view.failure.message}${cause}`);
    return EXIT.failure;
  }
  if (code !== EXIT.ok) console.error(`kickmon: stopped with exit code ${code}; see ${logPath}`);
  return code;
}

/**
 * The state directory of a live view: the configured one when it is free,
 * else (a service runs on it) a `manual-<pid>` directory inside it, with the
 * health and webhook listeners off.
 */
async function claimStateDirectory(
  config: Config,
): Promise<{ config: Config; lock: StateDirLock | undefined; beside: boolean }> {
  const dir = config.system.stateDirectory;
  try {
    return { config, lock: lockStateDirectory(dir), beside: false };
  } catch (e) {
    // Not writable and the like: runStart's start-up explains it.
    if (!(e instanceof StateDirLockedError)) return { config, lock: undefined, beside: false };
  }
  const own = `${dir.replace(/\/+$/, "")}/manual-${Deno.pid}`;
  await Deno.mkdir(own, { recursive: true, mode: 0o700 });
  return {
    config: {
      ...config,
      system: { ...config.system, stateDirectory: own },
      health: { ...config.health, enabled: false },
      kick: { ...config.kick, webhook: { ...config.kick.webhook, enabled: false } },
    },
    lock: lockStateDirectory(own),
    beside: true,
  };
}

function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path.replace(/^\.\//, "")}`;
}

/**
 * `kickmon start --manual`: checks for a terminal, reads the configuration
 * from the environment and runs {@linkcode runLiveView}.
 *
 * @returns the exit code: 0 after `q`, 1 on a service failure, 2 when stdin
 *   or stdout is not a terminal (a one-line message is printed to stderr).
 * @throws {ConfigError} when the configuration is invalid (the CLI maps it to exit 2).
 *
 * @example
 * ```ts
 * Deno.exit(await runManual());
 * ```
 */
export async function runManual(): Promise<number> {
  if (!Deno.stdin.isTerminal() || !Deno.stdout.isTerminal()) {
    console.error(NOT_A_TERMINAL_MESSAGE);
    return EXIT.usage;
  }
  const config = loadConfig(readEnvironment());
  return await runLiveView({ config });
}
