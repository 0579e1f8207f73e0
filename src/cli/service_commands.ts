/**
 * Operator commands around a running kickmon and its data:
 *
 * | command | what it does | exit codes |
 * |---|---|---|
 * | `kickmon status [--json]` | asks the running instance's `GET /health` (`HEALTH_CHECK_LISTEN`) | 0 healthy, 1 unhealthy (names the component), 3 not running |
 * | `kickmon stop [--timeout S]` | SIGTERM to the PID in `<state dir>/kickmon.pid`, then waits for the process to exit | 0 stopped or not running, 1 did not stop / cannot signal, 2 managed by systemd |
 * | `kickmon restart [--timeout S]` | `stop`, then runs the monitor **in the foreground of this terminal** (like `kickmon start`) | as `start`; 2 when managed by systemd |
 * | `kickmon streamers add <username>` | resolves the channel through the official API, then inserts it | 0, 1 unknown channel / already listed |
 * | `kickmon streamers remove <username>` | deletes the row (and its history) | 0, 1 no such streamer |
 * | `kickmon streamers test <username> [--json]` | prints what Kick reports right now | 0, 1 unknown channel |
 * | `kickmon db backup [--output DIR]` | `pg_dump` into `kickmon-<YYYYmmdd-HHMMSS>.sql` (UTC), mode 0600, in `<state dir>/backups` by default | 0, 1 pg_dump missing or failed |
 *
 * A kickmon run by systemd (the packaged `kickmon.service`) is not stopped or
 * restarted behind systemd's back (`Restart=always` would start it again):
 * `stop`/`restart` exit 2 and say to use `systemctl stop|restart kickmon`
 * when they run inside a unit (`INVOCATION_ID`/`NOTIFY_SOCKET` set), when the
 * PID file says the instance runs under systemd (`kickmon start` records
 * the `INVOCATION_ID` systemd gave it, see {@linkcode pidFileText}), or when
 * an instance answers on the health address but has no PID file in this
 * state directory. Nothing here reads `/proc` of another process to decide
 * this: the shipped binary may not (`--allow-read` names only its state
 * directories), and a check that cannot read would silently say "not systemd".
 *
 * Signals are sent with `kill(1)` (procps), not `Deno.kill`: the latter needs
 * unrestricted `--allow-run`, the former only `--allow-run=/usr/bin/kill`.
 * The database password reaches `pg_dump` through `PGPASSWORD` in its
 * environment, never on its command line.
 *
 * Wiring (in `src/cli/main.ts`):
 *
 * ```ts
 * registerServiceCommands(program, (c) => (code = c));
 * registerStreamerCommands(streamers, (c) => (code = c));
 * registerDbBackup(db, (c) => (code = c));
 * ```
 *
 * @module
 */
import type { Command } from "commander";
import { type Config, loadConfig, readEnvironment, secretValues } from "../config/config.ts";
import { connectDatabase, DatabaseError, type Sql } from "../db/client.ts";
import { deleteStreamers, insertStreamer, listStreamerViews } from "../db/streamers_repo.ts";
import { KickApiError } from "../kick/official/api.ts";
import { InvalidCredentialsError, OAuthError } from "../kick/official/oauth.ts";
import { describeError, networkCause } from "../log/errors.ts";
import { registerSecret } from "../log/logging.ts";
import { createKickApi } from "../service/official.ts";
import { statePaths } from "../service/state_paths.ts";
import { CliError, EXIT } from "./errors.ts";

/**
 * Sets the process exit code of the command being run (main.ts's `code`).
 *
 * @example
 * ```ts
 * let code = 0;
 * const setExit: SetExit = (c) => (code = c);
 * ```
 */
export type SetExit = (code: number) => void;

// ---------------------------------------------------------------------------
// Small helpers

/**
 * The PID file `kickmon start` writes: `<stateDirectory>/kickmon.pid`.
 *
 * @example
 * ```ts
 * pidFilePath(config); // "/var/lib/kickmon/kickmon.pid" under systemd
 * ```
 */
export function pidFilePath(config: Config): string {
  return statePaths(config.system.stateDirectory).pidFile;
}

/**
 * The URL `kickmon status` asks: `http://<HEALTH_CHECK_LISTEN>/health`, with a
 * wildcard listen address (`0.0.0.0`, `::`) replaced by its loopback address.
 *
 * @example
 * ```ts
 * healthUrl({ hostname: "0.0.0.0", port: 8080 }); // "http://127.0.0.1:8080/health"
 * ```
 */
export function healthUrl(health: { hostname: string; port: number }): string {
  let host = health.hostname;
  if (host === "0.0.0.0" || host === "") host = "127.0.0.1";
  if (host === "::" || host === "[::]") host = "::1";
  if (host.includes(":") && !host.startsWith("[")) host = `[${host}]`;
  return `http://${host}:${health.port}/health`;
}

/**
 * The file name `kickmon db backup` writes: `kickmon-YYYYmmdd-HHMMSS.sql`, in UTC.
 *
 * @example
 * ```ts
 * backupFileName(new Date("2025-03-04T05:06:07Z")); // "kickmon-20250304-050607.sql"
 * ```
 */
export function backupFileName(at: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `kickmon-${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}-${
    p(at.getUTCHours())
  }${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}.sql`;
}

const errText = (e: unknown) => e instanceof Error ? e.message : String(e);

/**
 * What `kickmon start` writes into its PID file: the PID on the first line
 * (what `kill $(head -n1 kickmon.pid)` and `kickmon stop|status` read) and,
 * when systemd started the process, `systemd-invocation=<INVOCATION_ID>` on
 * the second, so that `kickmon stop` run from an operator's shell knows to
 * hand over to `systemctl` without looking at the process itself.
 *
 * @param pid the process to name. Default `Deno.pid`.
 * @param invocationId systemd's `INVOCATION_ID` of this process, if any.
 *   Default: read from the environment.
 *
 * @example
 * ```ts
 * pidFileText(4242, "2f0c…"); // "4242\nsystemd-invocation=2f0c…\n"
 * pidFileText(4242, undefined); // "4242\n"
 * ```
 */
export function pidFileText(
  pid: number = Deno.pid,
  invocationId: string | undefined = systemdInvocationId(),
): string {
  return `${pid}\n` + (invocationId ? `systemd-invocation=${invocationId}\n` : "");
}

/** systemd's `INVOCATION_ID` of this process (a 32-digit hex id), or `undefined`. */
function systemdInvocationId(): string | undefined {
  let id: string | undefined;
  try {
    id = Deno.env.get("INVOCATION_ID")?.trim();
  } catch {
    // not granted (a build without it): not provably under systemd
    return undefined;
  }
  return id && /^[0-9a-f]{32}$/i.test(id) ? id.toLowerCase() : undefined;
}

/** A PID file's contents (see {@linkcode pidFileText}). */
interface PidRecord {
  readonly pid: number;
  /** systemd's invocation id of that process, when systemd started it. */
  readonly systemdInvocation?: string;
}

/**
 * Reads the PID file; `null` when absent, not a PID, or outside what this
 * build may read (the compiled binary reads only its build-time state
 * directories: an operator shell without `SYSTEM_STATE_DIRECTORY` looks in
 * `./state`). With `lenient`, an OS permission error is `null` too.
 */
async function readPidFile(path: string, lenient = false): Promise<PidRecord | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotCapable) return null;
    if (lenient) return null;
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new CliError(
        `cannot read the PID file ${path} (${errText(e)}): run as the user kickmon runs as`,
        EXIT.failure,
        { cause: e },
      );
    }
    throw new CliError(`cannot read the PID file ${path}: ${errText(e)}`, EXIT.failure, {
      cause: e,
    });
  }
  const [first, ...rest] = text.split("\n");
  const pid = Number(first.trim());
  if (!Number.isInteger(pid) || pid <= 1) return null;
  const invocation = rest.map((l) => l.trim().match(/^systemd-invocation=(\S+)$/)?.[1])
    .find((v) => v !== undefined);
  return invocation ? { pid, systemdInvocation: invocation } : { pid };
}

type KillResult = "ok" | "gone" | "forbidden";

/** Runs `kill -s <signal> <pid>` (`signal` 0 probes). */
async function kill(pid: number, signal: "0" | "TERM"): Promise<KillResult> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("kill", {
      args: signal === "0" ? ["-0", String(pid)] : ["-s", signal, String(pid)],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CliError(
        "kill(1) is not installed (Debian: apt-get install procps)",
        EXIT.failure,
        {
          cause: e,
        },
      );
    }
    throw new CliError(
      `cannot run kill(1) (${errText(e)}); this build allows only the paths named by ` +
        "KICKMON_KILL at build time",
      EXIT.failure,
      { cause: e },
    );
  }
  if (out.success) return "ok";
  const stderr = new TextDecoder().decode(out.stderr);
  if (/not permitted|EPERM/i.test(stderr)) return "forbidden";
  return "gone";
}

/** Whether a process exists (one we may not be allowed to signal counts as existing). */
async function isAlive(pid: number): Promise<boolean> {
  return (await kill(pid, "0")) !== "gone";
}

/** Reads a small /proc file; `null` when unavailable (process gone, no permission). */
async function readProc(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return null;
  }
}

/**
 * Whether `pid` looks like a kickmon monitor (its command line has a `start`
 * or `restart` argument). `null` when /proc cannot be read.
 */
async function looksLikeKickmon(pid: number): Promise<boolean | null> {
  const cmdline = await readProc(`/proc/${pid}/cmdline`);
  if (cmdline === null) return null;
  const args = cmdline.split("\0");
  return args.includes("start") || args.includes("restart");
}

/** What `GET /health` answered. */
export interface HealthAnswer {
  /** `reachable: false` when nothing answered (connection refused or timed out). */
  readonly reachable: boolean;
  /** HTTP status (200 healthy, 503 unhealthy). */
  readonly status?: number;
  /** Parsed JSON body, when it was JSON. */
  readonly body?: HealthBody;
  /** Why it was not reachable. */
  readonly error?: string;
  /** True when the request timed out (something listens but does not answer). */
  readonly timedOut?: boolean;
}

/**
 * The parts of the `/health` JSON that `kickmon status` reads (see
 * `src/http/server.ts`); every field is optional so an older or newer
 * server's answer still prints.
 *
 * @example
 * ```ts
 * const body: HealthBody = { status: "healthy", pid: 4242, database: { up: true } };
 * ```
 */
export interface HealthBody {
  /** `healthy` or `unhealthy`. */
  readonly status?: string;
  /** PID of the answering kickmon. */
  readonly pid?: number;
  /** Database reachability, the current error, when it is tried again (ISO 8601). */
  readonly database?: {
    up?: boolean;
    error?: string | null;
    last_error?: string | null;
    next_retry_at?: string | null;
  };
  /** Pusher: all connections up, and each connection (shard) with its state. */
  readonly pusher?: {
    up?: boolean;
    connections?: {
      index?: number;
      state?: string;
      channels?: number;
      subscribed?: number;
      last_error?: string | null;
      next_retry_at?: string | null;
    }[];
  };
  /** OAuth token state (`valid`, `refreshing`, `not used`, `failing`, …), its error and retry time. */
  readonly token?: { state?: string; last_error?: string | null; next_retry_at?: string | null };
  /** Status writes waiting for the database. */
  readonly write_queue_depth?: number;
  /** Streamer counts by status (`online`, `offline`, `unknown`, `inactive`). */
  readonly streamers?: Record<string, number>;
}

/**
 * Asks `GET <url>` with a deadline.
 *
 * @param url e.g. from {@linkcode healthUrl}.
 * @param timeoutMs deadline in ms (default 5000).
 * @returns `{ reachable: false }` on connection refused / timeout, else the status and body.
 * @throws {CliError} when this build may not connect there (missing `--allow-net`).
 *
 * @example
 * ```ts
 * const h = await fetchHealth("http://127.0.0.1:8080/health");
 * if (h.reachable && h.status === 200) console.log("healthy");
 * ```
 */
export async function fetchHealth(url: string, timeoutMs = 5_000): Promise<HealthAnswer> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      throw new CliError(
        `this kickmon build may not connect to ${new URL(url).host} (${errText(e)}); ` +
          "rebuild with KICKMON_LISTEN naming HEALTH_CHECK_LISTEN",
        EXIT.failure,
        { cause: e },
      );
    }
    const timedOut = e instanceof DOMException && e.name === "TimeoutError";
    return {
      reachable: false,
      timedOut,
      error: timedOut ? `no answer within ${timeoutMs} ms` : networkCause(e),
    };
  }
  const text = await res.text();
  let body: HealthBody | undefined;
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object") body = parsed as HealthBody;
  } catch {
    body = undefined;
  }
  return { reachable: true, status: res.status, body };
}

/** `; next retry 12:00:05Z` for an ISO time, nothing for none. */
function retryNote(at: string | null | undefined): string {
  if (!at) return "";
  return `; next retry ${at.replace(/^\d{4}-\d\d-\d\dT/, "").replace(/\.\d+Z$/, "Z")}`;
}

/** Lines naming what is wrong in an unhealthy `/health` answer, with each component's error. */
function unhealthyComponents(b: HealthBody): string[] {
  const out: string[] = [];
  if (b.database && b.database.up === false) {
    const why = b.database.last_error ?? b.database.error;
    out.push(`database: down${why ? ` (${why}${retryNote(b.database.next_retry_at)})` : ""}`);
  }
  if (b.pusher && b.pusher.up === false) {
    const bad = (b.pusher.connections ?? []).filter((c) => c.state !== "connected");
    out.push(
      `pusher: ${bad.length} of ${b.pusher.connections?.length ?? 0} connections not connected`,
    );
    for (const c of bad) {
      out.push(
        `  #${c.index ?? "?"} ${c.state ?? "?"}${
          c.last_error ? `: ${c.last_error}${retryNote(c.next_retry_at)}` : ""
        }`,
      );
    }
  }
  const token = b.token?.state;
  if (token && !["valid", "not used", "refreshing"].includes(token)) {
    const why = b.token?.last_error;
    out.push(`token: ${token}${why ? ` (${why}${retryNote(b.token?.next_retry_at)})` : ""}`);
  }
  if (out.length === 0) out.push(`status: ${b.status ?? "unknown"}`);
  return out;
}

function summary(b: HealthBody): string[] {
  const conns = b.pusher?.connections ?? [];
  const s = b.streamers ?? {};
  return [
    `database: ${b.database?.up ? "up" : "down"}`,
    `pusher: ${conns.filter((c) => c.state === "connected").length}/${conns.length} connections, ${
      conns.reduce((n, c) => n + (c.subscribed ?? 0), 0)
    } channels subscribed`,
    `token: ${b.token?.state ?? "?"}`,
    `streamers: ${Object.entries(s).map(([k, v]) => `${v} ${k}`).join(", ") || "-"}; write queue ${
      b.write_queue_depth ?? 0
    }`,
  ];
}

/**
 * Loads the configuration for a CLI command and registers its secrets for redaction.
 *
 * @param requireKickCredentials whether `KICK_CLIENT_ID`/`KICK_CLIENT_SECRET` must be set.
 * @throws {ConfigError} naming each bad variable.
 *
 * @example
 * ```ts
 * const config = loadOperatorConfig(false);
 * ```
 */
export function loadOperatorConfig(requireKickCredentials = false): Config {
  const config = loadConfig(readEnvironment(), { requireKickCredentials });
  for (const secret of secretValues(config)) registerSecret(secret);
  return config;
}

// ---------------------------------------------------------------------------
// status / stop / restart

/** Options for {@linkcode stopInstance}. */
export interface StopOptions {
  /** How long to wait for the process to exit after SIGTERM, ms. */
  readonly timeoutMs: number;
  /** Progress lines (default: stderr). */
  readonly log?: (line: string) => void;
}

/** What {@linkcode stopInstance} did. */
export type StopOutcome =
  | { readonly kind: "stopped"; readonly pid: number }
  | { readonly kind: "not-running"; readonly detail: string };

function systemdRefusal(what: "stop" | "restart", why: string): CliError {
  return new CliError(
    `${why}: use 'systemctl ${what} kickmon' (signalling it directly would fight systemd's ` +
      "Restart=always)",
    EXIT.usage,
  );
}

/**
 * Stops the instance named by the PID file: refuses when systemd manages it,
 * sends SIGTERM, and waits until the process has exited.
 *
 * @returns `stopped` with the PID, or `not-running` (no PID file, stale PID file).
 * @throws {CliError} exit 2 when systemd manages the instance; exit 1 when the
 *   process cannot be signalled or is still running after `timeoutMs`.
 *
 * @example
 * ```ts
 * const r = await stopInstance(config, "stop", { timeoutMs: 20_000 });
 * if (r.kind === "stopped") console.log(`stopped ${r.pid}`);
 * ```
 */
export async function stopInstance(
  config: Config,
  what: "stop" | "restart",
  opts: StopOptions,
): Promise<StopOutcome> {
  // Progress, not the result: stderr (stdout stays the command's answer).
  const log = opts.log ?? ((l: string) => console.error(l));
  if (Deno.env.get("INVOCATION_ID") || Deno.env.get("NOTIFY_SOCKET")) {
    throw systemdRefusal(what, "this command runs inside a systemd unit");
  }
  const pidFile = pidFilePath(config);
  const record = await readPidFile(pidFile);
  let pid = record?.pid ?? null;
  if (pid !== null && !(await isAlive(pid))) {
    log(`removing stale PID file ${pidFile} (process ${pid} is gone)`);
    await Deno.remove(pidFile).catch(() => {});
    pid = null;
  }
  const health = config.health.enabled
    ? await fetchHealth(healthUrl(config.health), 2_000)
    : { reachable: false } as HealthAnswer;
  const healthPid = health.reachable ? health.body?.pid : undefined;
  if (pid === null) {
    if (typeof healthPid === "number") {
      throw systemdRefusal(
        what,
        `an instance (pid ${healthPid}) answers on ${healthUrl(config.health)} but has no PID ` +
          `file at ${pidFile}; if it runs under systemd`,
      );
    }
    return { kind: "not-running", detail: `no PID file at ${pidFile}` };
  }
  if (record?.systemdInvocation) {
    throw systemdRefusal(
      what,
      `kickmon (pid ${pid}) runs under systemd (invocation ${record.systemdInvocation}, ` +
        `recorded in ${pidFile})`,
    );
  }
  if (typeof healthPid === "number" && healthPid !== pid) {
    throw new CliError(
      `the PID file ${pidFile} names ${pid}, but the instance on ${
        healthUrl(config.health)
      } is pid ${healthPid}; not signalling either`,
      EXIT.failure,
    );
  }
  if (healthPid === undefined && (await looksLikeKickmon(pid)) === false) {
    log(`removing stale PID file ${pidFile} (process ${pid} is not kickmon)`);
    await Deno.remove(pidFile).catch(() => {});
    return { kind: "not-running", detail: `stale PID file (pid ${pid} is not kickmon)` };
  }
  const sent = await kill(pid, "TERM");
  if (sent === "forbidden") {
    throw new CliError(
      `not allowed to signal kickmon (pid ${pid}): run as its user or root`,
      EXIT.failure,
    );
  }
  if (sent === "gone") return { kind: "not-running", detail: `process ${pid} exited meanwhile` };
  log(`sent SIGTERM to kickmon (pid ${pid}); waiting up to ${Math.round(opts.timeoutMs / 1000)} s`);
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isAlive(pid))) return { kind: "stopped", pid };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new CliError(
    `kickmon (pid ${pid}) is still running ${
      Math.round(opts.timeoutMs / 1000)
    } s after SIGTERM; look at its log, or 'kill -KILL ${pid}' (pending writes stay in the spool)`,
    EXIT.failure,
  );
}

function stopTimeoutMs(config: Config, option: string | undefined): number {
  if (option === undefined) return config.monitoring.shutdownTimeoutMs + 10_000;
  const s = Number(option);
  if (!Number.isFinite(s) || s <= 0 || s > 3600) {
    throw new CliError(`--timeout: expected seconds (1..3600), got "${option}"`, EXIT.usage);
  }
  return s * 1000;
}

/**
 * Registers `status`, `stop` and `restart` on the top-level program.
 *
 * @param program the `kickmon` commander program.
 * @param setExit receives each command's exit code (errors are thrown as
 *   {@linkcode CliError} / `ConfigError` for main's `reportError`).
 *
 * @example
 * ```ts
 * let code = 0;
 * registerServiceCommands(program, (c) => (code = c));
 * await program.parseAsync(["status"], { from: "user" });
 * ```
 */
export function registerServiceCommands(program: Command, setExit: SetExit): void {
  program.command("status")
    .description(
      "ask the running instance's /health: exit 0 healthy, 1 unhealthy, 3 not running",
    )
    .option("--json", "print the /health answer as JSON")
    .action(async (opts: { json?: boolean }) => {
      const config = loadOperatorConfig();
      const pidFile = pidFilePath(config);
      const pid = (await readPidFile(pidFile, true))?.pid ?? null;
      const alive = pid !== null && await isAlive(pid).catch(() => false);
      if (!config.health.enabled) {
        if (alive) {
          console.log(`kickmon is running (pid ${pid}); health endpoint disabled`);
          setExit(EXIT.ok);
        } else {
          console.log(`kickmon is not running (${pid ? "stale" : "no"} PID file at ${pidFile})`);
          setExit(EXIT.notRunning);
        }
        return;
      }
      const url = healthUrl(config.health);
      const h = await fetchHealth(url);
      if (!h.reachable) {
        if (alive || h.timedOut) {
          console.log(
            `kickmon${
              pid ? ` (pid ${pid})` : ""
            } is running but ${url} does not answer: ${h.error}`,
          );
          setExit(EXIT.failure);
        } else {
          console.log(
            `kickmon is not running (nothing answers on ${url}; ${
              pid ? "stale" : "no"
            } PID file at ${pidFile})`,
          );
          setExit(EXIT.notRunning);
        }
        return;
      }
      if (opts.json && h.body) console.log(JSON.stringify(h.body, null, 2));
      if (!h.body || (h.status !== 200 && h.status !== 503)) {
        console.log(`unexpected answer from ${url}: HTTP ${h.status}; is that kickmon?`);
        setExit(EXIT.failure);
        return;
      }
      const who = `kickmon (pid ${h.body.pid ?? "?"}, ${url})`;
      if (h.status === 200) {
        if (!opts.json) {
          console.log(`${who}: healthy`);
          for (const l of summary(h.body)) console.log(`  ${l}`);
        }
        setExit(EXIT.ok);
      } else {
        if (!opts.json) {
          console.log(`${who}: UNHEALTHY`);
          for (const l of unhealthyComponents(h.body)) console.log(`  ${l}`);
        }
        setExit(EXIT.failure);
      }
    });

  program.command("stop")
    .description(
      "stop the instance in the PID file (SIGTERM, wait); under systemd use 'systemctl stop kickmon'",
    )
    .option(
      "--timeout <seconds>",
      "how long to wait for it to exit (default shutdown timeout + 10)",
    )
    .action(async (opts: { timeout?: string }) => {
      const config = loadOperatorConfig();
      const r = await stopInstance(config, "stop", {
        timeoutMs: stopTimeoutMs(config, opts.timeout),
      });
      console.log(
        r.kind === "stopped"
          ? `kickmon (pid ${r.pid}) stopped`
          : `kickmon is not running (${r.detail})`,
      );
      setExit(EXIT.ok);
    });

  program.command("restart")
    .description(
      "stop the running instance, then run the monitor in the foreground here (as 'start'); " +
        "under systemd use 'systemctl restart kickmon'",
    )
    .option("--timeout <seconds>", "how long to wait for the old instance to exit")
    .action(async (opts: { timeout?: string }) => {
      // Validate everything `start` needs before stopping a working instance.
      const config = loadOperatorConfig(true);
      const r = await stopInstance(config, "restart", {
        timeoutMs: stopTimeoutMs(config, opts.timeout),
      });
      // stderr: stdout carries the monitor's log lines from here on.
      console.error(
        r.kind === "stopped"
          ? `kickmon (pid ${r.pid}) stopped; starting in the foreground`
          : `kickmon was not running (${r.detail}); starting in the foreground`,
      );
      const { runStart } = await import("./start.ts");
      setExit(await runStart({ config }));
    });
}

// ---------------------------------------------------------------------------
// streamers add / remove / test

const SLUG_RE = /^[A-Za-z0-9_-]{1,64}$/;

function checkSlug(username: string): string {
  const slug = username.trim().replace(/^https?:\/\/(www\.)?kick\.com\//i, "").replace(/\/+$/, "");
  if (!SLUG_RE.test(slug)) {
    throw new CliError(
      `"${username}" is not a Kick username (letters, digits, '_' and '-')`,
      EXIT.usage,
    );
  }
  return slug;
}

/**
 * What Kick reports about one streamer now (`kickmon streamers test --json`).
 *
 * @example
 * ```ts
 * const r: StreamerReport = {
 *   slug: "bossmanjack", userId: 2570626, isLive: true, channelId: 2515504,
 *   title: "slots", startedAt: "2025-01-01T00:00:00.000Z",
 * };
 * ```
 */
export interface StreamerReport {
  /** Channel slug as Kick spells it. */
  readonly slug: string;
  /** `broadcaster_user_id`. */
  readonly userId: number;
  /** `stream.is_live`. */
  readonly isLive: boolean;
  /** Pusher channel id; only known while live (`GET /livestreams`). */
  readonly channelId: number | null;
  /** Stream title, when live. */
  readonly title: string | null;
  /** ISO 8601, when live. */
  readonly startedAt: string | null;
}

function kickError(e: unknown, doing: string): never {
  if (e instanceof CliError) throw e;
  if (e instanceof InvalidCredentialsError) {
    throw new CliError(
      "Kick rejected KICK_CLIENT_ID/KICK_CLIENT_SECRET (invalid_client): check the app credentials",
      EXIT.usage,
      { cause: e },
    );
  }
  if (e instanceof KickApiError || e instanceof OAuthError) {
    throw new CliError(`${doing}: ${e.message}`, EXIT.failure, { cause: e });
  }
  throw new CliError(`${doing}: ${describeError(e)}`, EXIT.failure, { cause: e });
}

/**
 * Looks a streamer up through the official API: `GET /channels?slug=` and,
 * when live, `GET /livestreams` for the channel id.
 *
 * @returns the report, or `null` when Kick has no such channel.
 * @throws {CliError} exit 2 for rejected credentials, 1 for other API failures.
 *
 * @example
 * ```ts
 * const r = await lookupStreamer(config, "bossmanjack");
 * console.log(r?.isLive, r?.channelId);
 * ```
 */
export async function lookupStreamer(
  config: Config,
  username: string,
): Promise<StreamerReport | null> {
  const slug = checkSlug(username);
  const { api, tokens } = createKickApi(config);
  try {
    let channels;
    try {
      channels = await api.getChannels({ slugs: [slug] });
    } catch (e) {
      kickError(e, `asking Kick about "${slug}"`);
    }
    const c = channels.find((x) => x.slug.toLowerCase() === slug.toLowerCase()) ?? channels[0];
    if (!c) return null;
    let channelId: number | null = null;
    let title: string | null = c.streamTitle ?? null;
    let startedAt: string | null = c.startTime ? new Date(c.startTime).toISOString() : null;
    if (c.isLive) {
      try {
        const [l] = (await api.getLivestreams([c.broadcasterUserId])).filter((x) =>
          x.broadcasterUserId === c.broadcasterUserId
        );
        if (l) {
          channelId = l.channelId;
          title = l.title ?? title;
          startedAt = l.startedAt ? new Date(l.startedAt).toISOString() : startedAt;
        }
      } catch (e) {
        console.error(`kickmon: warning: could not read the live stream: ${describeError(e)}`);
      }
    }
    return {
      slug: c.slug,
      userId: c.broadcasterUserId,
      isLive: c.isLive,
      channelId,
      title,
      startedAt,
    };
  } finally {
    api.close();
    tokens.close();
  }
}

/**
 * Runs `fn` with a one-connection database client and closes it afterwards,
 * however `fn` ends. The database password is registered with
 * `registerSecret` first, so no log line or error message can show it.
 *
 * @param fn what to do with the connection.
 * @param config the configuration to connect with; by default it is read
 *   from the environment (Kick credentials not required).
 * @returns what `fn` returns.
 * @throws {CliError} (exit 1) when the kickmon schema is missing (PostgreSQL
 *   `42P01`), saying to run `kickmon db migrate`; `ConfigError` for a bad
 *   configuration; otherwise whatever `fn` throws.
 *
 * @example
 * ```ts
 * const rows = await withDatabase((sql) => listStreamerViews(sql));
 * ```
 */
export async function withDatabase<T>(
  fn: (sql: Sql) => Promise<T>,
  config: Config = loadOperatorConfig(false),
): Promise<T> {
  registerSecret(config.database.password);
  const sql = connectDatabase(config.database, { max: 1 });
  try {
    return await fn(sql);
  } catch (e) {
    if (e instanceof DatabaseError && (e.code === "42P01" || e.code === "3F000")) {
      throw new CliError(
        `${e.message}: the database is not set up for kickmon yet; run 'kickmon db migrate' ` +
          "('kickmon db health' says what is missing)",
        EXIT.usage,
        { cause: e },
      );
    }
    if (e instanceof DatabaseError && e.code === "42501") {
      throw new CliError(
        `${e.message}: kickmon's database role lacks a privilege; 'kickmon db health' names it ` +
          "and prints the GRANT that fixes it",
        EXIT.usage,
        { cause: e },
      );
    }
    throw e;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

/**
 * Registers `add`, `remove` and `test` under the existing `streamers` command.
 *
 * @param streamers the `kickmon streamers` command (which already has `list`).
 * @param setExit receives each command's exit code.
 *
 * @example
 * ```ts
 * const streamers = program.command("streamers");
 * registerStreamerCommands(streamers, (c) => (code = c));
 * ```
 */
export function registerStreamerCommands(streamers: Command, setExit: SetExit): void {
  streamers.command("add")
    .description("resolve <username> through Kick's official API and add it to the list")
    .argument("<username>", "Kick channel slug (kick.com/<username>)")
    .action(async (username: string) => {
      const config = loadOperatorConfig(true);
      const r = await lookupStreamer(config, username);
      if (!r) {
        throw new CliError(`Kick has no channel "${checkSlug(username)}"`, EXIT.failure);
      }
      const id = await withDatabase(async (sql) => {
        try {
          return await insertStreamer(sql, {
            username: r.slug,
            kickUserId: r.userId,
            kickChannelId: r.channelId,
          });
        } catch (e) {
          if (e instanceof DatabaseError && e.code === "23505") {
            const rows = await listStreamerViews(sql);
            const same = rows.find((s) =>
              s.username?.toLowerCase() === r.slug.toLowerCase() || s.kickUserId === r.userId ||
              (r.channelId !== null && s.kickChannelId === r.channelId)
            );
            throw new CliError(
              `${r.slug} is already in the list${
                same
                  ? ` (#${same.id} ${same.username ?? "-"}, user id ${same.kickUserId ?? "-"})`
                  : ""
              }`,
              EXIT.failure,
              { cause: e },
            );
          }
          throw e;
        }
      }, config);
      console.log(
        `added ${r.slug} as #${id}: user id ${r.userId}, ${
          r.channelId !== null
            ? `channel id ${r.channelId} (live)`
            : `${r.isLive ? "live" : "offline"}; channel id resolved later`
        }`,
      );
      setExit(EXIT.ok);
    });

  streamers.command("remove")
    .description("remove <username> from the list (its status history goes with it)")
    .argument("<username>", "username as listed")
    .action(async (username: string) => {
      const config = loadOperatorConfig(false);
      const slug = checkSlug(username);
      const removed = await withDatabase((sql) => deleteStreamers(sql, { username: slug }), config);
      if (!removed) throw new CliError(`no streamer named "${slug}" in the list`, EXIT.failure);
      console.log(`removed ${slug}`);
      setExit(EXIT.ok);
    });

  streamers.command("test")
    .description("show what Kick reports for <username> right now (user id, live, channel id)")
    .argument("<username>", "Kick channel slug")
    .option("--json", "print JSON")
    .action(async (username: string, opts: { json?: boolean }) => {
      const config = loadOperatorConfig(true);
      const r = await lookupStreamer(config, username);
      if (!r) throw new CliError(`Kick has no channel "${checkSlug(username)}"`, EXIT.failure);
      if (opts.json) {
        console.log(JSON.stringify(r, null, 2));
      } else {
        console.log(`slug:        ${r.slug}`);
        console.log(`user id:     ${r.userId}`);
        console.log(`is_live:     ${r.isLive}`);
        console.log(
          `channel id:  ${
            r.channelId ?? (r.isLive ? "unknown" : "unknown (only reported while live)")
          }`,
        );
        if (r.title) console.log(`title:       ${r.title}`);
        if (r.startedAt) console.log(`started at:  ${r.startedAt}`);
      }
      setExit(EXIT.ok);
    });
}

// ---------------------------------------------------------------------------
// db backup

/** Quotes a libpq conninfo value. */
function conninfoValue(v: string): string {
  return `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/**
 * The `pg_dump` invocation for a database config: arguments (no password,
 * ever) and the extra environment (`PGPASSWORD`, `PGCONNECT_TIMEOUT`, …).
 *
 * @example
 * ```ts
 * const { args, env } = pgDumpInvocation(config.database, "kickmon-20250101-000000.sql");
 * ```
 */
export function pgDumpInvocation(
  db: Config["database"],
  file: string,
): { args: string[]; env: Record<string, string> } {
  const conninfo = [
    `host=${conninfoValue(db.host)}`,
    `port=${db.port}`,
    `dbname=${conninfoValue(db.name)}`,
    `user=${conninfoValue(db.user)}`,
    `sslmode=${db.sslmode}`,
    `application_name='kickmon-backup'`,
  ].join(" ");
  const env: Record<string, string> = { PGCONNECT_TIMEOUT: String(db.connectTimeoutSec) };
  if (db.password) env.PGPASSWORD = db.password;
  return {
    args: ["--no-password", "--format=plain", `--file=${file}`, `--dbname=${conninfo}`],
    env,
  };
}

/**
 * Registers `backup` under the existing `db` command.
 *
 * @param db the `kickmon db` command.
 * @param setExit receives the exit code.
 *
 * @example
 * ```ts
 * const db = program.command("db");
 * registerDbBackup(db, (c) => (code = c));
 * ```
 */
export function registerDbBackup(db: Command, setExit: SetExit): void {
  db.command("backup")
    .description("pg_dump the database into kickmon-<YYYYmmdd-HHMMSS>.sql (UTC), mode 0600")
    .option(
      "-o, --output <dir>",
      "directory for the file (default: <state directory>/backups, which the binary may write)",
    )
    .action(async (opts: { output?: string }) => {
      const config = loadOperatorConfig(false);
      const dir = (opts.output ?? statePaths(config.system.stateDirectory).backups).replace(
        /(.)\/+$/,
        "$1",
      );
      if (opts.output === undefined) await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      const file = dir === "." ? backupFileName() : `${dir}/${backupFileName()}`;
      // The dump holds every row: create it 0600 before pg_dump writes into it
      // (pg_dump would create it with the caller's umask, typically 0644).
      await Deno.writeFile(file, new Uint8Array(), { createNew: true, mode: 0o600 });
      await Deno.chmod(file, 0o600); // whatever the umask
      const { args, env } = pgDumpInvocation(config.database, file);
      let out: Deno.CommandOutput;
      try {
        out = await new Deno.Command("pg_dump", {
          args,
          env,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
      } catch (e) {
        await Deno.remove(file).catch(() => {});
        if (e instanceof Deno.errors.NotFound) {
          throw new CliError(
            "pg_dump is not installed (Debian: apt-get install postgresql-client)",
            EXIT.failure,
            { cause: e },
          );
        }
        throw new CliError(
          `cannot run pg_dump (${errText(e)}); this build allows only the path named by ` +
            "KICKMON_PG_DUMP at build time",
          EXIT.failure,
          { cause: e },
        );
      }
      if (!out.success) {
        await Deno.remove(file).catch(() => {});
        const stderr = new TextDecoder().decode(out.stderr).trim().split("\n").slice(0, 5).join(
          "; ",
        );
        throw new CliError(`pg_dump failed (exit ${out.code}): ${stderr}`, EXIT.failure);
      }
      console.log(`backup written to ${file}`);
      setExit(EXIT.ok);
    });
}
