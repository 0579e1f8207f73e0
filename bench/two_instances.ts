/**
 * The two-instance benchmark scenario (issue 14), self-contained so that it
 * can be hooked into `deno task bench` beside the one-instance row: N
 * streamers, a Poisson stream of R transitions per second for D seconds,
 * through TWO real `kickmon start` processes on one database (each with its
 * own state directory and OAuth client, both subscribed to every channel),
 * fed by the simulated Kick in this process.
 *
 * What it measures (`TwoInstanceResult`), the figures to print beside the
 * one-instance row:
 *
 * - **latency**, frame sent → the FIRST `NOTIFY kickmon_status` of that
 *   transition (ms, p50/p99/max), read on one monotonic clock in this
 *   process: whichever instance commits first wins, so it should be no worse
 *   than one instance's;
 * - **lost** = frames sent − `status_events` rows with source `pusher` (must
 *   be 0), **duplicates** = NOTIFYs beyond one per frame (must be 0: the
 *   guarded UPDATE refuses the slower instance's copy), and streamers whose
 *   final status differs from the truth;
 * - **commit share**: `kickmon_transitions_total` of each instance (how the
 *   race splits the writes), and each instance's official-API requests
 *   counted by the simulator: the leader's only, the standby's 0.
 *
 * @example
 * ```ts
 * const r = await runTwoInstances({ adminUrl: cluster.url, n: 10_000, rate: 2_000, durationSec: 30 });
 * console.log(r.latency.p99Ms, r.lost, r.duplicates, r.instances.map((i) => i.apiRequests));
 * ```
 *
 * @module
 */
import postgres from "postgres";
import { type KickmonProcess, spawnKickmon } from "../dev/kickmon_process.ts";
import { startSimulator } from "../dev/simulator/simulator.ts";
import type { Sql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { insertStreamer } from "../src/db/streamers_repo.ts";
import { dropScenarioDatabase } from "./scenario_db.ts";

/**
 * Options of {@linkcode runTwoInstances}.
 *
 * @example
 * ```ts
 * const o: TwoInstanceOptions = { adminUrl, n: 10_000, rate: 2_000, durationSec: 30 };
 * ```
 */
export interface TwoInstanceOptions {
  /** Superuser URL of the cluster; a database `kickmon_bench2_*` is created and dropped on it. */
  readonly adminUrl: string;
  /** Streamers (N). */
  readonly n: number;
  /** Offered transitions per second (R). */
  readonly rate: number;
  /** Load duration (D), seconds. */
  readonly durationSec: number;
  /** Bound on start-up (both instances subscribed to every channel), ms. Default 180000. */
  readonly startTimeoutMs?: number;
  /** Bound on the last commits after the load, ms. Default 30000. */
  readonly drainTimeoutMs?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
  /** The script both instances run (e.g. the bundle the binary is compiled from); default `main.ts`. */
  readonly entry?: string;
  /** `deno run` arguments of both instances (permissions, V8 flags); default `-A`. */
  readonly denoArgs?: string[];
  /** `KICK_PUSHER_MAX_CHANNELS_PER_CONNECTION` of both instances; default kickmon's. */
  readonly channelsPerConnection?: number;
}

/**
 * What the scenario measured; latencies in ms.
 *
 * @example
 * ```ts
 * declare const r: TwoInstanceResult;
 * if (r.lost || r.duplicates) throw new Error("two instances lost or doubled transitions");
 * ```
 */
export interface TwoInstanceResult {
  readonly n: number;
  readonly rate: number;
  readonly durationSec: number;
  /** Frames sent, each a real transition delivered to both instances. */
  readonly sent: number;
  /** Frames whose first NOTIFY arrived. */
  readonly committed: number;
  /** sent − pusher rows in `status_events` (must be 0). */
  readonly lost: number;
  /** NOTIFYs beyond one per frame (must be 0). */
  readonly duplicates: number;
  /** Streamers whose final status differs from the simulated truth. */
  readonly finalMismatches: number;
  /** Frame sent → first NOTIFY, ms. */
  readonly latency: {
    readonly p50Ms: number | null;
    readonly p99Ms: number | null;
    readonly maxMs: number | null;
  };
  /** Per instance: its role at the end, the transitions it committed, its API requests. */
  readonly instances: ReadonlyArray<{
    readonly role: string | null;
    readonly committed: number;
    readonly apiRequests: number;
  }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function quantile(sorted: Float64Array, q: number): number | null {
  if (sorted.length === 0) return null;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 10) / 10;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function scrape(port: number): Promise<{ role: string | null; committed: number }> {
  try {
    const body = await (await fetch(`http://127.0.0.1:${port}/health`)).json();
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const committed = text.split("\n").filter((l) => l.startsWith("kickmon_transitions_total{"))
      .reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
    return { role: body?.leadership?.role ?? null, committed };
  } catch {
    return { role: null, committed: 0 };
  }
}

/**
 * Runs the scenario once and cleans up (database, processes, directories).
 *
 * @throws {Error} when the instances do not start or subscribe within `startTimeoutMs`.
 *
 * @example
 * ```ts
 * const r = await runTwoInstances({ adminUrl, n: 10_000, rate: 2_000, durationSec: 30 });
 * ```
 */
export async function runTwoInstances(opts: TwoInstanceOptions): Promise<TwoInstanceResult> {
  const log = opts.log ?? (() => {});
  const { n, rate, durationSec } = opts;
  const dbName = `kickmon_bench2_${n}_${rate}_${Date.now().toString(36)}`;
  const admin = postgres(opts.adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${dbName}`);
  const url = new URL(opts.adminUrl);
  url.pathname = `/${dbName}`;
  const sql = postgres(url.toString(), { max: 10, onnotice: () => {} });
  const sim = await startSimulator({});
  const procs: KickmonProcess[] = [];
  const dirs: string[] = [];
  let unlisten: (() => Promise<void>) | null = null;
  try {
    await migrate(sql as unknown as Sql, { appSchema: "public" });
    const idOf = new Map<number, number>(); // row id -> streamer index
    for (let i = 0; i < n; i += 100) {
      const chunk = Array.from({ length: Math.min(100, n - i) }, (_, k) => i + k);
      const ids = await Promise.all(chunk.map((j) =>
        insertStreamer(sql as unknown as Sql, {
          username: `two_${j}`,
          kickUserId: 3_000_000 + j,
          kickChannelId: 6_000_000 + j,
          status: "offline",
        })
      ));
      ids.forEach((id, k) => idOf.set(id, chunk[k]));
    }
    for (let j = 0; j < n; j++) {
      sim.world.add({ userId: 3_000_000 + j, slug: `two_${j}`, channelId: 6_000_000 + j });
    }

    const capacity = Math.ceil(rate * durationSec * 1.5) + 1000;
    const sentAt = new Float64Array(capacity);
    const latency = new Float64Array(capacity);
    const pending: number[][] = Array.from({ length: n }, () => []);
    let sent = 0;
    let committed = 0;
    let duplicates = 0;
    const sub = await sql.listen("kickmon_status", (payload) => {
      const now = performance.now();
      const p = JSON.parse(payload) as { streamer_id?: number; source?: string };
      const i = idOf.get(p.streamer_id ?? -1);
      const e = i === undefined ? undefined : pending[i].shift();
      if (e === undefined || p.source !== "pusher") duplicates++;
      else latency[committed++] = now - sentAt[e];
    });
    unlisten = () => sub.unlisten();

    const ports: number[] = [];
    for (const name of ["a", "b"]) {
      const dir = await Deno.makeTempDir({ prefix: `kickmon-bench2-${name}-` });
      dirs.push(dir);
      sim.api.addClient(`bench-${name}`, `bench-secret-${name}`);
      const port = freePort();
      ports.push(port);
      procs.push(spawnKickmon(["start"], {
        ...sim.env(),
        KICK_CLIENT_ID: `bench-${name}`,
        KICK_CLIENT_SECRET: `bench-secret-${name}`,
        DATABASE_URL: url.toString(),
        SYSTEM_STATE_DIRECTORY: dir,
        HEALTH_CHECK_ENABLED: "true",
        HEALTH_CHECK_LISTEN: `127.0.0.1:${port}`,
        KICK_API_MAX_REQUESTS_PER_MINUTE: "100000",
        MONITORING_RECONCILE_INTERVAL: "86400",
        MONITORING_RESYNC_INTERVAL: "86400",
        ...(opts.channelsPerConnection === undefined ? {} : {
          KICK_PUSHER_MAX_CHANNELS_PER_CONNECTION: String(opts.channelsPerConnection),
        }),
      }, { entry: opts.entry, denoArgs: opts.denoArgs }));
    }
    const deadline = performance.now() + (opts.startTimeoutMs ?? 180_000);
    const channels = sim.world.all().map((s) => `channel.${s.channelId}`);
    while (!channels.every((c) => sim.pusher.subscriberCount(c) === 2)) {
      if (performance.now() > deadline) throw new Error("two instances did not subscribe in time");
      await sleep(100);
    }
    log(`  two instances subscribed to ${n} channels`);
    await sleep(2000); // the initial reconciliation of the leader

    const live = new Uint8Array(n);
    const start = performance.now();
    const end = start + durationSec * 1000;
    let due = start;
    while (due < end && sent < capacity) {
      const now = performance.now();
      while (due <= now && due < end && sent < capacity) {
        const i = Math.floor(Math.random() * n);
        live[i] ^= 1;
        pending[i].push(sent);
        sentAt[sent++] = performance.now();
        sim.world.setLive(3_000_000 + i, live[i] === 1);
        due += -Math.log(1 - Math.random()) * (1000 / rate);
      }
      await sleep(Math.max(0, Math.min(5, due - performance.now())));
    }
    const drainEnd = performance.now() + (opts.drainTimeoutMs ?? 30_000);
    while (committed < sent && performance.now() < drainEnd) await sleep(50);
    await sleep(500); // a late duplicate would arrive now

    const [{ rows }] = await sql<{ rows: number }[]>`
      SELECT count(*)::int AS rows FROM status_events WHERE details->>'source' = 'pusher'`;
    const finals = await sql<{ id: number; status: string }[]>`SELECT id, status FROM streamers`;
    const finalMismatches = finals.filter((r) =>
      r.status !== (live[idOf.get(r.id)!] === 1 ? "online" : "offline")
    ).length;
    const sorted = latency.slice(0, committed).sort();
    const instances = [];
    for (const [k, port] of ports.entries()) {
      const s = await scrape(port);
      instances.push({ ...s, apiRequests: sim.api.requestsBy(`bench-${["a", "b"][k]}`) });
    }
    return {
      n,
      rate,
      durationSec,
      sent,
      committed,
      lost: sent - rows,
      duplicates,
      finalMismatches,
      latency: {
        p50Ms: quantile(sorted, 0.5),
        p99Ms: quantile(sorted, 0.99),
        maxMs: quantile(sorted, 1),
      },
      instances,
    };
  } finally {
    for (const p of procs) await p.stop(20_000).catch(() => {});
    await sim.close();
    await dropScenarioDatabase({ unlisten, sql, admin, dbName });
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  // A smoke run: `deno run -A bench/two_instances.ts <admin url> [n] [rate] [seconds]`.
  const [adminUrl, n = "500", rate = "200", sec = "5"] = Deno.args;
  const r = await runTwoInstances({
    adminUrl,
    n: Number(n),
    rate: Number(rate),
    durationSec: Number(sec),
    log: console.log,
  });
  console.log(JSON.stringify(r, null, 2));
}
