/**
 * `deno task bench`: kickmon's end-to-end benchmark. It reports; it never
 * asserts.
 *
 * One invocation:
 * 1. starts a throwaway PostgreSQL cluster with durable settings (fsync and
 *    synchronous_commit on), or uses `BENCH_DATABASE_URL` (an admin URL
 *    allowed to CREATE DATABASE);
 * 2. measures **the floor**: one transition's UPDATE + INSERT in one
 *    transaction from a plain postgres.js client, one at a time
 *    (`bench/floor.ts`);
 * 3. runs each scenario (`bench/scenario.ts`): a fresh database seeded with N
 *    streamers, the simulated Kick in this process, a real `kickmon start`
 *    as a separate OS process, a Poisson stream of R transitions/s for D s;
 * 4. prints the table and writes everything as JSON (default
 *    `bench/results/latest.json` for `--full`, `<mode>.json` otherwise).
 *
 * ```sh
 * deno task bench                      # N=10000, R=2000, D=30
 * deno task bench --quick              # N=1000, R=500, D=5 (< 60 s)
 * deno task bench --full               # N ∈ {1k,10k,50k} × R ∈ {100,1k,2k,5k}
 * deno task bench --n 10000 --rate 1000,5000 --duration 20
 * deno task bench --cpu-prof /tmp/prof # V8 CPU profile of kickmon
 * ```
 *
 * Flags: `--n` (comma list), `--rate` (comma list, events/s), `--duration`
 * (s), `--quick`, `--full`, `--per-connection` (channels per Pusher
 * connection, default 1000), `--floor-iterations` (default 2000; 0 skips
 * the floor), `--out` (JSON path), `--cpu-prof DIR`, `--seed`,
 * `--v8-flags a,b` (kickmon's V8 flags; default the shipped ones from
 * `scripts/v8_flags.ts`, `--v8-flags=` for none), `--kickmon-deno-args "…"`
 * (extra `deno run` arguments for kickmon), `--source` (run `main.ts`
 * instead of the bundle the binary is compiled from, which is the default),
 * `--cold` (measure the bundle's first start, before V8's code cache exists).
 * `BENCH_KICKMON_LOG=<file>` keeps kickmon's output of the last scenario.
 *
 * @module
 */
import postgres from "postgres";
import { startThrowawayCluster, type ThrowawayCluster } from "../dev/pg_cluster.ts";
import { type FloorResult, measureFloor } from "./floor.ts";
import { kickmonDenoArgs, runScenario, type ScenarioResult } from "./scenario.ts";
import { spawnKickmon } from "../dev/kickmon_process.ts";
import { fmtMs } from "./stats.ts";
import { V8_FLAGS } from "../scripts/v8_flags.ts";
import { buildBundle } from "../scripts/build.ts";

/**
 * Parsed command line of the benchmark.
 *
 * @example
 * ```ts
 * import { parseBenchArgs } from "./bench.ts";
 * parseBenchArgs(["--quick"]).ns; // [1000]
 * ```
 */
export interface BenchArgs {
  readonly ns: number[];
  readonly rates: number[];
  readonly durationSec: number;
  readonly mode: "default" | "quick" | "full" | "custom";
  readonly perConnection: number;
  readonly floorIterations: number;
  readonly out: string;
  readonly cpuProfDir: string | undefined;
  readonly seed: number;
  /** V8 flags for the kickmon process, comma-separated ("" = none). Default: the shipped {@linkcode V8_FLAGS}. */
  readonly v8Flags: string;
  /**
   * Run kickmon from `main.ts` (`--source`) instead of the default: the bundle
   * that `deno task compile` compiles into the binary, built for the run.
   */
  readonly source: boolean;
  /**
   * Measure the first start of a new bundle (`--cold`: V8 compiles it from
   * source and writes its code cache) instead of a later start (the default:
   * one `kickmon --version` runs first, as any earlier start of the service would).
   */
  readonly cold: boolean;
  /** Extra `deno run` arguments for the kickmon process (space-separated on the command line). */
  readonly kickmonDenoArgs: string[];
  /** `MONITORING_LIST_FOLLOW` for kickmon (`--list-follow`): LISTEN on the trigger, or poll. */
  readonly listFollow: "trigger" | "poll";
}

const FULL_NS = [1_000, 10_000, 50_000];
const FULL_RATES = [100, 1_000, 2_000, 5_000];
const ROOT = new URL("../", import.meta.url).pathname;

/**
 * Parses the flags described in the module doc.
 *
 * @throws {Error} on an unknown flag or a value that is not a positive number.
 *
 * @example
 * ```ts
 * import { parseBenchArgs } from "./bench.ts";
 * parseBenchArgs(["--n", "1000,10000", "--rate=500"]).ns; // [1000, 10000]
 * ```
 */
function listFollowArg(v: string | true | undefined): "trigger" | "poll" {
  if (v === undefined) return "trigger";
  if (v === "trigger" || v === "poll") return v;
  throw new Error("--list-follow: trigger or poll");
}

export function parseBenchArgs(argv: string[]): BenchArgs {
  const flags = new Map<string, string | true>();
  const valued = new Set([
    "n",
    "rate",
    "duration",
    "per-connection",
    "floor-iterations",
    "out",
    "cpu-prof",
    "seed",
    "v8-flags",
    "kickmon-deno-args",
    "list-follow",
  ]);
  const known = new Set([...valued, "quick", "full", "source", "cold", "help"]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf("=");
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    if (!known.has(name)) throw new Error(`unknown flag --${name}`);
    if (valued.has(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new Error(`--${name} needs a value`);
      flags.set(name, v);
    } else flags.set(name, true);
  }
  if (flags.has("help")) {
    console.log(
      "deno task bench [--quick | --full] [--n N[,N…]] [--rate R[,R…]] [--duration S]\n" +
        "                [--per-connection C] [--floor-iterations I] [--out FILE]\n" +
        "                [--cpu-prof DIR] [--seed S] [--v8-flags A,B] [--source | --cold]\n" +
        '                [--kickmon-deno-args "…"] [--list-follow trigger|poll]',
    );
    Deno.exit(0);
  }
  const list = (name: string): number[] | undefined => {
    const v = flags.get(name);
    if (v === undefined) return undefined;
    const xs = String(v).split(",").map((s) => Number(s.trim().replace(/_/g, "")));
    for (const x of xs) {
      if (!(Number.isInteger(x) && x > 0)) throw new Error(`--${name}: not a positive integer`);
    }
    return xs;
  };
  const one = (name: string, def: number, allowZero = false): number => {
    const v = flags.get(name);
    if (v === undefined) return def;
    const x = Number(v);
    if (!(Number.isFinite(x) && (x > 0 || (allowZero && x === 0)))) {
      throw new Error(`--${name}: not a positive number`);
    }
    return x;
  };
  const quick = flags.has("quick");
  const full = flags.has("full");
  if (quick && full) throw new Error("--quick and --full exclude each other");
  const mode = quick
    ? "quick"
    : full
    ? "full"
    : flags.has("n") || flags.has("rate")
    ? "custom"
    : "default";
  return {
    ns: list("n") ?? (full ? FULL_NS : quick ? [1_000] : [10_000]),
    rates: list("rate") ?? (full ? FULL_RATES : quick ? [500] : [2_000]),
    durationSec: one("duration", quick ? 5 : 30),
    mode,
    perConnection: one("per-connection", 1000),
    floorIterations: one("floor-iterations", quick ? 1000 : 2000, true),
    // Only the full table is the reference result; other modes do not overwrite it.
    out: String(
      flags.get("out") ?? `${ROOT}bench/results/${full ? "latest" : mode}.json`,
    ),
    cpuProfDir: flags.has("cpu-prof") ? String(flags.get("cpu-prof")) : undefined,
    seed: one("seed", 1),
    v8Flags: flags.has("v8-flags") ? String(flags.get("v8-flags")) : V8_FLAGS.join(","),
    source: flags.has("source"),
    cold: flags.has("cold"),
    kickmonDenoArgs: flags.has("kickmon-deno-args")
      ? String(flags.get("kickmon-deno-args")).split(" ").filter(Boolean)
      : [],
    listFollow: listFollowArg(flags.get("list-follow")),
  };
}

function note(line: string): void {
  console.error(line);
}

function postmasterPid(cluster: ThrowawayCluster | null): number | undefined {
  if (!cluster) return undefined;
  try {
    const pid = Number(Deno.readTextFileSync(`${cluster.dataDir}/postmaster.pid`).split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function ratio(a: number | null, b: number | null): number | null {
  return a !== null && b !== null && b > 0 ? Math.round((a / b) * 10) / 10 : null;
}

/** One printed/JSON row: a scenario with its ratios to the floor. */
interface Row extends ScenarioResult {
  readonly p50VsFloor: number | null;
  readonly p99VsFloor: number | null;
}

function pad(s: string, w: number): string {
  return s.length >= w ? s : " ".repeat(w - s.length) + s;
}

/**
 * Renders rows as a Markdown table (also readable in a terminal).
 *
 * @example
 * ```ts
 * import { renderTable } from "./bench.ts";
 * console.log(renderTable([]));
 * ```
 */
export function renderTable(rows: readonly Row[]): string {
  const head = [
    "N",
    "R/s",
    "sent",
    "lost",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "p50/floor",
    "p99/floor",
    "thru/s",
    "rows/commit",
    "peak RSS MB",
    "steady RSS MB",
    "kickmon CPU %",
    "subscribed s",
  ];
  const body = rows.map((r) => [
    String(r.n),
    String(r.rate),
    String(r.sent),
    r.error && r.sent === 0 ? "-" : String(r.lost),
    fmtMs(r.latency.p50),
    fmtMs(r.latency.p95),
    fmtMs(r.latency.p99),
    fmtMs(r.latency.max),
    r.p50VsFloor === null ? "-" : `${r.p50VsFloor}×`,
    r.p99VsFloor === null ? "-" : `${r.p99VsFloor}×`,
    String(Math.round(r.achievedRate)),
    r.batches.mean === null ? "-" : String(r.batches.mean),
    r.rss.peakMB === null ? "-" : String(r.rss.peakMB),
    r.rss.steadyMB === null ? "-" : String(r.rss.steadyMB),
    r.cpu.kickmonLoadPct === null ? "-" : String(r.cpu.kickmonLoadPct),
    r.startup.subscribedMs === null ? "-" : (r.startup.subscribedMs / 1000).toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => pad(c, widths[i])).join(" | ")} |`;
  return [
    line(head),
    `|${widths.map((w) => "-".repeat(w + 1) + ":").join("|")}|`,
    ...body.map(line),
  ].join("\n");
}

/**
 * Starts `kickmon --version` from `entry` once with the given V8 flags, so
 * that Deno writes the V8 code cache a later start uses (the cache is only
 * valid for the same flags).
 *
 * @throws {Error} when that start fails.
 */
async function warmCodeCache(entry: string, v8Flags: string): Promise<void> {
  const p = spawnKickmon(["--version"], {}, { denoArgs: kickmonDenoArgs(entry, v8Flags), entry });
  const status = await p.status;
  if (!status.success) throw new Error(`kickmon --version failed: ${p.lines.join("\n")}`);
}

async function main(): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(Deno.args);
  } catch (e) {
    note(`bench: ${e instanceof Error ? e.message : e}`);
    return 2;
  }
  const began = performance.now();
  let cluster: ThrowawayCluster | null = null;
  let adminUrl = Deno.env.get("BENCH_DATABASE_URL") ?? "";
  if (!adminUrl) {
    note(
      "bench: starting a throwaway PostgreSQL cluster (durable: fsync=on, synchronous_commit=on)",
    );
    cluster = await startThrowawayCluster({
      durable: true,
      // Log every autovacuum run so the bench can count them per scenario.
      settings: { log_autovacuum_min_duration: 0, log_checkpoints: true },
    });
    adminUrl = cluster.url;
  } else note("bench: using BENCH_DATABASE_URL");
  // What ships: the binary is compiled from this bundle with these V8 flags.
  let entryDir: string | undefined;
  let entry: string | undefined;
  if (!args.source) {
    entryDir = await Deno.makeTempDir({ prefix: "kickmon-bench-" });
    entry = `${entryDir}/kickmon.js`;
    note(`bench: building the bundle kickmon is compiled from (${entry})`);
    await buildBundle(entry);
    if (!args.cold) {
      // Deno keeps a V8 code cache of a script from its first run and uses it on
      // later ones; a service is started many times, so measure a later start.
      note("bench: one start of `kickmon --version` first, so V8's code cache exists");
      await warmCodeCache(entry, args.v8Flags);
    }
  }
  const stopCluster = () => cluster?.stopSync();
  globalThis.addEventListener("unload", stopCluster);
  const onSignal = () => {
    stopCluster();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  try {
    const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
    const [pg] = await admin<{ version: string; fsync: string; sc: string }[]>`
      SELECT current_setting('server_version') AS version, current_setting('fsync') AS fsync,
             current_setting('synchronous_commit') AS sc`;
    await admin.end();
    const cores = navigator.hardwareConcurrency;
    const machine = {
      cores,
      memoryMB: Math.round(Deno.systemMemoryInfo().total / 1e6),
      os: `${Deno.build.os} ${Deno.osRelease()}`,
      deno: Deno.version.deno,
      postgres: pg.version,
      fsync: pg.fsync,
      synchronousCommit: pg.sc,
    };
    note(
      `bench: ${cores} cores, Deno ${machine.deno}, PostgreSQL ${pg.version} ` +
        `(fsync=${pg.fsync}, synchronous_commit=${pg.sc})`,
    );

    let floor: FloorResult | null = null;
    if (args.floorIterations > 0) {
      note(`bench: floor, ${args.floorIterations} transitions one at a time…`);
      floor = await measureFloor({ adminUrl, iterations: args.floorIterations });
      note(
        `bench: floor BEGIN;UPDATE;INSERT;COMMIT p50 ${fmtMs(floor.tx.p50)} ms, p99 ${
          fmtMs(floor.tx.p99)
        } ms; one statement p50 ${fmtMs(floor.stmt.p50)} ms, p99 ${fmtMs(floor.stmt.p99)} ms`,
      );
      note(
        `bench: list poll (count and hash of ${floor.rows} rows) p50 ${
          fmtMs(floor.listPoll.p50)
        } ms, p99 ${fmtMs(floor.listPoll.p99)} ms: ${
          ((floor.listPoll.p50 ?? 0) / 10).toFixed(2)
        } % of one server core at the default 1 s interval`,
      );
    }

    const rows: Row[] = [];
    const skipped: { n: number; rate: number; reason: string }[] = [];
    for (const n of args.ns) {
      let skipRest: string | null = null;
      for (const rate of args.rates) {
        if (skipRest) {
          skipped.push({ n, rate, reason: skipRest });
          note(`bench: N=${n} R=${rate}: skipped (${skipRest})`);
          continue;
        }
        note(`bench: N=${n} R=${rate}/s D=${args.durationSec}s…`);
        const r = await runScenario({
          entry,
          adminUrl,
          n,
          rate,
          durationSec: args.durationSec,
          channelsPerConnection: args.perConnection,
          pgPid: postmasterPid(cluster),
          pgLogFile: cluster?.logFile,
          cpuProfDir: args.cpuProfDir,
          v8Flags: args.v8Flags,
          denoArgs: args.kickmonDenoArgs,
          env: { MONITORING_LIST_FOLLOW: args.listFollow },
          seed: args.seed,
          log: note,
        });
        const row: Row = {
          ...r,
          p50VsFloor: ratio(r.latency.p50, floor?.tx.p50 ?? null),
          p99VsFloor: ratio(r.latency.p99, floor?.tx.p99 ?? null),
        };
        rows.push(row);
        note(
          `  sent ${r.sent}, lost ${r.lost}, p50 ${fmtMs(r.latency.p50)} ms, p99 ${
            fmtMs(r.latency.p99)
          } ms, max ${fmtMs(r.latency.max)} ms, ${r.batches.mean ?? "-"} rows/commit, ` +
            `peak RSS ${r.rss.peakMB} MB (at the end: ${r.rss.anonMB} MB anonymous + ${r.rss.fileMB} MB file-backed), kickmon CPU ${r.cpu.kickmonLoadPct} %, bench CPU ${r.cpu.benchLoadPct} %, ` +
            `postgres CPU ${r.cpu.postgresLoadPct ?? "-"} %; offline frames: sent→kickmon p50 ${
              fmtMs(r.split.transport.p50)
            }/p99 ${fmtMs(r.split.transport.p99)} ms, kickmon→NOTIFY p50 ${
              fmtMs(r.split.commit.p50)
            }/p99 ${fmtMs(r.split.commit.p99)} ms; send lag p99 ${fmtMs(r.sendLag.p99)} ms` +
            (r.dbEvents
              ? `; during the load: ${r.dbEvents.checkpoints} checkpoints, ${r.dbEvents.autovacuums} autovacuums, ${r.dbEvents.autoanalyzes} autoanalyzes`
              : ""),
        );
        if (r.error && r.startup.subscribedMs === null) {
          skipRest = `N=${n} did not start: ${r.error.split("\n")[0]}`;
        } else if (r.lost > 0 || r.latency.p99 === null || r.latency.p99 > 10_000) {
          skipRest = `kickmon could not keep up at R=${rate}/s (lost ${r.lost}, p99 ${
            fmtMs(r.latency.p99)
          } ms)`;
        }
      }
    }

    const report = {
      generatedAt: new Date().toISOString(),
      mode: args.mode,
      machine,
      method: {
        latency: "frame handed to the socket by the simulated Pusher server (onFrameSent, " +
          "performance.now() of the bench process) → NOTIFY kickmon_status received by a LISTEN " +
          "connection of the bench process. NOTIFY is delivered only after commit, so this is an " +
          "upper bound of frame-to-commit; it includes the listener's own receive delay.",
        floor: "plain postgres.js client (max 1), one transition at a time: BEGIN; the same " +
          "guarded UPDATE streamers; INSERT status_events; UPDATE kickmon.streamer_state; COMMIT " +
          "(5 round trips, 1 WAL flush). 'stmt' is the same writes as one statement (1 round trip).",
        load:
          "Poisson arrivals; each frame flips a uniformly chosen streamer (a real transition); " +
          "frames due within one timer tick (~1-2 ms) go out together.",
        lost: "sent frames − status_events rows with source 'pusher' after the drain",
        rss:
          "peak = VmHWM of the kickmon process at the end; steady = median VmRSS sampled every " +
          "200 ms during the load (/proc/<pid>/status, read from outside)",
        cpu: "utime+stime from /proc/<pid>/stat; % of one core over load+drain wall time",
      },
      durationSec: args.durationSec,
      perConnection: args.perConnection,
      v8Flags: args.v8Flags,
      kickmon: args.source
        ? "main.ts (deno run)"
        : "the bundle the binary is compiled from (deno run --no-config)",
      floor,
      scenarios: rows,
      skipped,
      totalSeconds: Math.round((performance.now() - began) / 100) / 10,
    };
    await Deno.mkdir(new URL(".", `file://${args.out}`).pathname, { recursive: true });
    await Deno.writeTextFile(args.out, JSON.stringify(report, null, 2) + "\n");

    console.log("");
    console.log(
      `kickmon benchmark (${args.mode}): ${cores} cores, Deno ${machine.deno}, PostgreSQL ${pg.version} ` +
        `fsync=${pg.fsync} synchronous_commit=${pg.sc}; D=${args.durationSec} s, ` +
        `${args.perConnection} channels per Pusher connection, kickmon V8 flags: ${
          args.v8Flags || "(none)"
        }`,
    );
    console.log(`latency: ${report.method.latency}`);
    if (floor) {
      console.log(
        `floor (${floor.iterations} transitions, one at a time): BEGIN;UPDATE;INSERT;COMMIT ` +
          `p50 ${fmtMs(floor.tx.p50)} ms, p99 ${fmtMs(floor.tx.p99)} ms; one statement p50 ${
            fmtMs(floor.stmt.p50)
          } ms, p99 ${fmtMs(floor.stmt.p99)} ms`,
      );
    }
    console.log("");
    console.log(renderTable(rows));
    for (const s of skipped) console.log(`skipped N=${s.n} R=${s.rate}: ${s.reason}`);
    for (const r of rows) {
      if (r.error) console.log(`N=${r.n} R=${r.rate}: ${r.error.split("\n")[0]}`);
      if (r.unexpected || r.finalMismatches) {
        console.log(
          `N=${r.n} R=${r.rate}: ${r.unexpected} unexpected NOTIFYs, ${r.finalMismatches} final mismatches`,
        );
      }
    }
    const target = rows.find((r) => r.n === 10_000 && r.rate === 2_000);
    if (target) {
      const t = target;
      const p99 = t.latency.p99;
      console.log("");
      console.log("targets at N=10000, R=2000 (reported, not asserted):");
      console.log(`  lost 0: ${t.lost}`);
      console.log(`  p99 ≤ 50 ms: ${fmtMs(p99)} ms`);
      console.log(`  p99 ≤ 10× floor p99: ${t.p99VsFloor ?? "-"}×`);
      console.log(`  peak RSS ≤ 100 MB: ${t.rss.peakMB} MB`);
      console.log(
        `  all channels subscribed ≤ 10 s: ${
          t.startup.subscribedMs === null ? "-" : (t.startup.subscribedMs / 1000).toFixed(1)
        } s`,
      );
    }
    console.log(`\nJSON: ${args.out} (${report.totalSeconds} s in all)`);
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    globalThis.removeEventListener("unload", stopCluster);
    await cluster?.stop();
    if (entryDir) await Deno.remove(entryDir, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main());
