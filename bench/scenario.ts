/**
 * One benchmark scenario: N streamers, a Poisson stream of R live/offline
 * transitions per second for D seconds, through a real `kickmon start`
 * process (a separate OS process) fed by the simulated Kick running in this
 * process, into a fresh database.
 *
 * **How latency is measured.** For every transition, the simulator records
 * when its Pusher server handed the frame to the socket (`onFrameSent`,
 * `performance.now()` of this process). This process also LISTENs on
 * `kickmon_status`; PostgreSQL delivers a NOTIFY only after the transaction
 * that sent it committed, so the time this process receives the NOTIFY is
 * an upper bound of the commit time. Latency = NOTIFY received − frame sent,
 * both read from one monotonic clock in one process (no clock skew). It
 * includes the listener's own receive delay (socket + this event loop),
 * so it slightly overstates kickmon's real frame-to-commit time.
 *
 * @module
 */
import { seedStreamers } from "./seed.ts";
import postgres from "postgres";
import { migrate } from "../src/db/migrate.ts";
import type { Sql } from "../src/db/client.ts";
import { startSimulator } from "../dev/simulator/simulator.ts";
import { type KickmonProcess, spawnKickmon } from "../dev/kickmon_process.ts";
import {
  findScriptPid,
  readCpuSeconds,
  readMemory,
  readTreeCpuSeconds,
  readVoluntarySwitches,
} from "./proc_stats.ts";
import { type LatencySummary, poissonGaps, quantile, summarize, xorshift } from "./stats.ts";
import { dropScenarioDatabase, keepKickmonLog } from "./scenario_db.ts";

/** Options of {@linkcode runScenario}. Durations in the unit their name says. */
export interface ScenarioOptions {
  /** Admin URL of the cluster; a database `kickmon_bench_*` is created and dropped on it. */
  readonly adminUrl: string;
  /** Streamers (N). */
  readonly n: number;
  /** Offered transitions per second (R). */
  readonly rate: number;
  /** Load duration (D), seconds. */
  readonly durationSec: number;
  /** `KICK_PUSHER_MAX_CHANNELS_PER_CONNECTION` for kickmon. */
  readonly channelsPerConnection: number;
  /** PostgreSQL postmaster pid, to report the server's CPU (throwaway cluster only). */
  readonly pgPid?: number;
  /** PostgreSQL server log, to count checkpoints and autovacuum runs during the load (throwaway cluster only). */
  readonly pgLogFile?: string;
  /** Bound on start-up (process start → all channels subscribed and reconciled), ms. Default 180000. */
  readonly startTimeoutMs?: number;
  /** Bound on waiting for the last commits after the load stops, ms. Default 30000. */
  readonly drainTimeoutMs?: number;
  /** Extra environment for kickmon (overrides the bench's). */
  readonly env?: Record<string, string>;
  /** V8 flags for kickmon (`deno run --v8-flags=…`), comma-separated; empty for none. */
  readonly v8Flags?: string;
  /** Extra `deno run` arguments for kickmon (e.g. `--preload=probe.ts`). */
  readonly denoArgs?: readonly string[];
  /**
   * The kickmon script to run: a bundle built by `scripts/build.ts` (what the
   * binary is compiled from; run with `--no-config`), or `main.ts` when unset.
   */
  readonly entry?: string;
  /** Write a V8 CPU profile of kickmon into this directory (`deno run --cpu-prof`). */
  readonly cpuProfDir?: string;
  /** Progress lines. */
  readonly log?: (line: string) => void;
  /** Seed of the random schedule and streamer choice. Default 1. */
  readonly seed?: number;
}

/**
 * What one scenario measured. Latencies in **ms**, memory in **MB**
 * (10^6 bytes), CPU in **seconds** or **% of one core**, rates in **per second**.
 *
 * @example
 * ```ts
 * import type { ScenarioResult } from "./scenario.ts";
 * declare const r: ScenarioResult;
 * console.log(r.latency.p99, r.lost, r.rss.peakMB);
 * ```
 */
export interface ScenarioResult {
  readonly n: number;
  readonly rate: number;
  readonly durationSec: number;
  readonly channelsPerConnection: number;
  /** Pusher connections kickmon opened. */
  readonly connections: number;
  /** kickmon's own pid (the process measured). */
  readonly pid: number;
  readonly startup: {
    /** Process start → `kickmon started` log line, ms. */
    readonly startedMs: number | null;
    /** Process start → every channel subscribed on the simulator, ms. */
    readonly subscribedMs: number | null;
    /** Process start → the initial reconciliation of all N logged, ms. */
    readonly reconciledMs: number | null;
  };
  /** Frames sent (each a real transition). */
  readonly sent: number;
  /** Transitions whose NOTIFY arrived. */
  readonly committed: number;
  /** `status_events` rows with source pusher after the drain. */
  readonly committedRows: number;
  /** sent − committed rows (must be 0). */
  readonly lost: number;
  /** NOTIFYs that matched no pending frame, or with an unexpected status/source. */
  readonly unexpected: number;
  /** Streamers whose final `streamers.status` differs from the simulated truth. */
  readonly finalMismatches: number;
  /** Offered rate actually sent: sent / load seconds. */
  readonly sentRate: number;
  /** Committed transitions / (first send → last commit) seconds. */
  readonly achievedRate: number;
  /** Frame sent → NOTIFY received. */
  readonly latency: LatencySummary;
  /**
   * Offline transitions split at kickmon's receipt, from wall clocks (1 ms
   * resolution): the NOTIFY's `timestamp` of an offline transition is the time
   * kickmon received the frame (`StopStreamBroadcast` carries no time).
   * `transport` = frame sent → kickmon received it; `commit` = kickmon received
   * it → NOTIFY received here.
   */
  readonly split: { readonly transport: LatencySummary; readonly commit: LatencySummary };
  /** How late the bench sent each frame against its Poisson schedule (timer granularity). */
  readonly sendLag: LatencySummary;
  /** Transitions per commit (rows of one transaction share `created_at`). */
  readonly batches: {
    readonly commits: number;
    readonly mean: number | null;
    readonly p50: number | null;
    readonly p99: number | null;
    readonly max: number | null;
  };
  readonly rss: {
    /** `VmHWM` at the end: the peak resident size over the process's life. */
    readonly peakMB: number | null;
    /** Median `VmRSS` sampled every 200 ms during the load. */
    readonly steadyMB: number | null;
    /** `VmRSS` after start-up, before the load. */
    readonly idleMB: number | null;
    /** At the end of the load: `RssAnon` (private: heaps, stacks). */
    readonly anonMB: number | null;
    /** At the end of the load: `RssFile` (the deno executable's code and other mapped files, shared and reclaimable). */
    readonly fileMB: number | null;
  };
  readonly cpu: {
    /** kickmon user+system CPU from spawn to the end of the drain, s. */
    readonly kickmonTotalSec: number | null;
    /** kickmon CPU during start-up (spawn → subscribed and reconciled), s. */
    readonly kickmonStartupSec: number | null;
    /** kickmon CPU during the load and drain, s. */
    readonly kickmonLoadSec: number | null;
    /** kickmonLoadSec as % of one core over the load+drain wall time. */
    readonly kickmonLoadPct: number | null;
    /**
     * kickmon CPU per transition delivered, **µs**: kickmonLoadSec ÷ committed
     * transitions (`/proc/<pid>/stat` utime+stime, 10 ms ticks, over load+drain).
     */
    readonly kickmonUsPerTransition: number | null;
    /**
     * Sleeps of kickmon's main thread per transition delivered over load+drain
     * (`voluntary_ctxt_switches`, see `readVoluntarySwitches` in `bench/proc_stats.ts`).
     */
    readonly kickmonWakesPerTransition?: number | null;
    /** This bench process (simulator + listener + driver) during the load, % of one core. */
    readonly benchLoadPct: number | null;
    /** PostgreSQL (postmaster and backends) during the load, % of one core. */
    readonly postgresLoadPct: number | null;
  };
  /**
   * Server activity during the load and drain, from the PostgreSQL log
   * (throwaway cluster only, else null): checkpoints started and
   * autovacuum/autoanalyze runs, the usual causes of commit-latency outliers.
   */
  readonly dbEvents: {
    readonly checkpoints: number;
    readonly autovacuums: number;
    readonly autoanalyzes: number;
  } | null;
  /** Set when the scenario could not complete (timeout, crash); the other fields are partial. */
  readonly error?: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const mb = (bytes: number | null | undefined) =>
  bytes === null || bytes === undefined ? null : Math.round(bytes / 1e5) / 10;

/**
 * The `deno run` permission and V8 arguments for kickmon: a bundle (`entry`)
 * runs with `--no-config` as the compiled binary would; `main.ts` (no
 * `entry`) with the project's config. A V8 code cache is only valid for the
 * same V8 flags, so a warm-up start must use exactly these.
 *
 * @param entry the bundle to run, or undefined for `main.ts`.
 * @param v8Flags comma-separated V8 flags, "" or undefined for none.
 * @returns a fresh array the caller may extend.
 *
 * @example
 * ```ts
 * kickmonDenoArgs("/tmp/k/kickmon.js", "--lite-mode"); // ["-A", "--no-config", "--v8-flags=--lite-mode"]
 * ```
 */
export function kickmonDenoArgs(entry?: string, v8Flags?: string): string[] {
  const args = entry ? ["-A", "--no-config"] : ["-A"];
  if (v8Flags) args.push(`--v8-flags=${v8Flags}`);
  return args;
}

/**
 * Runs one scenario end to end and tears everything down (database, kickmon,
 * simulator), even on failure. Never sends traffic anywhere but 127.0.0.1.
 *
 * @throws {Error} only for set-up failures before kickmon starts (database, simulator);
 *   later failures are reported in `error`.
 *
 * @example
 * ```ts
 * import { runScenario } from "./scenario.ts";
 * const r = await runScenario({ adminUrl, n: 1000, rate: 500, durationSec: 5, channelsPerConnection: 1000 });
 * console.log(r.latency.p99);
 * ```
 */
export async function runScenario(opts: ScenarioOptions): Promise<ScenarioResult> {
  const log = opts.log ?? (() => {});
  const { n, rate, durationSec } = opts;
  const dbName = `kickmon_bench_${n}_${rate}_${Date.now().toString(36)}`;
  const admin = postgres(opts.adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${dbName}`);
  const url = new URL(opts.adminUrl);
  url.pathname = `/${dbName}`;
  const dbUrl = url.toString();
  const sql = postgres(dbUrl, { max: 2, onnotice: () => {} });
  const stateDir = await Deno.makeTempDir({ prefix: "kickmon-bench-state-" });

  // --- per-event bookkeeping ------------------------------------------------
  const capacity = Math.ceil(rate * durationSec * 1.5) + 1000;
  const sendMono = new Float64Array(capacity);
  const sendLag = new Float64Array(capacity);
  const latency = new Float64Array(capacity);
  const sentStatus = new Uint8Array(capacity); // 1 online, 0 offline
  const sendWall = new Float64Array(capacity);
  const transport = new Float64Array(capacity);
  const afterReceipt = new Float64Array(capacity);
  let splits = 0;
  let sent = 0;
  let committed = 0;
  let unexpected = 0;
  let lastCommitMono = 0;
  /** Per streamer index: FIFO of event numbers awaiting their NOTIFY. */
  const pending: (number[] | undefined)[] = new Array(n);
  const live = new Uint8Array(n);
  let frame: { mono: number; wall: number; recipients: number } | null = null;

  let sim: Awaited<ReturnType<typeof startSimulator>> | null = null;
  let kickmon: KickmonProcess | null = null;
  let unlisten: (() => Promise<void>) | null = null;
  let sampler: ReturnType<typeof setInterval> | undefined;
  let error: string | undefined;

  const result: Mutable<ScenarioResult> = {
    n,
    rate,
    durationSec,
    channelsPerConnection: opts.channelsPerConnection,
    connections: 0,
    pid: 0,
    startup: { startedMs: null, subscribedMs: null, reconciledMs: null },
    sent: 0,
    committed: 0,
    committedRows: 0,
    lost: 0,
    unexpected: 0,
    finalMismatches: 0,
    sentRate: 0,
    achievedRate: 0,
    latency: summarize([]),
    sendLag: summarize([]),
    split: { transport: summarize([]), commit: summarize([]) },
    batches: { commits: 0, mean: null, p50: null, p99: null, max: null },
    rss: { peakMB: null, steadyMB: null, idleMB: null, anonMB: null, fileMB: null },
    dbEvents: null,
    cpu: {
      kickmonTotalSec: null,
      kickmonStartupSec: null,
      kickmonLoadSec: null,
      kickmonLoadPct: null,
      kickmonUsPerTransition: null,
      kickmonWakesPerTransition: null,
      benchLoadPct: null,
      postgresLoadPct: null,
    },
  };

  try {
    // --- database and seed ----------------------------------------------------
    await migrate(sql as unknown as Sql, { appSchema: "public" });
    const rows = await seedStreamers(sql, "bench_", n);
    const idxOf = new Map<number, number>();
    for (const r of rows) idxOf.set(r.id, r.i - 1);

    // --- simulator --------------------------------------------------------------
    sim = await startSimulator({
      onFrameSent: (_channel, _event, sentAtMs, sentMono, recipients) => {
        frame = { mono: sentMono, wall: sentAtMs, recipients };
      },
    });
    for (let i = 0; i < n; i++) {
      sim.world.add({ userId: 1000001 + i, slug: `bench_${i + 1}`, channelId: 5000001 + i });
    }

    // --- commit observer ----------------------------------------------------------
    const sub = await sql.listen("kickmon_status", (payload) => {
      const now = performance.now();
      const wall = Date.now();
      let p: { streamer_id?: number; status?: string; source?: string; timestamp?: string };
      try {
        p = JSON.parse(payload);
      } catch {
        unexpected++;
        return;
      }
      const i = idxOf.get(p.streamer_id ?? -1);
      const q = i === undefined ? undefined : pending[i];
      const e = q?.shift();
      if (e === undefined || p.source !== "pusher") {
        unexpected++;
        return;
      }
      if ((sentStatus[e] === 1 ? "online" : "offline") !== p.status) unexpected++;
      latency[committed++] = now - sendMono[e];
      lastCommitMono = now;
      if (sentStatus[e] === 0 && typeof p.timestamp === "string") {
        const received = Date.parse(p.timestamp);
        if (Number.isFinite(received)) {
          transport[splits] = received - sendWall[e];
          afterReceipt[splits++] = wall - received;
        }
      }
    });
    unlisten = () => sub.unlisten();

    // --- kickmon ------------------------------------------------------------------
    const env: Record<string, string> = {
      ...sim.env(),
      DATABASE_URL: dbUrl,
      SYSTEM_STATE_DIRECTORY: stateDir,
      SYSTEM_LOG_LEVEL: "info",
      // As in production: /health and /metrics served (on a free port).
      HEALTH_CHECK_ENABLED: "true",
      HEALTH_CHECK_LISTEN: `127.0.0.1:${freePort()}`,
      KICK_PUSHER_MAX_CHANNELS_PER_CONNECTION: String(opts.channelsPerConnection),
      // The initial reconciliation covers all N (N/50 requests): allow it at once.
      KICK_API_MAX_REQUESTS_PER_MINUTE: "100000",
      // Keep the official API and list re-reads out of the measured window.
      MONITORING_RECONCILE_INTERVAL: "86400",
      MONITORING_RESYNC_INTERVAL: "86400",
      ...opts.env,
    };
    const denoArgs = kickmonDenoArgs(opts.entry, opts.v8Flags);
    denoArgs.push(...(opts.denoArgs ?? []));
    if (opts.cpuProfDir) denoArgs.push("--cpu-prof", `--cpu-prof-dir=${opts.cpuProfDir}`);
    const t0 = performance.now();
    kickmon = spawnKickmon(["start"], env, { denoArgs, entry: opts.entry });
    const k = kickmon;
    let exited = false;
    k.status.then(() => (exited = true));
    // `deno run` executes main.ts in the process it starts; confirm from /proc.
    await sleep(50);
    const pid = findScriptPid(k.pid, "main.ts");
    result.pid = pid;
    const cpuAtSpawn = readCpuSeconds(pid) ?? 0;

    const startTimeout = opts.startTimeoutMs ?? 180_000;
    const started = k.waitForLine(/kickmon started/, startTimeout).then(() =>
      result.startup.startedMs = performance.now() - t0
    );
    const reconciled = k.waitForLine(/reconciled \(\\?"?start/, startTimeout).then(() =>
      result.startup.reconciledMs = performance.now() - t0
    );
    started.catch(() => {});
    reconciled.catch(() => {});
    const deadline = t0 + startTimeout;
    for (;;) {
      if (performance.now() > deadline) throw new Error(`not all ${n} channels subscribed in time`);
      const total = sim.pusher.sockets().reduce((a, s) => a + s.channels, 0);
      if (total >= n && sim.pusher.subscribedChannels().length === n) break;
      if (exited) throw new Error(`kickmon exited:\n${k.lines.slice(-20).join("\n")}`);
      await sleep(20);
    }
    result.startup.subscribedMs = performance.now() - t0;
    result.connections = sim.pusher.connections();
    log(
      `  subscribed ${n} channels on ${result.connections} connections in ${
        Math.round(result.startup.subscribedMs)
      } ms`,
    );
    await started;
    await reconciled;
    log(`  initial reconciliation done at ${Math.round(result.startup.reconciledMs ?? 0)} ms`);
    await sleep(500);
    const idle = readMemory(pid);
    result.rss.idleMB = mb(idle?.rssBytes);
    const cpuBeforeLoad = readCpuSeconds(pid) ?? 0;
    const wakesBeforeLoad = readVoluntarySwitches(pid);
    result.cpu.kickmonStartupSec = round2(cpuBeforeLoad - cpuAtSpawn);

    // --- load ------------------------------------------------------------------------
    const rssSamples: number[] = [];
    let hwm = idle?.hwmBytes ?? 0;
    sampler = setInterval(() => {
      const m = readMemory(pid);
      if (!m) return;
      rssSamples.push(m.rssBytes);
      hwm = Math.max(hwm, m.hwmBytes);
    }, 200);
    const logOffset = opts.pgLogFile ? fileSize(opts.pgLogFile) : 0;
    const benchCpu0 = readCpuSeconds(Deno.pid) ?? 0;
    const pgCpu0 = opts.pgPid ? readTreeCpuSeconds(opts.pgPid) : 0;
    const gap = poissonGaps(rate, opts.seed ?? 1);
    const pick = xorshift((opts.seed ?? 1) * 7919);
    const loadStart = performance.now();
    const loadEnd = loadStart + durationSec * 1000;
    let due = loadStart + gap();
    let misses = 0;
    while (due < loadEnd && sent < capacity) {
      const now = performance.now();
      while (due <= now && due < loadEnd && sent < capacity) {
        const i = Math.floor(pick() * n);
        const to = live[i] === 1 ? 0 : 1;
        frame = null;
        sim.world.setLive(1000001 + i, to === 1);
        const f = frame as { mono: number; wall: number; recipients: number } | null;
        if (!f || f.recipients !== 1) {
          misses++;
          live[i] = to; // the truth changed anyway
          due += gap();
          continue;
        }
        live[i] = to;
        const e = sent++;
        sendMono[e] = f.mono;
        sendWall[e] = f.wall;
        sentStatus[e] = to;
        sendLag[e] = f.mono - due;
        (pending[i] ??= []).push(e);
        due += gap();
      }
      // Timers fire at ~1–2 ms granularity: frames due meanwhile go out together.
      await sleep(Math.max(0, Math.min(1, due - performance.now())));
    }
    const loadWall = performance.now() - loadStart;
    if (misses) {
      error = `${misses} frames had no subscriber`;
      log(`  WARNING: ${error}`);
    }
    // --- drain -----------------------------------------------------------------------
    const drainDeadline = performance.now() + (opts.drainTimeoutMs ?? 30_000);
    while (committed + unexpected < sent && performance.now() < drainDeadline) {
      await sleep(20);
    }
    const drainedAt = performance.now();
    if (opts.pgLogFile) result.dbEvents = countDbEvents(opts.pgLogFile, logOffset);
    clearInterval(sampler);
    sampler = undefined;
    const cpuAfter = readCpuSeconds(pid) ?? 0;
    const wakesAfter = readVoluntarySwitches(pid);
    const benchCpu1 = readCpuSeconds(Deno.pid) ?? 0;
    const pgCpu1 = opts.pgPid ? readTreeCpuSeconds(opts.pgPid) : 0;
    const end = readMemory(pid);
    hwm = Math.max(hwm, end?.hwmBytes ?? 0);
    const loadAndDrainSec = (drainedAt - loadStart) / 1000;
    result.cpu.kickmonTotalSec = round2(cpuAfter - cpuAtSpawn);
    result.cpu.kickmonLoadSec = round2(cpuAfter - cpuBeforeLoad);
    result.cpu.kickmonLoadPct = round1((cpuAfter - cpuBeforeLoad) / loadAndDrainSec * 100);
    result.cpu.kickmonUsPerTransition = committed
      ? round1((cpuAfter - cpuBeforeLoad) * 1e6 / committed)
      : null;
    result.cpu.kickmonWakesPerTransition =
      committed && wakesBeforeLoad !== null && wakesAfter !== null
        ? round2((wakesAfter - wakesBeforeLoad) / committed)
        : null;
    result.cpu.benchLoadPct = round1((benchCpu1 - benchCpu0) / loadAndDrainSec * 100);
    result.cpu.postgresLoadPct = opts.pgPid
      ? round1((pgCpu1 - pgCpu0) / loadAndDrainSec * 100)
      : null;
    result.rss.peakMB = mb(hwm);
    result.rss.anonMB = mb(end?.anonBytes);
    result.rss.fileMB = mb(end?.fileBytes);
    rssSamples.sort((a, b) => a - b);
    result.rss.steadyMB = mb(quantile(rssSamples, 0.5));

    // --- verification ---------------------------------------------------------------
    const [{ c }] = await sql<{ c: number }[]>`
      SELECT count(*)::int AS c FROM status_events WHERE details->>'source' = 'pusher'`;
    const perCommit = (await sql<{ c: number }[]>`
      SELECT count(*)::int AS c FROM status_events WHERE details->>'source' = 'pusher'
      GROUP BY created_at`).map((r) => r.c).sort((a, b) => a - b);
    const final = await sql<{ id: number; status: string }[]>`SELECT id, status FROM streamers`;
    let mismatches = 0;
    for (const r of final) {
      const i = idxOf.get(r.id);
      if (i === undefined) continue;
      if (r.status !== (live[i] === 1 ? "online" : "offline")) mismatches++;
    }

    const firstSend = sent ? sendMono[0] : loadStart;
    result.sent = sent;
    result.committed = committed;
    result.committedRows = c;
    result.lost = sent - c;
    result.unexpected = unexpected;
    result.finalMismatches = mismatches;
    result.sentRate = round1(sent / (loadWall / 1000));
    result.achievedRate = committed && lastCommitMono > firstSend
      ? round1(committed / ((lastCommitMono - firstSend) / 1000))
      : 0;
    result.latency = summarize(latency.subarray(0, committed));
    result.sendLag = summarize(sendLag.subarray(0, sent));
    result.split = {
      transport: summarize(transport.subarray(0, splits)),
      commit: summarize(afterReceipt.subarray(0, splits)),
    };
    result.batches = {
      commits: perCommit.length,
      mean: perCommit.length ? round2(c / perCommit.length) : null,
      p50: quantile(perCommit, 0.5),
      p99: quantile(perCommit, 0.99),
      max: perCommit.length ? perCommit[perCommit.length - 1] : null,
    };
    if (committed < sent && !error) error = `${sent - committed} NOTIFYs missing after the drain`;
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    log(`  ERROR: ${error}`);
  } finally {
    if (sampler !== undefined) clearInterval(sampler);
    if (kickmon) {
      const code = await kickmon.stop(20_000);
      if (code !== 0) log(`  kickmon exited with code ${code}`);
      await keepKickmonLog(kickmon.lines);
    }
    await dropScenarioDatabase({ unlisten, sql, admin, dbName });
    await sim?.close();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
  if (error) result.error = error;
  return result;
}

function fileSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

/** Counts checkpoints and autovacuum/analyze runs logged after `offset` bytes of the server log. */
function countDbEvents(
  path: string,
  offset: number,
): { checkpoints: number; autovacuums: number; autoanalyzes: number } {
  let text = "";
  try {
    const f = Deno.openSync(path, { read: true });
    try {
      f.seekSync(offset, Deno.SeekMode.Start);
      const buf = new Uint8Array(Math.max(0, Math.min(16 << 20, fileSize(path) - offset)));
      let n = 0;
      while (n < buf.length) {
        const r = f.readSync(buf.subarray(n));
        if (r === null || r === 0) break;
        n += r;
      }
      text = new TextDecoder().decode(buf.subarray(0, n));
    } finally {
      f.close();
    }
  } catch { /* no log: zeros */ }
  const count = (re: RegExp) => (text.match(re) ?? []).length;
  return {
    checkpoints: count(/checkpoint starting/g),
    autovacuums: count(/automatic vacuum of table/g),
    autoanalyzes: count(/automatic analyze of table/g),
  };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}
function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
