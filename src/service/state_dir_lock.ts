/**
 * One process per state directory (issue 14, "mistakes refused"): an
 * exclusive lock on `<state dir>/kickmon.lock`, held for the life of the
 * process. A second kickmon pointed at the same directory (two instances of
 * a high-availability pair sharing one `SYSTEM_STATE_DIRECTORY` by mistake,
 * which would interleave their spools) gets a {@linkcode StateDirLockedError}
 * naming the directory; `kickmon start` is to exit 2 with it. Not wired in
 * yet.
 *
 * The lock is `flock(2)` through `Deno.FsFile.tryLockSync(true)`, stable in
 * Deno 2 (no `--unstable-*` flag) and allowed by the shipped unit's
 * `SystemCallFilter=@system-service`. The kernel drops it when the process
 * ends, however it ends (SIGKILL, OOM, crash), so a stale file never blocks
 * a restart; the file itself is left in place and holds the holder's PID,
 * for the message. `flock` locks are per open file, so a second
 * {@linkcode lockStateDirectory} in the same process is refused too.
 *
 * @module
 */

/**
 * The lock file's name inside the state directory.
 *
 * @example
 * ```ts
 * `${config.system.stateDirectory}/${STATE_DIR_LOCK_FILE}`; // "/var/lib/kickmon/kickmon.lock"
 * ```
 */
export const STATE_DIR_LOCK_FILE = "kickmon.lock";

/**
 * The state directory is in use by another live process (or another lock in
 * this one). `directory` and `path` name it; `holderPid` is the PID the
 * holder wrote into the file, when readable.
 *
 * @example
 * ```ts
 * try {
 *   lockStateDirectory("/var/lib/kickmon");
 * } catch (e) {
 *   if (e instanceof StateDirLockedError) { console.error(e.message); Deno.exit(2); }
 *   throw e;
 * }
 * ```
 */
export class StateDirLockedError extends Error {
  /** The state directory, as given. */
  readonly directory: string;
  /** The lock file. */
  readonly path: string;
  /** The holder's PID from the file, or null when it could not be read. */
  readonly holderPid: number | null;

  /**
   * Makes the error; the message names the directory, the lock file and the holder's PID.
   *
   * @param directory the state directory.
   * @param path the lock file in it.
   * @param holderPid the PID found in the file, or null.
   * @param options `cause`, if any.
   */
  constructor(
    directory: string,
    path: string,
    holderPid: number | null,
    options: { cause?: unknown } = {},
  ) {
    super(
      `state directory ${directory} is already in use by another running kickmon` +
        (holderPid !== null ? ` (pid ${holderPid})` : "") +
        ` (it holds the lock on ${path}): stop that instance, or give this one its own ` +
        "SYSTEM_STATE_DIRECTORY",
      { cause: options.cause },
    );
    this.name = "StateDirLockedError";
    this.directory = directory;
    this.path = path;
    this.holderPid = holderPid;
  }
}

/**
 * A held state directory lock.
 *
 * @example
 * ```ts
 * using lock: StateDirLock = lockStateDirectory("/var/lib/kickmon");
 * ```
 */
export interface StateDirLock {
  /** The state directory. */
  readonly directory: string;
  /** The lock file. */
  readonly path: string;
  /** Gives the lock up and closes the file (the file stays). Idempotent. */
  release(): void;
  /** Same as `release()`, for `using`. */
  [Symbol.dispose](): void;
}

function readHolderPid(path: string): number | null {
  try {
    const text = Deno.readTextFileSync(path).trim();
    return /^\d{1,10}$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/**
 * Takes the exclusive lock on `<directory>/kickmon.lock` (creating the file,
 * mode 0600) without waiting, and writes this process's PID into it. Keep
 * the returned lock for the life of the process.
 *
 * @param directory the state directory (`config.system.stateDirectory`); it must exist.
 * @returns the held lock.
 * @throws {StateDirLockedError} when another process (or another lock in
 *   this one) holds it.
 * @throws {Deno.errors.NotFound} when the directory does not exist, and
 *   {@linkcode Deno.errors.PermissionDenied} / `NotCapable` when it may not be
 *   written, unchanged, so that the caller's existing explanations apply.
 *
 * @example
 * ```ts
 * const lock = lockStateDirectory(config.system.stateDirectory);
 * // … the whole life of the service …
 * lock.release();
 * ```
 */
export function lockStateDirectory(directory: string): StateDirLock {
  const path = `${directory.replace(/\/+$/, "")}/${STATE_DIR_LOCK_FILE}`;
  const file = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
  let locked: boolean;
  try {
    locked = file.tryLockSync(true);
  } catch (e) {
    file.close();
    throw e;
  }
  if (!locked) {
    file.close();
    throw new StateDirLockedError(directory, path, readHolderPid(path));
  }
  try {
    file.truncateSync(0);
    file.writeSync(new TextEncoder().encode(`${Deno.pid}\n`));
  } catch {
    // The lock is what matters; the PID is only for the message.
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    try {
      file.unlockSync();
    } finally {
      file.close();
    }
  };
  return { directory, path, release, [Symbol.dispose]: release };
}
