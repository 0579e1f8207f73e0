/**
 * Reconciliation at scale (`deno task bench --reconcile-scale`): N
 * streamers, none with a known Pusher channel id, the simulated official
 * API answering every request after a uniformly random 100–300 ms, and a
 * request budget (`KICK_API_MAX_REQUESTS_PER_MINUTE`) of, by default, 60
 * and then 100 per minute. kickmon runs with its default reconciliation
 * interval (`MONITORING_RECONCILE_INTERVAL` 60 s). It measures:
 *
 * - **one full pass**: from the API's side (the simulator sees every
 *   request): a pass is the run of status requests that covers all N ids
 *   once: `GET /channels?broadcaster_user_id=…` (50 per request, §4.4) and,
 *   for ids `/channels` has confirmed, `GET /users/livestreams?user_id=…`
 *   (100 per request, docs/kick-protocol.md §10.5), plus the
 *   `GET /livestreams` it makes for live streamers without a channel id
 *   (§4.5); its duration is the first request's arrival → the last
 *   response of the pass, ms. kickmon has no pass-duration metric, so this
 *   is measured from outside; `/metrics` (`kickmon_reconciliations_total`,
 *   `kickmon_api_requests_total`) is scraped at the end as a cross-check;
 * - **live → online without a channel id**: `live` streamers go live in the
 *   simulator at uniformly random times over one pass (their Pusher frames
 *   reach nobody); latency = `World.setLive` → the NOTIFY of their `online`
 *   row (source `reconcile`), ms, both on this process's monotonic clock;
 * - **live → online with a channel id**: the same streamers once kickmon
 *   learned their channel id (from `GET /livestreams`) and subscribed to
 *   `channel.{id}`: set offline, then live again (source `pusher`).
 *
 * It runs `main.ts` (from source): this scenario measures the API path and
 * its budget, not CPU or memory.
 *
 * @module
 */
import postgres from "postgres";
import { migrate } from "../src/db/migrate.ts";
import type { Sql } from "../src/db/client.ts";
import { startSimulator } from "../dev/simulator/simulator.ts";
import { startApiServer } from "../dev/simulator/api_server.ts";
import { type KickmonProcess, spawnKickmon } from "../dev/kickmon_process.ts";
import { seedStreamers } from "./seed.ts";
import { fmtMs, type LatencySummary, summarize, xorshift } from "./stats.ts";
import { dropScenarioDatabase, keepKickmonLog } from "./scenario_db.ts";

/**
 * `broadcaster_user_id`s per `GET /channels` request (§4.4).
 *
 * @example
 * ```ts
 * import { IDS_PER_REQUEST } from "./reconcile_scale.ts";
 * Math.ceil(10_000 / IDS_PER_REQUEST); // 200 requests per pass
 * ```
 */
export const IDS_PER_REQUEST = 50;

/**
 * Options of {@linkcode runReconcileScale}.
 *
 * @example
 * ```ts
 * import type { ReconcileScaleOptions } from "./reconcile_scale.ts";
 * const o: ReconcileScaleOptions = { adminUrl: "postgres://…", n: 10_000, budgetPerMin: 60, apiLatencyMs: [100, 300] };
 * ```
 */
export interface ReconcileScaleOptions {
  /** Admin URL of the cluster; a database `kickmon_bench_rec_*` is created and dropped on it. */
  readonly adminUrl: string;
  /** Streamers (N), none with a channel id. */
  readonly n: number;
  /** `KICK_API_MAX_REQUESTS_PER_MINUTE` for kickmon. */
  readonly budgetPerMin: number;
  /** Every API answer is delayed by a uniform random time in [min, max], ms. */
  readonly apiLatencyMs: readonly [number, number];
  /** Streamers that go live during the measurement. Default min(200, ⌈N/10⌉). */
  readonly live?: number;
  /** Seed of the random choices and delays. Default 1. */
  readonly seed?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/**
 * One pass as the simulated API saw it. Times in ms since kickmon was
 * spawned (`startMs`, `endMs`) or ms (`durationMs`).
 *
 * @example
 * ```ts
 * import type { Pass } from "./reconcile_scale.ts";
 * const p: Pass = { startMs: 900, endMs: 200_900, durationMs: 200_000, channelsRequests: 200, otherRequests: 1, ids: 10_000, complete: true };
 * ```
 */
export interface Pass {
  readonly startMs: number;
  readonly endMs: number;
  readonly durationMs: number;
  /** Status requests: `GET /channels` by broadcaster user id and `GET /users/livestreams`. */
  readonly channelsRequests: number;
  /** Other official-API requests during the pass (`/livestreams`, …; not OAuth). */
  readonly otherRequests: number;
  /** Distinct ids the pass asked about. */
  readonly ids: number;
  /** All N ids covered (the last pass may have been cut off by the end of the scenario). */
  readonly complete: boolean;
}

/**
 * What one run of the scenario measured. Durations in ms.
 *
 * @example
 * ```ts
 * import type { ReconcileScaleResult } from "./reconcile_scale.ts";
 * declare const r: ReconcileScaleResult;
 * console.log(r.passes[0]?.durationMs, r.noChannel.p99);
 * ```
 */
export interface ReconcileScaleResult {
  /** Which run (1…K), set by the bench. */
  readonly run?: number;
  readonly n: number;
  readonly budgetPerMin: number;
  readonly apiLatencyMs: readonly [number, number];
  /** Streamers set live in the first phase. */
  readonly live: number;
  /** ⌈N / 50⌉: the `/channels` requests a pass needs. */
  readonly expectedChannelsRequests: number;
  /** ⌈N / 50⌉ ÷ budget: the shortest pass the budget allows, ms. */
  readonly budgetBoundMs: number;
  /** kickmon spawned → its `reconciled (start)` log line, ms. */
  readonly startPassLoggedMs: number | null;
  /** Every pass seen, in order. */
  readonly passes: readonly Pass[];
  /** Live → online for streamers without a channel id (via reconciliation). */
  readonly noChannel: LatencySummary;
  /** Of those, the ones not online before the deadline. */
  readonly noChannelMissed: number;
  /** Channel ids kickmon had learned after the first phase. */
  readonly channelIdsLearned: number;
  /** Live → online for the same streamers with their channel id (via Pusher). */
  readonly withChannel: LatencySummary;
  readonly withChannelMissed: number;
  /** `/metrics` at the end: passes by outcome, and API requests by endpoint (all codes). */
  readonly metrics: {
    readonly reconciliations: Record<string, number>;
    readonly apiRequests: Record<string, number>;
  } | null;
  /**
   * SIGTERM at the end → kickmon's exit, ms, and its exit code (137: it was
   * still running 20 s after SIGTERM and was killed).
   */
  readonly stop: { readonly ms: number; readonly code: number } | null;
  /** Set when the scenario could not complete; other fields are partial. */
  readonly error?: string;
}

/**
 * kickmon's reconciliation interval in the scenario, s (its default).
 *
 * @example
 * ```ts
 * import { RECONCILE_INTERVAL_SEC } from "./reconcile_scale.ts";
 * RECONCILE_INTERVAL_SEC * 1000; // ms
 * ```
 */
export const RECONCILE_INTERVAL_SEC = 60;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Sums Prometheus text-format samples of `name` by one label (`label`),
 * e.g. `kickmon_api_requests_total` by `endpoint`.
 *
 * @example
 * ```ts
 * import { sumByLabel } from "./reconcile_scale.ts";
 * sumByLabel('x_total{outcome="ok"} 3\nx_total{outcome="ok",a="b"} 1\n', "x_total", "outcome"); // { ok: 4 }
 * ```
 */
export function sumByLabel(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${name}\\{([^}]*)\\}\\s+([0-9.eE+-]+)`, "gm");
  for (const m of text.matchAll(re)) {
    const l = new RegExp(`${label}="([^"]*)"`).exec(m[1]);
    const key = l ? l[1] : "";
    out[key] = (out[key] ?? 0) + Number(m[2]);
  }
  return out;
}

/** One API request as the simulator saw it: arrival and response times, ms since spawn. */
interface SeenRequest {
  readonly at: number;
  readonly done: number;
  /** The first user id of a `/channels` or `/users/livestreams` request, else null. */
  readonly firstId: number | null;
  readonly ids: readonly number[];
  readonly channels: boolean;
}

/**
 * Splits the API requests into passes: a status request (`/channels` by id or
 * `/users/livestreams`) whose first id the current pass already asked about
 * starts the next pass.
 *
 * @example
 * ```ts
 * import { splitPasses } from "./reconcile_scale.ts";
 * splitPasses([], 100); // []
 * ```
 */
export function splitPasses(
  reqs: readonly {
    at: number;
    done: number;
    firstId: number | null;
    ids: readonly number[];
    channels: boolean;
  }[],
  n: number,
): Pass[] {
  const passes: Pass[] = [];
  let cur: { start: number; end: number; ch: number; other: number; ids: Set<number> } | null =
    null;
  const close = () => {
    if (!cur) return;
    passes.push({
      startMs: Math.round(cur.start),
      endMs: Math.round(cur.end),
      durationMs: Math.round(cur.end - cur.start),
      channelsRequests: cur.ch,
      otherRequests: cur.other,
      ids: cur.ids.size,
      complete: cur.ids.size >= n,
    });
  };
  for (const r of reqs) {
    if (r.channels && r.firstId !== null) {
      if (!cur || cur.ids.has(r.firstId)) {
        close();
        cur = { start: r.at, end: r.done, ch: 0, other: 0, ids: new Set() };
      }
      cur.ch++;
      for (const id of r.ids) cur.ids.add(id);
      cur.end = Math.max(cur.end, r.done);
    } else if (cur) {
      cur.other++;
      cur.end = Math.max(cur.end, r.done);
    }
  }
  close();
  return passes;
}

/**
 * Runs the scenario once and tears everything down (database, kickmon,
 * simulator), even on failure. Never sends traffic anywhere but 127.0.0.1.
 * Takes about four passes: ~10 min at N = 10,000 and 60 requests/min, ~7 min at 100.
 *
 * @throws {Error} only for set-up failures before kickmon starts (database, simulator);
 *   later failures are reported in `error`.
 *
 * @example
 * ```ts
 * import { runReconcileScale } from "./reconcile_scale.ts";
 * const r = await runReconcileScale({ adminUrl, n: 1000, budgetPerMin: 600, apiLatencyMs: [100, 300] });
 * console.log(r.passes, r.noChannel.p50);
 * ```
 */
export async function runReconcileScale(
  opts: ReconcileScaleOptions,
): Promise<ReconcileScaleResult> {
  const log = opts.log ?? (() => {});
  const { n, budgetPerMin } = opts;
  const live = Math.min(n, opts.live ?? Math.min(200, Math.ceil(n / 10)));
  const seed = opts.seed ?? 1;
  const dbName = `kickmon_bench_rec_${n}_${budgetPerMin}_${Date.now().toString(36)}`;
  const admin = postgres(opts.adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${dbName}`);
  const url = new URL(opts.adminUrl);
  url.pathname = `/${dbName}`;
  const sql = postgres(url.toString(), { max: 2, onnotice: () => {} });
  const stateDir = await Deno.makeTempDir({ prefix: "kickmon-bench-rec-state-" });
  const expected = Math.ceil(n / IDS_PER_REQUEST);
  const budgetBoundMs = Math.round(expected / budgetPerMin * 60_000);

  let sim: Awaited<ReturnType<typeof startSimulator>> | null = null;
  let api: ReturnType<typeof startApiServer> | null = null;
  let kickmon: KickmonProcess | null = null;
  let unlisten: (() => Promise<void>) | null = null;
  let error: string | undefined;
  let t0 = performance.now();
  const reqs: SeenRequest[] = [];
  /** Per streamer index: the status awaited, since when (ms, monotonic), and which phase. */
  const awaited = new Map<number, { status: string; since: number; phase: 1 | 2 }>();
  const lat1: number[] = [], lat2: number[] = [];
  let metrics: ReconcileScaleResult["metrics"] = null;
  let startPassLoggedMs: number | null = null;
  let learned = 0;
  let missed1 = 0, missed2 = 0;
  let stop: ReconcileScaleResult["stop"] = null;

  try {
    await migrate(sql as unknown as Sql, { appSchema: "public" });
    const rows = await seedStreamers(sql, "rec_", n, { channelIds: false });
    const idxOf = new Map<number, number>();
    for (const r of rows) idxOf.set(r.id, r.i - 1);

    sim = await startSimulator();
    for (let i = 0; i < n; i++) {
      sim.world.add({ userId: 1000001 + i, slug: `rec_${i + 1}`, channelId: 5000001 + i });
    }
    // A second API server on the same world, its answers delayed (the simulator's
    // own onRequest hook: no change to the simulator needed).
    const delay = xorshift(seed * 104729);
    const [lo, hi] = opts.apiLatencyMs;
    api = startApiServer({
      world: sim.world,
      clientId: sim.clientId,
      clientSecret: sim.clientSecret,
      webhookPublicKeyPem: sim.webhooks.publicKeyPem,
      onRequest: async (info) => {
        const ms = lo + (hi - lo) * delay();
        if (info.path.startsWith("/public/v1/")) {
          const at = performance.now() - t0;
          // A pass asks for every id once, through /channels (50 per request) or, for
          // ids /channels has confirmed, /users/livestreams (100 per request).
          const byUser = info.path === "/public/v1/users/livestreams";
          const ids = info.url.searchParams.getAll(byUser ? "user_id" : "broadcaster_user_id")
            .map(Number);
          const channels = (byUser || info.path === "/public/v1/channels") && ids.length > 0;
          reqs.push({ at, done: at + ms, firstId: channels ? ids[0] : null, ids, channels });
        }
        await sleep(ms);
      },
    });

    const sub = await sql.listen("kickmon_status", (payload) => {
      const now = performance.now();
      let p: { streamer_id?: number; status?: string };
      try {
        p = JSON.parse(payload);
      } catch {
        return;
      }
      const i = idxOf.get(p.streamer_id ?? -1);
      const w = i === undefined ? undefined : awaited.get(i);
      if (i === undefined || !w || w.status !== p.status) return;
      awaited.delete(i);
      if (w.phase === 1) lat1.push(now - w.since);
      else if (w.status === "online") lat2.push(now - w.since);
    });
    unlisten = () => sub.unlisten();

    const healthPort = freePort();
    const env: Record<string, string> = {
      ...sim.env(),
      KICK_OAUTH_URL: api.oauthUrl,
      KICK_API_URL: api.apiUrl,
      KICK_UNOFFICIAL_API_URL: api.unofficialUrl,
      DATABASE_URL: url.toString(),
      SYSTEM_STATE_DIRECTORY: stateDir,
      SYSTEM_LOG_LEVEL: "info",
      HEALTH_CHECK_ENABLED: "true",
      HEALTH_CHECK_LISTEN: `127.0.0.1:${healthPort}`,
      KICK_API_MAX_REQUESTS_PER_MINUTE: String(budgetPerMin),
      MONITORING_RECONCILE_INTERVAL: String(RECONCILE_INTERVAL_SEC),
    };
    t0 = performance.now();
    kickmon = spawnKickmon(["start"], env);
    const k = kickmon;
    let exited = false;
    k.status.then(() => (exited = true));
    const alive = () => {
      if (exited) throw new Error(`kickmon exited:\n${k.lines.slice(-20).join("\n")}`);
    };

    // --- the start pass ------------------------------------------------------------
    const passBound = Math.max(budgetBoundMs, expected * hi) + 30_000;
    await k.waitForLine(/reconciled \(\\?"?start/, passBound + 60_000);
    startPassLoggedMs = Math.round(performance.now() - t0);
    const startPass = splitPasses(reqs, n)[0];
    const passMs = Math.max(5_000, startPass?.durationMs ?? budgetBoundMs);
    log(
      `  start pass: ${startPass?.channelsRequests ?? "?"} status requests in ${
        Math.round(passMs / 1000)
      } s (the budget allows ${Math.round(budgetBoundMs / 1000)} s); logged at ${
        Math.round(startPassLoggedMs / 1000)
      } s`,
    );

    // --- phase 1: live without a channel id ---------------------------------------------
    const pick = xorshift(seed * 7919);
    const chosen = new Set<number>();
    while (chosen.size < live) chosen.add(Math.floor(pick() * n));
    const schedule = [...chosen].map((i) => ({ i, at: pick() * passMs })).sort((a, b) =>
      a.at - b.at
    );
    log(`  ${live} streamers go live over ${Math.round(passMs / 1000)} s (no channel id known)`);
    const p1 = performance.now();
    for (const e of schedule) {
      const wait = p1 + e.at - performance.now();
      if (wait > 0) await sleep(wait);
      alive();
      awaited.set(e.i, { status: "online", since: performance.now(), phase: 1 });
      sim.world.setLive(1000001 + e.i, true);
    }
    // A streamer that went live just after its batch was asked about is seen by the
    // next pass, which starts one interval after the last one started (or at once
    // when a pass outlasts the interval) and reports at its end.
    const cycleMs = Math.max(passMs, RECONCILE_INTERVAL_SEC * 1000);
    const deadline1 = p1 + passMs + 2 * cycleMs + passMs + 30_000;
    while (awaited.size > 0 && performance.now() < deadline1) {
      alive();
      await sleep(200);
    }
    missed1 = awaited.size;
    awaited.clear();
    log(
      `  phase 1: ${lat1.length} online, p50 ${fmtMs(summarize(lat1).p50)} ms, p99 ${
        fmtMs(summarize(lat1).p99)
      } ms, ${missed1} not online in time`,
    );

    // --- phase 2: the same streamers, channel id learned -------------------------------
    const subscribed = () => new Set(sim!.pusher.subscribedChannels());
    const known = [...chosen];
    const subDeadline = performance.now() + 30_000;
    let ready: number[] = [];
    while (performance.now() < subDeadline) {
      const s = subscribed();
      ready = known.filter((i) => s.has(`channel.${5000001 + i}`));
      if (ready.length === known.length) break;
      await sleep(200);
    }
    const [{ c }] = await sql<{ c: number }[]>`
      SELECT count(*)::int AS c FROM kickmon.streamer_state WHERE kick_channel_id IS NOT NULL`;
    learned = c;
    log(`  ${learned} channel ids learned; ${ready.length} of ${known.length} subscribed`);
    for (const i of ready) {
      awaited.set(i, { status: "offline", since: performance.now(), phase: 2 });
      sim.world.setLive(1000001 + i, false);
    }
    const offDeadline = performance.now() + 30_000;
    while (awaited.size > 0 && performance.now() < offDeadline) await sleep(50);
    awaited.clear();
    const p2 = performance.now();
    const spanMs = 5_000;
    const schedule2 = ready.map((i) => ({ i, at: pick() * spanMs })).sort((a, b) => a.at - b.at);
    for (const e of schedule2) {
      const wait = p2 + e.at - performance.now();
      if (wait > 0) await sleep(wait);
      awaited.set(e.i, { status: "online", since: performance.now(), phase: 2 });
      sim.world.setLive(1000001 + e.i, true);
    }
    const deadline2 = performance.now() + 30_000;
    while (awaited.size > 0 && performance.now() < deadline2) await sleep(50);
    missed2 = awaited.size + (known.length - ready.length);
    log(
      `  phase 2: ${lat2.length} online, p50 ${fmtMs(summarize(lat2).p50)} ms, p99 ${
        fmtMs(summarize(lat2).p99)
      } ms`,
    );

    try {
      const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
      metrics = {
        reconciliations: sumByLabel(text, "kickmon_reconciliations_total", "outcome"),
        apiRequests: sumByLabel(text, "kickmon_api_requests_total", "endpoint"),
      };
    } catch (e) {
      log(`  /metrics could not be read: ${e instanceof Error ? e.message : e}`);
    }
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    log(`  ERROR: ${error}`);
  } finally {
    if (kickmon) {
      const s0 = performance.now();
      const code = await kickmon.stop(20_000);
      stop = { ms: Math.round(performance.now() - s0), code };
      if (code !== 0) log(`  kickmon exited with code ${code} ${stop.ms} ms after SIGTERM`);
      await keepKickmonLog(kickmon.lines);
    }
    await dropScenarioDatabase({ unlisten, sql, admin, dbName });
    await api?.close();
    await sim?.close();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
  const result: ReconcileScaleResult = {
    n,
    budgetPerMin,
    apiLatencyMs: opts.apiLatencyMs,
    live,
    expectedChannelsRequests: expected,
    budgetBoundMs,
    startPassLoggedMs,
    passes: splitPasses(reqs, n),
    noChannel: summarize(lat1),
    noChannelMissed: missed1,
    channelIdsLearned: learned,
    withChannel: summarize(lat2),
    withChannelMissed: missed2,
    metrics,
    stop,
  };
  return error ? { ...result, error } : result;
}

/**
 * How the scenario measures, written into the JSON.
 *
 * @example
 * ```ts
 * import { RECONCILE_METHOD } from "./reconcile_scale.ts";
 * console.log(RECONCILE_METHOD.pass);
 * ```
 */
export const RECONCILE_METHOD = {
  setup: "N streamers with kick_user_id and no kick_channel_id; the simulated official API " +
    "answers each request after a uniform random delay in apiLatencyMs; kickmon (main.ts) with " +
    "KICK_API_MAX_REQUESTS_PER_MINUTE = budgetPerMin and MONITORING_RECONCILE_INTERVAL = 60 s " +
    "(the default)",
  pass: "from the simulator's request log: a pass = the status requests (GET " +
    "/channels?broadcaster_user_id, GET /users/livestreams?user_id) covering all N once (a request whose first id the pass already asked about " +
    "starts the next), plus the other API requests meanwhile; duration = first arrival → last " +
    "response. Summary: median over a run's complete passes, then median and min–max over runs",
  noChannel: "World.setLive(true) of `live` streamers at uniform random times over one pass → " +
    "NOTIFY of their online row, one monotonic clock",
  withChannel: "the same streamers after kickmon learned their channel id and subscribed: " +
    "offline, then live again over 5 s → NOTIFY of the online row",
};
