/**
 * Where kickmon keeps its files in the state directory
 * (`SYSTEM_STATE_DIRECTORY`, else systemd's `STATE_DIRECTORY`, else
 * `/var/lib/kickmon` for a build and `./state` from source). Every path
 * below is built here and nowhere else:
 *
 * | file | written by | read by |
 * |---|---|---|
 * | `kickmon.pid` | `kickmon start` (`src/cli/start.ts`) | `kickmon stop`, `status`, `restart` |
 * | `spool.jsonl` | the status writer while PostgreSQL is down (`src/db/status_writer.ts`) | the next start (replay) |
 * | `streamers.json` | the monitor, the list snapshot (`src/service/monitor.ts`) | a start during a database outage |
 * | `kickmon-manual.log` | `kickmon start --manual` (`src/cli/manual.ts`) | the operator (the view's footer names it) |
 * | `backups/` | `kickmon db backup` without `--output` | the operator |
 *
 * The shipped unit's `StateDirectory=kickmon` and the build's permissions
 * (`scripts/permissions.ts`, `KICKMON_STATE_DIR`) cover exactly this
 * directory.
 *
 * @module
 */

/**
 * The file names inside the state directory.
 *
 * @example
 * ```ts
 * STATE_FILES.pid; // "kickmon.pid"
 * ```
 */
export const STATE_FILES = {
  /** PID file: the PID on line 1, `systemd-invocation=<id>` on line 2 under systemd. */
  pid: "kickmon.pid",
  /** Outage spool: one JSON transition per line. */
  spool: "spool.jsonl",
  /** The last streamer list, JSON, saved at most once per second. */
  listSnapshot: "streamers.json",
  /** Log file of the live view. */
  manualLog: "kickmon-manual.log",
  /** Default directory of `kickmon db backup`. */
  backups: "backups",
  /** Default parent directory of `kickmon capture`'s capture directories. */
  captures: "captures",
} as const;

/**
 * Every path in one state directory (see the module doc).
 *
 * @example
 * ```ts
 * const { pidFile, spool }: StatePaths = statePaths("/var/lib/kickmon");
 * ```
 */
export interface StatePaths {
  /** The state directory itself, without a trailing `/`. */
  readonly directory: string;
  /** `<dir>/kickmon.pid`. */
  readonly pidFile: string;
  /** `<dir>/spool.jsonl`. */
  readonly spool: string;
  /** `<dir>/streamers.json` (written through `<dir>/streamers.json.tmp`). */
  readonly listSnapshot: string;
  /** `<dir>/kickmon-manual.log`. */
  readonly manualLog: string;
  /** `<dir>/backups`. */
  readonly backups: string;
  /** `<dir>/captures`. */
  readonly captures: string;
}

/**
 * The paths of kickmon's files in a state directory. A trailing `/` of the
 * directory is dropped (so no path shows `//`); a relative directory gives
 * relative paths.
 *
 * @param stateDirectory `config.system.stateDirectory`.
 *
 * @example
 * ```ts
 * statePaths("/var/lib/kickmon/").pidFile; // "/var/lib/kickmon/kickmon.pid"
 * statePaths("./state").spool; // "./state/spool.jsonl"
 * ```
 */
export function statePaths(stateDirectory: string): StatePaths {
  const dir = stateDirectory.replace(/(.)\/+$/, "$1");
  const at = (name: string) => dir === "/" ? `/${name}` : `${dir}/${name}`;
  return {
    directory: dir,
    pidFile: at(STATE_FILES.pid),
    spool: at(STATE_FILES.spool),
    listSnapshot: at(STATE_FILES.listSnapshot),
    manualLog: at(STATE_FILES.manualLog),
    backups: at(STATE_FILES.backups),
    captures: at(STATE_FILES.captures),
  };
}
