/**
 * Throwaway PostgreSQL clusters for tests, `deno task demo` and the benchmark.
 *
 * {@linkcode startThrowawayCluster} runs `initdb` into a fresh temporary
 * directory, starts a server listening on `127.0.0.1` only (its unix socket
 * lives in the same temporary directory, never in `/var/run/postgresql`),
 * waits until it accepts connections and hands back a connection URL. Its
 * `stop()` shuts the server down and deletes every file it made.
 *
 * The server binaries are looked up by {@linkcode findPgBin}: `$PG_BINDIR`,
 * then `pg_config --bindir`, then the newest `/usr/lib/postgresql/<v>/bin`,
 * then `$PATH`. On Debian they come from `apt-get install -y postgresql`.
 *
 * When the current process runs as root (CI, containers), `initdb` refuses
 * to run, so the temporary directory is chown'd to the `postgres` OS user and
 * every binary runs as that user (through `setpriv`, else `runuser`). As any
 * other user the binaries run directly.
 *
 * The server is started with `pg_ctl` (it daemonizes, with its log in a
 * file), so a running cluster holds no Deno resources and does not trip the
 * test sanitizers even when it outlives a test.
 *
 * @module
 */

/** How long {@linkcode startThrowawayCluster} waits for a server by default, in ms. */
const DEFAULT_START_TIMEOUT_MS = 60_000;
/** How long `pg_ctl stop` may take before falling back to an immediate shutdown, in s. */
const STOP_TIMEOUT_S = 30;
/** Bound on how many auto-picked ports are tried when one turns out to be taken. */
const PORT_ATTEMPTS = 3;

/**
 * Raised when a throwaway cluster cannot be found, created, started or
 * stopped. `message` says what to do (e.g. `apt-get install -y postgresql`
 * when the server binaries are missing); `cause` holds the underlying error,
 * if any, and `output` the relevant command output or server log tail.
 *
 * @example
 * ```ts
 * import { PgClusterError, startThrowawayCluster } from "./pg_cluster.ts";
 *
 * try {
 *   const cluster = await startThrowawayCluster();
 *   await cluster.stop();
 * } catch (err) {
 *   if (err instanceof PgClusterError) console.error(err.message, err.output);
 *   else throw err;
 * }
 * ```
 */
export class PgClusterError extends Error {
  /** Captured stdout/stderr of the failing command, or the tail of the server log; "" if none. */
  readonly output: string;

  /**
   * Makes the error; `output`, when given, is appended to the message.
   *
   * @param message What failed and, where known, how to fix it.
   * @param options `cause`: the underlying error; `output`: captured command output or log tail.
   */
  constructor(message: string, options: { cause?: unknown; output?: string } = {}) {
    super(
      options.output ? `${message}\n--- output ---\n${options.output.trimEnd()}` : message,
      { cause: options.cause },
    );
    this.name = "PgClusterError";
    this.output = options.output ?? "";
  }
}

/**
 * Options for {@linkcode startThrowawayCluster}. Every field is optional.
 *
 * @example
 * ```ts
 * import type { ThrowawayClusterOptions } from "./pg_cluster.ts";
 *
 * const opts: ThrowawayClusterOptions = { durable: true, settings: { shared_buffers: "256MB" } };
 * ```
 */
export interface ThrowawayClusterOptions {
  /**
   * TCP port to listen on (127.0.0.1 only). Default: a free port picked by
   * binding port 0; if that port is grabbed by someone else before the server
   * binds it, another one is tried (up to 3 in all). An explicit port is never
   * replaced.
   */
  port?: number;
  /**
   * Receives progress lines (`initdb` output, start/stop timings in ms,
   * where the server log is). Default: discard them.
   */
  log?: (line: string) => void;
  /**
   * `false` (default): `fsync=off`, `synchronous_commit=off`,
   * `full_page_writes=off`, fast but loses data on an OS crash; right for tests.
   * `true`: PostgreSQL's own durable defaults, for honest benchmark floors.
   */
  durable?: boolean;
  /**
   * Extra server settings written to the cluster's config, e.g.
   * `{ max_connections: 300, shared_buffers: "256MB" }`. They override the
   * defaults chosen here (including the `durable` ones).
   */
  settings?: Record<string, string | number | boolean>;
  /**
   * How long to wait for the server to accept connections, in ms, per start.
   * Default 60000.
   */
  startTimeoutMs?: number;
  /** Parent directory for the temporary directory. Default: the OS temp dir (`$TMPDIR` or `/tmp`). */
  baseDir?: string;
}

/**
 * A running (or deliberately stopped) throwaway cluster made by
 * {@linkcode startThrowawayCluster}. Authentication is `trust` for the
 * superuser `postgres`, so the URL has no password.
 *
 * @example
 * ```ts
 * import { startThrowawayCluster } from "./pg_cluster.ts";
 *
 * await using cluster = await startThrowawayCluster();
 * console.log(cluster.url); // postgres://postgres@127.0.0.1:41234/postgres
 * ```
 */
export interface ThrowawayCluster {
  /** Superuser connection URL of the `postgres` database: `postgres://postgres@127.0.0.1:PORT/postgres`. */
  readonly url: string;
  /** TCP port the server listens on, on 127.0.0.1. */
  readonly port: number;
  /** Data directory (`PGDATA`); removed by `stop()`. */
  readonly dataDir: string;
  /**
   * Temporary directory (`kickmon-pg-*`) holding `dataDir`, the unix socket, `logFile` and
   * `owner.pid`; removed by `stop()`. If the owning process dies without stopping it, the next
   * `startThrowawayCluster` in the same parent directory stops and removes it.
   */
  readonly baseDir: string;
  /** The server's log file (inside `baseDir`), handy when a test wants to see why it failed. */
  readonly logFile: string;
  /** PostgreSQL major version of the binaries, e.g. `15`. */
  readonly version: number;
  /**
   * Stops the server (fast shutdown, falling back to immediate) and removes
   * `baseDir` with everything in it. Safe to call more than once.
   * @throws {PgClusterError} only if the directory cannot be removed.
   */
  stop(): Promise<void>;
  /**
   * Synchronous `stop()`, for `unload` handlers, which cannot await. Blocks
   * the event loop for the shutdown (tens of ms). Never throws.
   */
  stopSync(): void;
  /**
   * Stops the server (fast shutdown) but keeps the data directory, to test
   * what happens while the database is down. No-op if already stopped.
   * @throws {PgClusterError} if `pg_ctl stop` fails.
   */
  pgStop(): Promise<void>;
  /**
   * Starts the server again on the same port and data directory, and waits
   * until it accepts connections. No-op if it is running.
   * @throws {PgClusterError} if it does not come up within `startTimeoutMs`.
   */
  pgStart(): Promise<void>;
  /** Same as `stop()`, so `await using` works. */
  [Symbol.asyncDispose](): Promise<void>;
}

// ---------------------------------------------------------------------------
// Locating the binaries
// ---------------------------------------------------------------------------

const SERVER_BINARIES = ["initdb", "pg_ctl", "postgres"] as const;
const INSTALL_HINT = "install the PostgreSQL server: apt-get install -y postgresql";

function isExecutableFile(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && (info.mode === null || (info.mode & 0o111) !== 0);
  } catch {
    return false;
  }
}

function pgConfigBinDir(): string | undefined {
  try {
    const out = new Deno.Command("pg_config", {
      args: ["--bindir"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (!out.success) return undefined;
    const dir = new TextDecoder().decode(out.stdout).trim();
    return dir || undefined;
  } catch {
    return undefined; // no pg_config on PATH
  }
}

function debianBinDirs(): string[] {
  const root = "/usr/lib/postgresql";
  const versions: string[] = [];
  try {
    for (const entry of Deno.readDirSync(root)) {
      if (entry.isDirectory && /^\d+(\.\d+)?$/.test(entry.name)) versions.push(entry.name);
    }
  } catch {
    return [];
  }
  versions.sort((a, b) => Number(b) - Number(a)); // newest first
  return versions.map((v) => `${root}/${v}/bin`);
}

function pathDirs(): string[] {
  return (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "");
}

/** Candidate directories, best first. `$PATH` comes last. */
function candidateDirs(): string[] {
  const dirs: string[] = [];
  const fromEnv = Deno.env.get("PG_BINDIR");
  if (fromEnv) dirs.push(fromEnv);
  const fromPgConfig = pgConfigBinDir();
  if (fromPgConfig) dirs.push(fromPgConfig);
  dirs.push(...debianBinDirs());
  return [...new Set(dirs)];
}

let cachedServerDir: string | null | undefined;

/** First candidate dir holding all server binaries (so they are one version), or null. */
function serverBinDir(): string | null {
  if (cachedServerDir !== undefined) return cachedServerDir;
  const dirs = [...candidateDirs(), ...pathDirs()];
  cachedServerDir = dirs.find((d) => SERVER_BINARIES.every((b) => isExecutableFile(`${d}/${b}`))) ??
    null;
  return cachedServerDir;
}

/**
 * Absolute path of a PostgreSQL binary (`initdb`, `pg_ctl`, `postgres`,
 * `pg_isready`, `psql`, `pgbench`, …). Looks in `$PG_BINDIR`, then
 * `pg_config --bindir`, then the newest `/usr/lib/postgresql/<v>/bin`, then
 * `$PATH`, preferring the directory that holds a complete server so that all
 * binaries come from one version. Results of the directory scan are cached
 * for the process.
 *
 * @param name Binary name without directory, e.g. `"pg_ctl"`.
 * @returns The absolute path, e.g. `/usr/lib/postgresql/15/bin/pg_ctl`.
 * @throws {PgClusterError} if no such executable exists; the message says
 *   `apt-get install -y postgresql`.
 *
 * @example
 * ```ts
 * import { findPgBin } from "./pg_cluster.ts";
 *
 * const pgbench = findPgBin("pgbench"); // "/usr/lib/postgresql/15/bin/pgbench"
 * ```
 */
export function findPgBin(name: string): string {
  const preferred = serverBinDir();
  const dirs = [...(preferred ? [preferred] : []), ...candidateDirs(), ...pathDirs()];
  for (const dir of dirs) {
    const path = `${dir}/${name}`;
    if (isExecutableFile(path)) return path;
  }
  throw new PgClusterError(
    `PostgreSQL binary '${name}' not found (looked in $PG_BINDIR, pg_config --bindir, ` +
      `/usr/lib/postgresql/*/bin and $PATH); ${INSTALL_HINT}`,
  );
}

/**
 * Whether a PostgreSQL server (`initdb`, `pg_ctl` and `postgres` in one
 * directory) can be found, i.e. whether {@linkcode startThrowawayCluster} can
 * work. Never throws. Handy for `Deno.test({ ignore: !isPgServerInstalled() })`.
 *
 * @returns `true` when the server binaries are installed.
 *
 * @example
 * ```ts
 * import { isPgServerInstalled } from "./pg_cluster.ts";
 *
 * if (!isPgServerInstalled()) console.warn("apt-get install -y postgresql");
 * ```
 */
export function isPgServerInstalled(): boolean {
  return serverBinDir() !== null;
}

// ---------------------------------------------------------------------------
// Running the binaries (as `postgres` when we are root)
// ---------------------------------------------------------------------------

interface RunAs {
  uid: number;
  gid: number;
  /** Command prefix that drops to that user. */
  prefix: string[];
}

function lookupOsUser(name: string): { uid: number; gid: number } | undefined {
  try {
    for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
      const [user, , uid, gid] = line.split(":");
      if (user === name && uid !== undefined && gid !== undefined) {
        return { uid: Number(uid), gid: Number(gid) };
      }
    }
  } catch {
    // fall through to getent (NSS users)
  }
  try {
    const out = new Deno.Command("getent", {
      args: ["passwd", name],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const [, , uid, gid] = new TextDecoder().decode(out.stdout).trim().split(":");
    if (out.success && uid && gid) return { uid: Number(uid), gid: Number(gid) };
  } catch {
    // no getent
  }
  return undefined;
}

function findOnPath(name: string): string | undefined {
  for (const dir of [...pathDirs(), "/usr/bin", "/bin", "/usr/sbin", "/sbin"]) {
    if (isExecutableFile(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

/** How to drop privileges, or null when not root. */
function resolveRunAs(): RunAs | null {
  if (Deno.uid() !== 0) return null;
  const user = lookupOsUser("postgres");
  if (!user) {
    throw new PgClusterError(
      "running as root, and initdb refuses root, but there is no 'postgres' OS user to run " +
        `the server as; ${INSTALL_HINT} (it creates the user), or run as a non-root user`,
    );
  }
  const setpriv = findOnPath("setpriv");
  if (setpriv) {
    return {
      ...user,
      prefix: [setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--"],
    };
  }
  const runuser = findOnPath("runuser");
  if (runuser) return { ...user, prefix: [runuser, "-u", "postgres", "--"] };
  throw new PgClusterError(
    "running as root but neither setpriv nor runuser (util-linux) is available to run " +
      "the PostgreSQL binaries as the 'postgres' user; apt-get install -y util-linux",
  );
}

interface CmdResult {
  success: boolean;
  code: number;
  output: string;
}

function buildCommand(runAs: RunAs | null, bin: string, args: string[], cwd: string) {
  const argv = runAs ? [...runAs.prefix, bin, ...args] : [bin, ...args];
  // A C locale keeps the output parseable (and initdb's locale checks quiet).
  const env: Record<string, string> = { LC_ALL: "C" };
  return {
    argv,
    command: new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd, // the postgres user may not be able to enter our cwd (e.g. /root)
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
  };
}

const decoder = new TextDecoder();

function toResult(out: Deno.CommandOutput): CmdResult {
  const output = (decoder.decode(out.stdout) + decoder.decode(out.stderr)).trimEnd();
  return { success: out.success, code: out.code, output };
}

async function run(
  runAs: RunAs | null,
  bin: string,
  args: string[],
  cwd: string,
): Promise<CmdResult> {
  const { argv, command } = buildCommand(runAs, bin, args, cwd);
  try {
    return toResult(await command.output());
  } catch (cause) {
    throw new PgClusterError(`could not run ${argv.join(" ")}`, { cause });
  }
}

function runSync(runAs: RunAs | null, bin: string, args: string[], cwd: string): CmdResult {
  const { command } = buildCommand(runAs, bin, args, cwd);
  try {
    return toResult(command.outputSync());
  } catch (cause) {
    return { success: false, code: -1, output: String(cause) };
  }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function pickFreePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    return (listener.addr as Deno.NetAddr).port;
  } finally {
    listener.close();
  }
}

async function tcpAccepts(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function logTail(path: string, lines = 30): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

function confValue(value: string | number | boolean): string {
  if (typeof value === "boolean") return value ? "on" : "off";
  if (typeof value === "number") return String(value);
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

function majorVersion(bin: string): number {
  const m = /\/(\d+)(?:\.\d+)?\/bin$/.exec(bin.replace(/\/[^/]+$/, ""));
  if (m) return Number(m[1]);
  try {
    const out = new Deno.Command(bin, { args: ["--version"], stdout: "piped", stderr: "null" })
      .outputSync();
    const v = /(\d+)(?:\.\d+)?/.exec(decoder.decode(out.stdout));
    return v ? Number(v[1]) : 0;
  } catch {
    return 0;
  }
}

/** A `kickmon-pg-*` dir without an owner file younger than this (ms) may be in creation. */
const ORPHAN_MIN_AGE_MS = 60_000;
/** Name of the file, in a cluster's temp dir, holding the pid of the process that made it. */
const OWNER_FILE = "owner.pid";

function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops and removes clusters left behind in `parent` by processes that died
 * without calling `stop()` (killed test runs). Only directories named
 * `kickmon-pg-*` holding an owner pid file whose process is gone are touched.
 * Linux only (needs /proc); best effort, never throws.
 */
async function sweepOrphans(
  parent: string,
  runAs: RunAs | null,
  pgCtl: string,
  log: (l: string) => void,
) {
  try {
    Deno.statSync("/proc/self");
  } catch {
    return;
  }
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(parent)];
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.isDirectory || !entry.name.startsWith("kickmon-pg-")) continue;
    const dir = `${parent}/${entry.name}`;
    let owner: number;
    try {
      owner = Number((await Deno.readTextFile(`${dir}/${OWNER_FILE}`)).trim());
    } catch {
      // No owner file: being created right now (it is written at once), or the
      // remains of a removal cut short. Only the latter is old.
      owner = -1;
      try {
        const age = Date.now() - (Deno.statSync(dir).mtime?.getTime() ?? Date.now());
        if (age < ORPHAN_MIN_AGE_MS) continue;
        Deno.statSync(`${dir}/data/postmaster.pid`);
        continue; // a server without an owner file: not ours to judge
      } catch {
        // old, and no server: fall through and remove it
      }
    }
    if (!Number.isInteger(owner) || owner === 0 || (owner > 0 && processAlive(owner))) continue;
    try {
      Deno.statSync(`${dir}/data/postmaster.pid`);
      await run(runAs, pgCtl, ["stop", "-D", `${dir}/data`, "-m", "immediate", "-w"], dir);
    } catch {
      // no server running there
    }
    try {
      await Deno.remove(dir, { recursive: true });
      log(
        `pg_cluster: removed ${dir}, left behind by ` +
          (owner > 0 ? `dead process ${owner}` : "an interrupted run"),
      );
    } catch {
      // someone else is sweeping it
    }
  }
}

// ---------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------

/**
 * Creates and starts a throwaway PostgreSQL cluster: a temp dir, `initdb`
 * (superuser `postgres`, `trust` auth, UTF8, C locale, `--no-sync`), a server
 * on `127.0.0.1:<port>` with its unix socket in the temp dir, and a wait
 * until it accepts connections. Typical cost on 2 cores: ~1–2 s (mostly
 * initdb). Call `stop()` when done; nothing outside the temp dir is touched.
 *
 * @param opts See {@linkcode ThrowawayClusterOptions}: `port`, `log`,
 *   `durable` (default false: fsync off), `settings`, `startTimeoutMs`
 *   (default 60000 ms), `baseDir`.
 * @returns The running cluster, see {@linkcode ThrowawayCluster}.
 * @throws {PgClusterError} if the server binaries are missing (message says
 *   `apt-get install -y postgresql`), initdb fails, or the server does not
 *   accept connections within `startTimeoutMs`; the temp dir is removed first.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { startThrowawayCluster } from "./pg_cluster.ts";
 *
 * const cluster = await startThrowawayCluster({ log: console.error });
 * const sql = postgres(cluster.url, { max: 1 });
 * console.log(await sql`select 1 as one`); // [ { one: 1 } ]
 * await sql.end();
 * await cluster.stop();
 * ```
 */
export async function startThrowawayCluster(
  opts: ThrowawayClusterOptions = {},
): Promise<ThrowawayCluster> {
  const log = opts.log ?? (() => {});
  const startTimeoutMs = opts.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const began = performance.now();

  if (!isPgServerInstalled()) {
    throw new PgClusterError(
      "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in $PG_BINDIR, " +
        `pg_config --bindir, /usr/lib/postgresql/*/bin or $PATH; ${INSTALL_HINT}`,
    );
  }
  const initdb = findPgBin("initdb");
  const pgCtl = findPgBin("pg_ctl");
  const version = majorVersion(initdb);
  const runAs = resolveRunAs();

  let baseDir: string;
  try {
    baseDir = await Deno.makeTempDir({ dir: opts.baseDir, prefix: "kickmon-pg-" });
    await Deno.writeTextFile(`${baseDir}/${OWNER_FILE}`, `${Deno.pid}\n`);
    if (runAs) await Deno.chown(baseDir, runAs.uid, runAs.gid);
  } catch (cause) {
    throw new PgClusterError("could not create the cluster's temporary directory", { cause });
  }
  await sweepOrphans(baseDir.replace(/\/[^/]+$/, ""), runAs, pgCtl, log);
  const dataDir = `${baseDir}/data`;
  const logFile = `${baseDir}/server.log`;
  const confFile = `${dataDir}/kickmon.conf`;
  let port = opts.port ?? pickFreePort();
  let running = false;
  let removed = false;

  const removeAll = async () => {
    if (removed) return;
    try {
      await Deno.remove(baseDir, { recursive: true });
      removed = true;
    } catch (cause) {
      if (cause instanceof Deno.errors.NotFound) {
        removed = true;
        return;
      }
      throw new PgClusterError(`could not remove ${baseDir}`, { cause });
    }
  };

  const writeConf = async () => {
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: "127.0.0.1",
      port,
      unix_socket_directories: baseDir,
      max_connections: 200,
      ...(opts.durable ? {} : { fsync: false, synchronous_commit: false, full_page_writes: false }),
      ...opts.settings,
    };
    const text = Object.entries(settings)
      .map(([k, v]) => `${k} = ${confValue(v)}`)
      .join("\n") + "\n";
    await Deno.writeTextFile(confFile, text);
    if (runAs) await Deno.chown(confFile, runAs.uid, runAs.gid);
  };

  const startOnce = async (): Promise<CmdResult> => {
    const timeoutS = Math.max(1, Math.ceil(startTimeoutMs / 1000));
    const res = await run(
      runAs,
      pgCtl,
      ["start", "-D", dataDir, "-l", logFile, "-w", "-t", String(timeoutS)],
      baseDir,
    );
    if (!res.success) return res;
    // pg_ctl -w saw the server ready; confirm the TCP listener within the deadline.
    const deadline = performance.now() + startTimeoutMs;
    while (!(await tcpAccepts(port))) {
      if (performance.now() > deadline) {
        return { success: false, code: -1, output: `port ${port} does not accept connections` };
      }
      await sleep(20);
    }
    return res;
  };

  const pgStopImpl = async (mode: "fast" | "immediate"): Promise<CmdResult> => {
    return await run(
      runAs,
      pgCtl,
      ["stop", "-D", dataDir, "-m", mode, "-w", "-t", String(STOP_TIMEOUT_S)],
      baseDir,
    );
  };

  const serverMayRun = () => {
    try {
      Deno.statSync(`${dataDir}/postmaster.pid`);
      return true;
    } catch {
      return false;
    }
  };

  try {
    log(`pg_cluster: initdb (PostgreSQL ${version}) into ${dataDir}`);
    const init = await run(
      runAs,
      initdb,
      [
        "-D",
        dataDir,
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
      ],
      baseDir,
    );
    for (const line of init.output.split("\n")) if (line) log(`initdb: ${line}`);
    if (!init.success) {
      throw new PgClusterError(`initdb failed with exit code ${init.code}`, {
        output: init.output,
      });
    }
    const mainConf = `${dataDir}/postgresql.conf`;
    await Deno.writeTextFile(mainConf, "\ninclude_if_exists = 'kickmon.conf'\n", { append: true });

    for (let attempt = 1;; attempt++) {
      await writeConf();
      const t0 = performance.now();
      const res = await startOnce();
      if (res.success) {
        running = true;
        log(
          `pg_cluster: server up on 127.0.0.1:${port} in ${
            Math.round(performance.now() - t0)
          } ms ` +
            `(total ${Math.round(performance.now() - began)} ms; log ${logFile})`,
        );
        break;
      }
      const tail = await logTail(logFile);
      if (serverMayRun()) await pgStopImpl("immediate");
      const portTaken = /could not bind|Address already in use/i.test(tail);
      if (opts.port === undefined && portTaken && attempt < PORT_ATTEMPTS) {
        log(`pg_cluster: port ${port} was taken, trying another`);
        port = pickFreePort();
        continue;
      }
      throw new PgClusterError(
        `PostgreSQL failed to start on 127.0.0.1:${port} (pg_ctl exit code ${res.code}, ` +
          `start timeout ${startTimeoutMs} ms); see the server log below`,
        { output: [res.output, tail].filter(Boolean).join("\n") },
      );
    }
  } catch (err) {
    try {
      if (serverMayRun()) await pgStopImpl("immediate");
      await removeAll();
    } catch {
      // report the original failure
    }
    if (err instanceof PgClusterError) throw err;
    throw new PgClusterError("could not create the throwaway cluster", { cause: err });
  }

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;

  const pgStop = async () => {
    if (!running && !serverMayRun()) return;
    const t0 = performance.now();
    let res = await pgStopImpl("fast");
    if (!res.success && serverMayRun()) res = await pgStopImpl("immediate");
    if (!res.success && serverMayRun()) {
      throw new PgClusterError(`pg_ctl stop failed with exit code ${res.code}`, {
        output: res.output,
      });
    }
    running = false;
    log(`pg_cluster: server on port ${port} stopped in ${Math.round(performance.now() - t0)} ms`);
  };

  const pgStart = async () => {
    if (running) return;
    const t0 = performance.now();
    const res = await startOnce();
    if (!res.success) {
      const tail = await logTail(logFile);
      if (serverMayRun()) await pgStopImpl("immediate");
      throw new PgClusterError(
        `PostgreSQL failed to restart on 127.0.0.1:${port} (pg_ctl exit code ${res.code}, ` +
          `start timeout ${startTimeoutMs} ms); see the server log below`,
        { output: [res.output, tail].filter(Boolean).join("\n") },
      );
    }
    running = true;
    log(`pg_cluster: server restarted on port ${port} in ${Math.round(performance.now() - t0)} ms`);
  };

  const stop = async () => {
    if (removed) return;
    try {
      await pgStop();
    } catch (err) {
      log(`pg_cluster: ${err instanceof Error ? err.message : String(err)}`);
    }
    await removeAll();
  };

  const stopSync = () => {
    if (removed) return;
    if (serverMayRun()) {
      const args = (mode: string) => ["stop", "-D", dataDir, "-m", mode, "-w", "-t", "10"];
      const res = runSync(runAs, pgCtl, args("fast"), baseDir);
      if (!res.success && serverMayRun()) runSync(runAs, pgCtl, args("immediate"), baseDir);
    }
    running = false;
    try {
      Deno.removeSync(baseDir, { recursive: true });
      removed = true;
    } catch {
      // best effort: nothing to report to in an unload handler
    }
  };

  return {
    url,
    port,
    dataDir,
    baseDir,
    logFile,
    version,
    stop,
    stopSync,
    pgStop,
    pgStart,
    [Symbol.asyncDispose]: stop,
  };
}
