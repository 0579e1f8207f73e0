/**
 * Process control of a kickmon started from a shell: the commands around a
 * running instance.
 *
 * | command | what it does | exit codes |
 * |---|---|---|
 * | `kickmon status [--json]` | asks the running instance's `GET /health` (`HEALTH_CHECK_LISTEN`) | 0 healthy, 1 unhealthy (names the component), 3 not running |
 * | `kickmon stop [--timeout S]` | SIGTERM to the PID in `<state dir>/kickmon.pid`, then waits for the process to exit | 0 stopped or not running, 1 did not stop / cannot signal, 2 managed by systemd |
 * | `kickmon restart [--timeout S]` | `stop`, then runs the monitor **in the foreground of this terminal** (like `kickmon start`) | as `start`; 2 when managed by systemd |
 *
 * A kickmon run by systemd (the packaged `kickmon.service`) is not stopped or
 * restarted behind systemd's back (`Restart=always` would start it again):
 * `stop`/`restart` exit 2 and say to use `systemctl stop|restart kickmon`
 * when they run inside a unit (`INVOCATION_ID`/`NOTIFY_SOCKET` set), when the
 * PID file says the instance runs under systemd (`kickmon start` records
 * the `INVOCATION_ID` systemd gave it, see `pid_file.ts`), or when
 * an instance answers on the health address but has no PID file in this
 * state directory. Nothing here reads `/proc` of another process to decide
 * this: the shipped binary may not (`--allow-read` names only its state
 * directories), and a check that cannot read would silently say "not systemd".
 *
 * Signals are sent with `kill(1)` (procps), not `Deno.kill`: the latter needs
 * unrestricted `--allow-run`, the former only `--allow-run=/usr/bin/kill`.
 *
 * Wiring (in `src/cli/main.ts`):
 *
 * ```ts
 * registerProcessCommands(program, (c) => (code = c));
 * ```
 *
 * @module
 */
import type { Command } from "commander";
import type { Config } from "../config/config.ts";
import type { ReceivedHealthBody } from "../http/health_body.ts";
import { statePaths } from "../service/state_paths.ts";
import { CliError, EXIT } from "./errors.ts";
import { fetchHealth, type HealthAnswer, healthUrl } from "./health_client.ts";
import { loadOperatorConfig, type SetExit } from "./operator.ts";
import { readPidFile } from "./pid_file.ts";

const errText = (e: unknown) => e instanceof Error ? e.message : String(e);

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

/** `; next retry 12:00:05Z` for an ISO time, nothing for none. */
function retryNote(at: string | null | undefined): string {
  if (!at) return "";
  return `; next retry ${at.replace(/^\d{4}-\d\d-\d\dT/, "").replace(/\.\d+Z$/, "Z")}`;
}

/** Lines naming what is wrong in an unhealthy `/health` answer, with each component's error. */
function unhealthyComponents(b: ReceivedHealthBody): string[] {
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

/** `HH:MM:SSZ` of an ISO time. */
function clock(at: string | null | undefined): string {
  return at ? at.replace(/^\d{4}-\d\d-\d\dT/, "").replace(/\.\d+Z$/, "Z") : "?";
}

/**
 * The role line (issue 14): `leader since 12:00:01Z`, or
 * `standby; leader kick-02 pid 811 since 11:58:00Z`; null for a kickmon
 * without leadership in its answer.
 */
function leadershipLine(b: ReceivedHealthBody): string | null {
  const l = b.leadership;
  if (!l?.role) return null;
  const self = l.role === "leader";
  const leader = self
    ? ""
    : l.leader
    ? `; leader ${l.leader.host ?? "?"} pid ${l.leader.pid ?? "?"} since ${clock(l.leader.since)}`
    : "; no leader";
  const eligible = l.eligible === false ? " (not eligible)" : "";
  return `leadership: ${l.role}${eligible} since ${clock(l.since)}${leader}`;
}

/** The lines under "healthy": each component in one line. */
function summary(b: ReceivedHealthBody): string[] {
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
    ...[leadershipLine(b)].filter((l) => l !== null),
  ];
}

/**
 * Options for {@linkcode stopInstance}.
 *
 * @example
 * ```ts
 * const opts: StopOptions = { timeoutMs: 20_000, log: (l) => console.error(l) };
 * ```
 */
export interface StopOptions {
  /** How long to wait for the process to exit after SIGTERM, ms. */
  readonly timeoutMs: number;
  /** Progress lines (default: stderr). */
  readonly log?: (line: string) => void;
}

/**
 * What {@linkcode stopInstance} did.
 *
 * @example
 * ```ts
 * const r: StopOutcome = { kind: "not-running", detail: "no PID file at ./state/kickmon.pid" };
 * ```
 */
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
  const pidFile = statePaths(config.system.stateDirectory).pidFile;
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
 * registerProcessCommands(program, (c) => (code = c));
 * await program.parseAsync(["status"], { from: "user" });
 * ```
 */
export function registerProcessCommands(program: Command, setExit: SetExit): void {
  program.command("status")
    .description(
      "ask the running instance's /health: exit 0 healthy, 1 unhealthy, 3 not running",
    )
    .option("--json", "print the /health answer as JSON")
    .action(async (opts: { json?: boolean }) => {
      const config = loadOperatorConfig();
      const pidFile = statePaths(config.system.stateDirectory).pidFile;
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
          const role = leadershipLine(h.body);
          if (role) console.log(`  ${role}`);
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
