/**
 * One end-to-end rig: simulator + fresh database + a real `kickmon start`
 * process, with SQL helpers for assertions.
 *
 * @module
 */
import postgres from "postgres";
import {
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from "../../dev/simulator/simulator.ts";
import type { SimStreamer } from "../../dev/simulator/world.ts";
import type { Sql } from "../../src/db/client.ts";
import { insertStreamer } from "../../src/db/streamers_repo.ts";
import { createTestDatabase, waitFor } from "./database.ts";
import { type KickmonProcess, spawnKickmon } from "../../dev/kickmon_process.ts";

/** A running rig. */
export interface Rig {
  readonly sim: Simulator;
  readonly sql: postgres.Sql;
  readonly dbUrl: string;
  readonly stateDir: string;
  kickmon: KickmonProcess;
  /** Environment the kickmon process was started with. */
  readonly env: Record<string, string>;
  /** Inserts a streamer row; returns its id. */
  insert(
    s: {
      username?: string | null;
      userId?: number | null;
      channelId?: number | null;
      status?: string;
    },
  ): Promise<number>;
  /**
   * Adds a streamer to the simulated world and its row (username = slug, both
   * ids, `status`, default "offline"), then waits until kickmon has subscribed
   * to its Pusher channel.
   *
   * @returns the world's streamer and the row id.
   */
  watch(
    s: { userId: number; slug: string; channelId: number; status?: string },
    timeoutMs?: number,
  ): Promise<{ streamer: SimStreamer; id: number }>;
  /** The row's status. */
  status(id: number): Promise<string>;
  /** What kickmon learned about a row (kickmon.streamer_state), numbers as numbers. */
  identity(id: number): Promise<{
    kickUserId: number | null;
    kickChannelId: number | null;
    resolveError: string | null;
  }>;
  /** Waits until the row has `status`. */
  waitStatus(id: number, status: string, timeoutMs?: number): Promise<void>;
  /** status_events rows of a streamer in order. */
  events(
    id: number,
  ): Promise<Array<{ event_type: string; source: string; details: Record<string, unknown> }>>;
  /** Restarts kickmon (SIGKILL when `kill`, else SIGTERM). */
  restart(opts?: { kill?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts a rig. `env` overrides kickmon's environment.
 *
 * @example
 * ```ts
 * const rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "1" });
 * try { … } finally { await rig.close(); }
 * ```
 */
export async function startRig(
  env: Record<string, string> = {},
  simOpts: SimulatorOptions = {},
  opts: { databaseUrl?: string } = {},
): Promise<Rig> {
  const sim = await startSimulator(simOpts);
  const db = opts.databaseUrl
    ? { url: opts.databaseUrl, drop: () => Promise.resolve() }
    : await createTestDatabase();
  const sql = postgres(db.url, { max: 3, onnotice: () => {} });
  const stateDir = await Deno.makeTempDir({ prefix: "kickmon-state-" });
  const fullEnv = {
    ...sim.env(),
    DATABASE_URL: db.url,
    SYSTEM_STATE_DIRECTORY: stateDir,
    HEALTH_CHECK_ENABLED: "false",
    MONITORING_RECONNECT_DELAY: "100",
    MONITORING_MAX_RECONNECT_DELAY: "1000",
    ...env,
  };
  const start = async () => {
    const p = spawnKickmon(["start"], fullEnv);
    await p.waitForLine(/kickmon started/, 30_000);
    return p;
  };
  const rig: Rig = {
    sim,
    sql,
    dbUrl: db.url,
    stateDir,
    env: fullEnv,
    kickmon: await start(),
    insert: async (s) => {
      // The other system's row (a blank id is resolved by kickmon) and, when
      // given, the channel id in kickmon's schema, as `streamers add` writes them.
      return await insertStreamer(sql as unknown as Sql, {
        username: s.username,
        kickUserId: s.userId,
        kickChannelId: s.channelId,
        status: s.status,
      });
    },
    watch: async (w, timeoutMs = 5000) => {
      const streamer = sim.world.add({ userId: w.userId, slug: w.slug, channelId: w.channelId });
      const id = await rig.insert({
        username: w.slug,
        userId: w.userId,
        channelId: w.channelId,
        status: w.status ?? "offline",
      });
      await waitFor(() => sim.pusher.subscriberCount(`channel.${w.channelId}`) === 1, {
        timeoutMs,
        message: `subscribed to channel.${w.channelId}`,
      });
      return { streamer, id };
    },
    status: async (id) => (await sql`SELECT status FROM streamers WHERE id = ${id}`)[0]?.status,
    identity: async (id) => {
      const [r] = await sql<
        {
          kick_user_id: string | null;
          kick_channel_id: string | null;
          resolve_error: string | null;
        }[]
      >`SELECT kick_user_id, kick_channel_id, resolve_error FROM kickmon.streamer_state
        WHERE streamer_id = ${id}`;
      const n = (v: string | null | undefined) => v == null ? null : Number(v);
      return {
        kickUserId: n(r?.kick_user_id),
        kickChannelId: n(r?.kick_channel_id),
        resolveError: r?.resolve_error ?? null,
      };
    },
    waitStatus: async (id, status, timeoutMs = 5000) => {
      await waitFor(async () => (await rig.status(id)) === status, {
        timeoutMs,
        intervalMs: 20,
        message: `streamer ${id} ${status}`,
      });
    },
    events: async (id) =>
      await sql<Array<{ event_type: string; source: string; details: Record<string, unknown> }>>`
        SELECT event_type, details->>'source' AS source, details FROM status_events
        WHERE streamer_id = ${id} ORDER BY id`,
    restart: async (opts = {}) => {
      if (opts.kill) {
        rig.kickmon.kill("SIGKILL");
        await rig.kickmon.status;
      } else await rig.kickmon.stop();
      rig.kickmon = await start();
    },
    close: async () => {
      rig.kickmon.kill("SIGKILL");
      await rig.kickmon.status;
      await sql.end({ timeout: 1 });
      await db.drop();
      await sim.close();
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    },
  };
  return rig;
}
