/**
 * The database floor: what one status transition costs PostgreSQL alone,
 * measured with a plain postgres.js client, one transition at a time, no
 * kickmon, no Pusher. kickmon's latency is reported as a ratio to it.
 *
 * Two variants are timed on the same database:
 *
 * - **`tx`** (the headline floor): `BEGIN; UPDATE streamers …; INSERT INTO
 *   status_events …; UPDATE kickmon.streamer_state …; COMMIT` — the same
 *   guarded UPDATE (its newer-observation guard in kickmon's schema), INSERT
 *   and state write that kickmon's writer makes, as separate statements in
 *   one transaction (5 round trips, 1 WAL flush).
 * - **`stmt`**: the same writes fused into one statement (a data-modifying
 *   CTE, implicit transaction: 1 round trip, 1 WAL flush), close to the shape
 *   of kickmon's `kickmon.commit_transitions`; shown for reference.
 *
 * @module
 */
import postgres from "postgres";
import { migrate } from "../src/db/migrate.ts";
import { listFingerprint } from "../src/db/streamers_repo.ts";
import { seedStreamers } from "./seed.ts";
import type { Sql } from "../src/db/client.ts";
import { type LatencySummary, summarize, xorshift } from "./stats.ts";

/**
 * Floor measurements, latencies in **ms**.
 *
 * @example
 * ```ts
 * import type { FloorResult } from "./floor.ts";
 * declare const f: FloorResult;
 * console.log(f.tx.p99);
 * ```
 */
export interface FloorResult {
  /** Iterations timed per variant (after `warmup` untimed ones). */
  readonly iterations: number;
  readonly warmup: number;
  /** Streamer rows in the floor database. */
  readonly rows: number;
  /** BEGIN; UPDATE; INSERT; COMMIT (the headline floor). */
  readonly tx: LatencySummary;
  /**
   * BEGIN; UPDATE; INSERT; COMMIT again, paced at 100 transactions/s (exponential gaps, mean
   * 10 ms) instead of back to back: what one transition costs when each finds the client and
   * the server asleep, as every transition does at R = 100. Absent in results from before it.
   */
  readonly txAt100?: LatencySummary;
  /** The same UPDATE + INSERT as one statement (kickmon's shape, without NOTIFY). */
  readonly stmt: LatencySummary;
  /**
   * One poll of the list follower (`listFingerprint`: count and hash of the
   * followed columns of every row), what a database without the list trigger
   * costs per `MONITORING_LIST_POLL_INTERVAL`.
   */
  readonly listPoll: LatencySummary;
}

/** Options of {@linkcode measureFloor}. */
export interface FloorOptions {
  /** Admin URL of the cluster (a database is created and dropped on it). */
  readonly adminUrl: string;
  /** Timed iterations per variant. Default 2000. */
  readonly iterations?: number;
  /** Untimed iterations first. Default 100. */
  readonly warmup?: number;
  /** Streamer rows to seed. Default 10000. */
  readonly rows?: number;
  /** Upper bound for the whole measurement, ms; stops early (fewer iterations) when hit. Default 60000. */
  readonly timeoutMs?: number;
}

/**
 * Measures the floor on a fresh database `kickmon_bench_floor_*` on the
 * cluster of `adminUrl` (dropped afterwards).
 *
 * @throws {Error} from postgres.js when the cluster cannot be reached.
 *
 * @example
 * ```ts
 * import { measureFloor } from "./floor.ts";
 * const f = await measureFloor({ adminUrl: "postgres://postgres@127.0.0.1:5432/postgres" });
 * console.log(`floor p50 ${f.tx.p50} ms, p99 ${f.tx.p99} ms`);
 * ```
 */
export async function measureFloor(opts: FloorOptions): Promise<FloorResult> {
  const iterations = opts.iterations ?? 2000;
  const warmup = opts.warmup ?? 100;
  const rows = opts.rows ?? 10_000;
  const deadline = performance.now() + (opts.timeoutMs ?? 60_000);
  const name = `kickmon_bench_floor_${Date.now().toString(36)}`;
  const admin = postgres(opts.adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(opts.adminUrl);
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { max: 1, onnotice: () => {} });
  try {
    await migrate(sql as unknown as Sql, { appSchema: "public" });
    const ids = (await seedStreamers(sql, "floor_", rows)).map((r) => r.id);
    const status = new Map<number, "online" | "offline">(ids.map((id) => [id, "offline"]));
    const rand = xorshift(7);

    const next = () => {
      const id = ids[Math.floor(rand() * ids.length)];
      const prev = status.get(id)!;
      const to = prev === "online" ? "offline" : "online";
      status.set(id, to);
      const now = new Date();
      const details = {
        source: "pusher",
        event: "App\\Events\\StreamerIsLive",
        previous_status: prev,
      };
      return { id, prev, to, now, details };
    };

    // The same guarded writes kickmon makes (migrations/kickmon_001_state.sql),
    // without the row lock, the NOTIFY and the batching.
    const viaTx = async () => {
      const t = next();
      await sql.begin(async (tx) => {
        const [u] = await tx`
          UPDATE streamers s SET status = ${t.to}, last_status_update = ${t.now},
            last_seen_online = CASE WHEN ${t.to} = 'online' THEN ${t.now}::timestamptz
                                    ELSE s.last_seen_online END,
            updated_at = now()
          FROM kickmon.streamer_state k
          WHERE s.id = ${t.id} AND k.streamer_id = s.id AND s.is_active
            AND s.status IS DISTINCT FROM ${t.to}
            AND (k.status_observed_at IS NULL OR k.status_observed_at <= ${t.now})
          RETURNING s.id`;
        if (!u) return;
        await tx`
          INSERT INTO status_events (streamer_id, event_type, "timestamp", details)
          VALUES (${t.id}, ${t.to}, ${t.now}, ${sql.json(t.details)})`;
        await tx`
          UPDATE kickmon.streamer_state SET status_observed_at = ${t.now}
          WHERE streamer_id = ${t.id}`;
      });
    };
    const viaStmt = async () => {
      const t = next();
      await sql`
        WITH upd AS (
          UPDATE streamers s SET status = ${t.to}, last_status_update = ${t.now},
            last_seen_online = CASE WHEN ${t.to} = 'online' THEN ${t.now}::timestamptz
                                    ELSE s.last_seen_online END,
            updated_at = now()
          FROM kickmon.streamer_state k
          WHERE s.id = ${t.id} AND k.streamer_id = s.id AND s.is_active
            AND s.status IS DISTINCT FROM ${t.to}
            AND (k.status_observed_at IS NULL OR k.status_observed_at <= ${t.now})
          RETURNING s.id
        ), st AS (
          UPDATE kickmon.streamer_state k SET status_observed_at = ${t.now}
          FROM upd WHERE k.streamer_id = upd.id
        )
        INSERT INTO status_events (streamer_id, event_type, "timestamp", details)
        SELECT id, ${t.to}, ${t.now}, ${sql.json(t.details)} FROM upd`;
    };

    const time = async (
      fn: () => Promise<void>,
      count = iterations,
      meanGapMs = 0,
    ): Promise<LatencySummary> => {
      for (let i = 0; i < warmup && performance.now() < deadline; i++) await fn();
      const out = new Float64Array(count);
      let n = 0;
      for (; n < count && performance.now() < deadline; n++) {
        if (meanGapMs > 0) {
          const gap = -Math.log(1 - rand()) * meanGapMs;
          await new Promise((r) => setTimeout(r, gap));
        }
        const t0 = performance.now();
        await fn();
        out[n] = performance.now() - t0;
      }
      return summarize(out.subarray(0, n));
    };
    const tx = await time(viaTx);
    // A quarter of the iterations (at least 100), ~10 ms apart: 5 s for the default 2000.
    const txAt100 = await time(viaTx, Math.max(100, Math.ceil(iterations / 4)), 10);
    const stmt = await time(viaStmt);
    const listPoll = await time(async () => {
      await listFingerprint(sql as unknown as Sql);
    });
    return { iterations, warmup, rows, tx, txAt100, stmt, listPoll };
  } finally {
    await sql.end({ timeout: 2 });
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    await admin.end({ timeout: 2 });
  }
}
