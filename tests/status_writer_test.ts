import assert from "node:assert/strict";
import postgres from "postgres";
import { createTestDatabase } from "./helpers/database.ts";
import type { Transition } from "../src/core/types.ts";
import type { Sql } from "../src/db/client.ts";
import { inspectDatabase } from "../src/db/inspect.ts";
import { migrate, MIGRATIONS, pendingSteps } from "../src/db/migrate.ts";
import { commitTransitions, splitRounds, StatusWriter } from "../src/db/status_writer.ts";
import { insertStreamer } from "../src/db/streamers_repo.ts";

const APP = { appSchema: "public" };

async function withDb(fn: (sql: Sql, url: string) => Promise<void>) {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 3, onnotice: () => {} }) as unknown as Sql;
  try {
    await migrate(sql, APP);
    await fn(sql, db.url);
  } finally {
    await sql.end({ timeout: 1 });
    await db.drop();
  }
}

/** Per streamer, the livestream the last `online` of {@linkcode tr} started (ids only grow). */
const livestreams = new Map<number, number>();
const tr = (streamerId: number, status: "online" | "offline", at: number): Transition => ({
  streamerId,
  status,
  previousStatus: status === "online" ? "offline" : "online",
  observedAt: at,
  eventTime: at - 5,
  source: "pusher",
  event: status === "online" ? "App\\Events\\StreamerIsLive" : "App\\Events\\StopStreamBroadcast",
  // A new livestream per `online`, the same one for the `offline` after it: as Kick names them.
  livestreamId: status === "online"
    ? livestreams.set(streamerId, (livestreams.get(streamerId) ?? 41) + 1).get(streamerId)!
    : livestreams.get(streamerId) ?? 42,
});

Deno.test("migrate is idempotent and records what ran", async () => {
  await withDb(async (sql) => {
    assert.deepEqual(await migrate(sql, APP), []);
    assert.deepEqual(pendingSteps(await inspectDatabase(sql, "public"), APP), []);
    const [{ n }] = await sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM kickmon.schema_migrations`;
    assert.equal(n, MIGRATIONS.length);
    // two concurrent migrations serialise on the advisory lock
    const [a, b] = await Promise.all([migrate(sql, APP), migrate(sql, APP)]);
    assert.deepEqual([...a, ...b], []);
  });
});

Deno.test("005_generic_plan: commit_transitions is planned once, also in a database migrated before it", async () => {
  await withDb(async (sql) => {
    const fn =
      "kickmon.commit_transitions(int[],text[],timestamptz[],timestamptz[],jsonb[],bigint[])";
    const config = async () => {
      const [{ c }] = await sql<{ c: string[] | null }[]>`
        SELECT proconfig AS c FROM pg_proc WHERE oid = ${fn}::regprocedure`;
      return c ?? [];
    };
    assert.deepEqual(await config(), ["plan_cache_mode=force_generic_plan"]);
    // A database migrated up to 004 has the function without the setting.
    await sql.unsafe(`ALTER FUNCTION ${fn} RESET ALL`);
    await sql`DELETE FROM kickmon.schema_migrations WHERE version = '005_generic_plan'`;
    assert.deepEqual(await config(), []);
    assert.deepEqual(
      pendingSteps(await inspectDatabase(sql, "public"), APP),
      ["005_generic_plan"],
    );
    assert.deepEqual(await migrate(sql, APP), ["005_generic_plan"]);
    assert.deepEqual(await config(), ["plan_cache_mode=force_generic_plan"]);
    // Still writes, with the same guards, past the 5 custom plans PL/pgSQL tries first.
    const id = await insertStreamer(sql, { username: "generic", kickUserId: 9001 });
    const t = (status: "online" | "offline", at: number): Transition => ({
      streamerId: id,
      status,
      previousStatus: status === "online" ? "offline" : "online",
      observedAt: at,
      eventTime: at,
      source: "pusher",
      event: status === "online"
        ? "App\\Events\\StreamerIsLive"
        : "App\\Events\\StopStreamBroadcast",
    });
    for (let i = 0; i < 7; i++) {
      const r = await commitTransitions(sql, [t(i % 2 ? "offline" : "online", 2_000_000 + i)]);
      assert.equal(r.committed.length, 1, `call ${i + 1}`);
    }
    // online now: the same status again is no transition; an older observation is refused.
    assert.equal((await commitTransitions(sql, [t("online", 2_000_010)])).committed.length, 0);
    assert.equal((await commitTransitions(sql, [t("offline", 1_999_000)])).committed.length, 0);
    assert.equal((await commitTransitions(sql, [t("offline", 2_000_011)])).committed.length, 1);
    const [{ n }] = await sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM status_events WHERE streamer_id = ${id}`;
    assert.equal(n, 8);
  });
});

Deno.test("commitTransitions writes a transition once, with history and NOTIFY", async () => {
  await withDb(async (sql) => {
    const id = await insertStreamer(sql, { username: "xqc", kickUserId: 676, kickChannelId: 668 });
    const notes: string[] = [];
    const sub = await sql.listen("kickmon_status", (p) => notes.push(p));
    const r1 = await commitTransitions(sql, [tr(id, "online", 1_000_000)]);
    assert.equal(r1.committed.length, 1);
    assert.equal(r1.committed[0].previousStatus, "unknown");
    // duplicate: nothing written
    const r2 = await commitTransitions(sql, [tr(id, "online", 1_000_100)]);
    assert.equal(r2.committed.length, 0);
    assert.equal(r2.rejected.length, 1);
    // older observation than the stored one: refused
    const r3 = await commitTransitions(sql, [tr(id, "offline", 999_000)]);
    assert.equal(r3.committed.length, 0);
    const rows = await sql<{ event_type: string; details: Record<string, unknown> }[]>`
      SELECT event_type, details FROM status_events WHERE streamer_id = ${id} ORDER BY id`;
    assert.equal(rows.length, 1);
    assert.equal(rows[0].event_type, "online");
    assert.equal(rows[0].details.source, "pusher");
    assert.equal(rows[0].details.previous_status, "unknown");
    assert.equal(rows[0].details.livestream_id, 42);
    assert.equal(rows[0].details.event, "App\\Events\\StreamerIsLive");
    const [s] = await sql<{ status: string; last_seen_online: Date | null }[]>`
      SELECT status, last_seen_online FROM streamers WHERE id = ${id}`;
    assert.equal(s.status, "online");
    assert.ok(s.last_seen_online);
    for (let i = 0; i < 50 && notes.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await sub.unlisten();
    assert.equal(notes.length, 1);
    const n = JSON.parse(notes[0]);
    assert.equal(n.username, "xqc");
    assert.equal(n.status, "online");
    assert.equal(n.source, "pusher");
  });
});

Deno.test("commitTransitions refuses inactive and deleted streamers", async () => {
  await withDb(async (sql) => {
    const [{ id }] = await sql<{ id: number }[]>`
      INSERT INTO streamers (username, kick_user_id, is_active) VALUES ('gone', '9', false)
      RETURNING id`;
    const r = await commitTransitions(sql, [tr(id, "online", 1), tr(id + 1000, "online", 1)]);
    assert.equal(r.committed.length, 0);
    assert.equal(r.rejected.length, 2);
  });
});

Deno.test("splitRounds keeps each streamer's order", () => {
  const a1 = tr(1, "online", 1), b1 = tr(2, "online", 2), a2 = tr(1, "offline", 3);
  assert.deepEqual(splitRounds([a1, b1, a2]), [[a1, b1], [a2]]);
});

Deno.test("StatusWriter commits a burst in order, several per streamer", async () => {
  await withDb(async (sql) => {
    const ids: number[] = [];
    for (let i = 0; i < 20; i++) {
      ids.push(await insertStreamer(sql, { username: "s" + i, kickUserId: 100 + i }));
    }
    const writer = new StatusWriter(sql, { spoolPath: null });
    let t = 1_000;
    for (let round = 0; round < 5; round++) {
      for (const id of ids) writer.enqueue(tr(id, round % 2 === 0 ? "online" : "offline", t++));
    }
    assert.ok(await writer.flush(10_000));
    assert.equal(writer.stats.committedTotal, 100);
    const rows = await sql<{ streamer_id: number; event_type: string }[]>`
      SELECT streamer_id, event_type FROM status_events ORDER BY id`;
    assert.equal(rows.length, 100);
    for (const id of ids) {
      const seq = rows.filter((r) => r.streamer_id === id).map((r) => r.event_type);
      assert.deepEqual(seq, ["online", "offline", "online", "offline", "online"]);
    }
    await writer.close(1000);
  });
});

Deno.test("StatusWriter spools during an outage and replays after a crash", async () => {
  const db = await createTestDatabase();
  const dir = await Deno.makeTempDir();
  const spoolPath = `${dir}/spool.jsonl`;
  const admin = postgres(db.url, { max: 1, onnotice: () => {} }) as unknown as Sql;
  try {
    await migrate(admin, APP);
    const id = await insertStreamer(admin, { username: "spooled", kickUserId: 77 });
    // A client pointed at a closed port: every write is a connection error.
    const dead = postgres("postgres://postgres@127.0.0.1:1/none", {
      max: 1,
      connect_timeout: 1,
      onnotice: () => {},
    }) as unknown as Sql;
    const w1 = new StatusWriter(dead, { spoolPath, retryBaseMs: 50, retryMaxMs: 200 });
    w1.enqueue(tr(id, "online", 10));
    w1.enqueue(tr(id, "offline", 20));
    w1.enqueue(tr(id, "online", 30));
    assert.equal(await w1.flush(1500), false);
    assert.equal(w1.stats.databaseUp, false);
    await w1.close(100); // "crash": nothing committed
    await dead.end({ timeout: 1 });
    const spooled = (await Deno.readTextFile(spoolPath)).trim().split("\n");
    assert.equal(spooled.length, 3);
    // Next start: replay in order, exactly once, then the spool is empty.
    const w2 = new StatusWriter(admin, { spoolPath });
    assert.equal((await w2.open()).length, 3);
    assert.equal(w2.depth, 3, "nothing is committed before start()");
    w2.start();
    assert.ok(await w2.flush(5000));
    await w2.close(100);
    const rows = await admin<{ event_type: string }[]>`
      SELECT event_type FROM status_events WHERE streamer_id = ${id} ORDER BY id`;
    assert.deepEqual(rows.map((r) => r.event_type), ["online", "offline", "online"]);
    assert.equal((await Deno.readTextFile(spoolPath)).length, 0);
    // Replaying the same spool again writes nothing (idempotent).
    await Deno.writeTextFile(spoolPath, spooled.join("\n") + "\n");
    const w3 = new StatusWriter(admin, { spoolPath });
    await w3.open();
    w3.start();
    assert.ok(await w3.flush(5000));
    await w3.close(100);
    const [{ n }] = await admin<{ n: number }[]>`SELECT count(*)::int AS n FROM status_events`;
    assert.equal(n, 3);
  } finally {
    await admin.end({ timeout: 1 });
    await db.drop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("StatusWriter drops only a transition the database refuses as invalid data", async () => {
  await withDb(async (sql) => {
    const ids: number[] = [];
    for (const [i, u] of ["a", "b", "c"].entries()) {
      ids.push(await insertStreamer(sql, { username: u, kickUserId: 10 + i }));
    }
    const writer = new StatusWriter(sql, { spoolPath: null });
    writer.enqueue(tr(ids[0], "online", 10));
    // A status longer than VARCHAR(50) (SQLSTATE 22001): bad data, not an outage.
    writer.enqueue({ ...tr(ids[1], "online", 11), status: "x".repeat(60) as "online" });
    writer.enqueue(tr(ids[2], "online", 12));
    assert.ok(await writer.flush(5000));
    assert.equal(writer.stats.droppedTotal, 1);
    assert.equal(writer.stats.committedTotal, 2);
    const rows = await sql<
      { streamer_id: number }[]
    >`SELECT streamer_id FROM status_events ORDER BY id`;
    assert.deepEqual(rows.map((r) => r.streamer_id), [ids[0], ids[2]]);
    await writer.close(100);
  });
});

Deno.test("instances committing the same transitions at once write each state change once", async () => {
  await withDb(async (sql, url) => {
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(await insertStreamer(sql, { username: `race${i}`, kickUserId: 500 + i }));
    }
    const others = [1, 2].map(() =>
      postgres(url, { max: 1, onnotice: () => {} }) as unknown as Sql
    );
    try {
      // Three "instances" heard the same 150 frames per streamer and commit
      // them concurrently, each in its own streamer order.
      const steps = 150;
      const batches = Array.from(
        { length: steps },
        (_, k) => ids.map((id) => tr(id, k % 2 === 0 ? "online" : "offline", 1_000 + k * 10)),
      );
      await Promise.all([sql, ...others].map(async (client, w) => {
        for (const b of batches) {
          await commitTransitions(client, w === 1 ? [...b].reverse() : b);
        }
      }));
      for (const id of ids) {
        const rows = await sql<{ event_type: string }[]>`
          SELECT event_type FROM status_events WHERE streamer_id = ${id} ORDER BY id`;
        const seq = rows.map((r) => r.event_type);
        for (let i = 1; i < seq.length; i++) {
          assert.notEqual(seq[i], seq[i - 1], `streamer ${id}: row ${i} repeats a state`);
        }
        assert.equal(seq.length, steps, `streamer ${id}: every transition exactly once`);
        const [{ status }] = await sql`SELECT status FROM streamers WHERE id = ${id}`;
        assert.equal(status, "offline");
      }
    } finally {
      for (const o of others) await o.end({ timeout: 1 });
    }
  });
});

/** A client pointed at a closed port: every write is a connection error. */
function deadClient(): Sql {
  return postgres("postgres://postgres@127.0.0.1:1/none", {
    max: 1,
    connect_timeout: 1,
    onnotice: () => {},
  }) as unknown as Sql;
}

/** Replays a spool file into `sql` with a fresh writer; returns each streamer's history. */
async function replay(sql: Sql, spoolPath: string, ids: number[]) {
  const w = new StatusWriter(sql, { spoolPath });
  await w.open();
  w.start();
  assert.ok(await w.flush(10_000));
  await w.close(100);
  const out = new Map<number, { event_type: string; details: Record<string, unknown> }[]>();
  for (const id of ids) {
    out.set(
      id,
      await sql`SELECT event_type, details FROM status_events WHERE streamer_id = ${id} ORDER BY id`,
    );
  }
  return out;
}

Deno.test("a flood of one streamer's transitions is capped per streamer; the net state and the collapse are kept", async () => {
  await withDb(async (sql) => {
    const noisy = await insertStreamer(sql, { username: "noisy", kickUserId: 1 });
    const calm = await insertStreamer(sql, { username: "calm", kickUserId: 2 });
    const collapsed: Transition[] = [];
    const w = new StatusWriter(sql, {
      spoolPath: null,
      onCollapsed: (ts) => collapsed.push(...ts),
    });
    for (let k = 0; k < 1001; k++) {
      w.enqueue(tr(noisy, k % 2 === 0 ? "online" : "offline", 1_000 + k));
      if (k === 500) w.enqueue(tr(calm, "online", 1_500));
    }
    assert.ok(w.depth <= 18, `queue bounded: ${w.depth}`);
    assert.equal(collapsed.length, w.stats.collapsedTotal);
    assert.equal(collapsed.length + w.depth, 1002, "every transition kept or reported collapsed");
    assert.ok(await w.flush(10_000));
    await w.close(100);
    const rows = await sql<{ event_type: string; details: Record<string, unknown> }[]>`
      SELECT event_type, details FROM status_events WHERE streamer_id = ${noisy} ORDER BY id`;
    const seq = rows.map((r) => r.event_type);
    for (let i = 1; i < seq.length; i++) assert.notEqual(seq[i], seq[i - 1]);
    assert.equal(seq.at(-1), "online", "the net state of 1001 alternating frames");
    const total = rows.reduce((n, r) => n + 1 + Number(r.details.collapsed ?? 0), 0);
    assert.equal(total, 1001, "rows plus details.collapsed account for every frame");
    assert.match(String(rows.at(-1)?.details.collapsed_because), /more than 16 transitions/);
    const [c] = await sql`SELECT count(*)::int AS n FROM status_events WHERE streamer_id = ${calm}`;
    assert.equal(c.n, 1);
  });
});

Deno.test("spool bound: beyond SYSTEM_SPOOL_MAX_BYTES each streamer keeps its net transition, all on disk", async () => {
  await withDb(async (sql) => {
    const dir = await Deno.makeTempDir();
    const spoolPath = `${dir}/spool.jsonl`;
    const ids: number[] = [];
    for (let i = 0; i < 40; i++) {
      ids.push(await insertStreamer(sql, { username: `b${i}`, kickUserId: 100 + i }));
    }
    const dead = deadClient();
    const w = new StatusWriter(dead, {
      spoolPath,
      spoolMaxBytes: 16 * 1024,
      retryBaseMs: 50,
      retryMaxMs: 100,
    });
    // 40 streamers x 9 alternating transitions, interleaved: ~90 KB of spool lines.
    let t = 1_000;
    for (let k = 0; k < 9; k++) {
      for (const id of ids) w.enqueue(tr(id, k % 2 === 0 ? "online" : "offline", t++));
      await new Promise((r) => setTimeout(r, 20)); // let the spool flush
    }
    assert.equal(await w.flush(300), false);
    await w.close(100);
    assert.ok(w.stats.spoolCompacted, "the bound was reached");
    await dead.end({ timeout: 1 });
    const bytes = (await Deno.stat(spoolPath)).size;
    assert.ok(bytes <= 16 * 1024, `spool within its bound: ${bytes}`);
    const lines = (await Deno.readTextFile(spoolPath)).trim().split("\n");
    assert.equal(lines.length, w.depth, "the spool holds exactly the queue");
    assert.equal(w.depth + w.stats.collapsedTotal, 360);
    const h = await replay(sql, spoolPath, ids);
    for (const id of ids) {
      const rows = h.get(id)!;
      assert.equal(rows.at(-1)?.event_type, "online", `streamer ${id}: net state`);
      assert.equal(rows.reduce((n, r) => n + 1 + Number(r.details.collapsed ?? 0), 0), 9);
    }
    await Deno.remove(dir, { recursive: true });
  });
});

/** Mounts a tmpfs of `kib` KiB (root only); null where the machine does not allow it. */
async function smallTmpfs(kib: number): Promise<{ dir: string; unmount(): Promise<void> } | null> {
  const dir = await Deno.makeTempDir({ prefix: "kickmon-fulldisk-" });
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${kib}k`, "tmpfs", dir],
    stderr: "piped",
    stdout: "null",
  }).output().catch(() => null);
  if (!out?.success) {
    await Deno.remove(dir);
    return null;
  }
  return {
    dir,
    unmount: async () => {
      await new Deno.Command("umount", { args: [dir] }).output();
      await Deno.remove(dir);
    },
  };
}

const canMount = Deno.uid() === 0 && Deno.build.os === "linux";

Deno.test({
  name: "a full disk during an outage is an error in the stats, not a crash; the spool catches up",
  ignore: !canMount,
  fn: async () => {
    await withDb(async (sql) => {
      const fs = await smallTmpfs(64);
      assert.ok(fs, "root can mount a tmpfs here");
      try {
        const ids: number[] = [];
        for (let i = 0; i < 20; i++) {
          ids.push(await insertStreamer(sql, { username: `d${i}`, kickUserId: 300 + i }));
        }
        // Fill the disk, leaving a few hundred bytes.
        const filler = `${fs.dir}/filler`;
        const f = await Deno.open(filler, { write: true, create: true });
        try {
          const chunk = new Uint8Array(1024);
          for (;;) await f.write(chunk);
        } catch {
          /* ENOSPC: full */
        } finally {
          f.close();
        }
        const spoolPath = `${fs.dir}/spool.jsonl`;
        const dead = deadClient();
        const w = new StatusWriter(dead, { spoolPath, retryBaseMs: 50, retryMaxMs: 100 });
        let t = 1_000;
        for (let k = 0; k < 5; k++) {
          for (const id of ids) w.enqueue(tr(id, k % 2 === 0 ? "online" : "offline", t++));
          await new Promise((r) => setTimeout(r, 30));
        }
        await new Promise((r) => setTimeout(r, 300));
        assert.match(String(w.stats.spoolError), /space|No space/i);
        assert.ok(w.stats.spoolWriteErrorsTotal >= 1);
        assert.equal(w.depth, 100, "kept in memory meanwhile");
        // Space comes back: the next retry (every second) writes the whole queue.
        await Deno.remove(filler);
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(w.stats.spoolError, null);
        assert.equal(w.stats.spoolTransitions, 100);
        await w.close(100);
        await dead.end({ timeout: 1 });
        const lines = (await Deno.readTextFile(spoolPath)).trim().split("\n");
        assert.equal(lines.length, 100);
        const h = await replay(sql, spoolPath, ids);
        for (const id of ids) assert.equal(h.get(id)!.length, 5);
      } finally {
        await fs.unmount();
      }
    });
  },
});

Deno.test("commitTransitions: another instance's late copy of an older frame is refused by its livestream id", async () => {
  await withDb(async (sql) => {
    const id = await insertStreamer(sql, {
      username: "twice",
      kickUserId: 677,
      kickChannelId: 669,
    });
    const at = (status: "online" | "offline", t: number, livestreamId: number): Transition => ({
      ...tr(id, status, t),
      livestreamId,
    });
    // Instance A: livestream 100 starts and ends within milliseconds.
    assert.equal(
      (await commitTransitions(sql, [at("online", 1_000_000, 100)])).committed.length,
      1,
    );
    assert.equal(
      (await commitTransitions(sql, [at("offline", 1_000_002, 100)])).committed.length,
      1,
    );
    // Instance B received the same "online" 3 ms later than A, after A's "offline" (issue 14):
    // newer by its clock, but its livestream already ended.
    const late = await commitTransitions(sql, [at("online", 1_000_003, 100)]);
    assert.equal(late.committed.length, 0);
    assert.equal(late.rejected.length, 1);
    // An older livestream is refused too; a newer one goes live.
    assert.equal((await commitTransitions(sql, [at("online", 1_000_010, 99)])).committed.length, 0);
    assert.equal(
      (await commitTransitions(sql, [at("online", 1_000_020, 101)])).committed.length,
      1,
    );
    // The same livestream live again long after its end is not a copy: the time guard decides.
    assert.equal(
      (await commitTransitions(sql, [at("offline", 1_000_025, 101)])).committed.length,
      1,
    );
    assert.equal(
      (await commitTransitions(sql, [at("online", 1_020_000, 101)])).committed.length,
      1,
    );
    // A transition that names no livestream (reconciliation) is ordered by time alone.
    const { livestreamId: _, ...reconciled } = at("offline", 1_020_030, 0);
    assert.equal((await commitTransitions(sql, [reconciled])).committed.length, 1);
    const rows = await sql<{ event_type: string }[]>`
      SELECT event_type FROM status_events WHERE streamer_id = ${id} ORDER BY id`;
    assert.deepEqual(
      rows.map((r) => r.event_type),
      ["online", "offline", "online", "offline", "online", "offline"],
    );
  });
});

Deno.test("group commit: what is enqueued in one turn of the event loop goes out in one statement", async () => {
  // Frames of several sockets arrive in one turn; the first must not leave
  // alone and make the rest wait for its round trip (issue 15: per statement
  // kickmon pays the socket write and read, however many rows it carries).
  await withDb(async (sql) => {
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(await insertStreamer(sql, { username: `turn${i}`, kickUserId: 900 + i }));
    }
    const writer = new StatusWriter(sql, { spoolPath: null });
    const t0 = Date.now();
    for (const id of ids) writer.enqueue(tr(id, "online", t0));
    assert.ok(await writer.flush(10_000));
    assert.equal(writer.stats.committedTotal, 5);
    assert.equal(writer.stats.statementsTotal, 1);
    // And again from idle, a turn later: one more statement for the next turn's two.
    await new Promise((r) => setTimeout(r, 10));
    writer.enqueue(tr(ids[0], "offline", t0 + 1));
    writer.enqueue(tr(ids[1], "offline", t0 + 1));
    assert.ok(await writer.close(10_000));
    assert.equal(writer.stats.committedTotal, 7);
    assert.equal(writer.stats.statementsTotal, 2);
  });
});
