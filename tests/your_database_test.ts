/**
 * Issue 9: kickmon on the user's own database. The `streamers` list belongs
 * to another system (the specification's schema, its own columns and rows,
 * its own owner role); kickmon gets a login and changes nothing of the other
 * system's table definitions. Three starting points: an empty database, the
 * other system's tables with the list trigger opted in, and a least-privilege
 * login that must poll the list. Plus `db health`, `db migrate --print` and
 * the upgrade of a 0.1.0 database.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { createTestDatabase, waitFor } from "./helpers/database.ts";
import { type Rig, startRig } from "./helpers/harness.ts";
import { runKickmon } from "../dev/kickmon_process.ts";
import { createUserDatabase, ORIGINAL_SCHEMA } from "./helpers/user_database.ts";

/** Time from `fn`'s return to `cond` holding, ms; throws after `timeoutMs`. */
async function followedWithin(
  what: string,
  cond: () => Promise<boolean> | boolean,
  timeoutMs = 2000,
): Promise<number> {
  const t0 = performance.now();
  await waitFor(cond, { timeoutMs, intervalMs: 20, message: what });
  return performance.now() - t0;
}

const subscribed = (rig: Rig, channelId: number) => () =>
  rig.sim.pusher.subscriberCount(`channel.${channelId}`) === 1;
const unsubscribed = (rig: Rig, channelId: number) => () =>
  rig.sim.pusher.subscriberCount(`channel.${channelId}`) === 0;

Deno.test("your database, least privilege: tables owned by another role, kickmon polls the list", async () => {
  const u = await createUserDatabase({ grants: "least", fillerRows: 10_000 });
  let rig: Rig | undefined;
  try {
    const before = await u.definitions();
    const fillerBefore = await u.rowsDigest("username LIKE 'filler_%'");

    rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "3600" }, {}, {
      databaseUrl: u.kickmonUrl,
    });
    assert.ok(
      rig.kickmon.lines.some((l) =>
        /following the streamer list by \W*polling every 1000 ms/.test(l)
      ),
      "no trigger: the list is polled",
    );
    // Live on Kick: the new row is reconciled online, /livestreams gives its channel id,
    // and Pusher follows it from then on.
    const alpha = rig.sim.world.add({ userId: 6001, slug: "alpha", channelId: 7001, live: true });
    const [{ id: ida }] = await u.owner`
      INSERT INTO streamers (kick_user_id, username, display_name)
      VALUES (${String(alpha.userId)}, ${alpha.slug}, 'Alpha') RETURNING id`;
    const insertMs = await followedWithin(
      "an inserted row is followed (reconciled online) within 2 s",
      async () => (await rig!.status(ida)) === "online",
    );
    await followedWithin("alpha's channel learned and subscribed", subscribed(rig, 7001), 5000);
    rig.sim.world.add({ userId: 6002, slug: "bravo", channelId: 7002, live: true });
    const [{ id: idb }] = await u.owner`
      INSERT INTO streamers (kick_user_id, username) VALUES ('6002', 'bravo') RETURNING id`;
    await followedWithin("bravo online", async () => (await rig!.status(idb)) === "online");
    await followedWithin("bravo's channel subscribed", subscribed(rig, 7002), 5000);

    // A real Pusher transition lands in the specification's columns.
    rig.sim.world.setLive(alpha.userId, false);
    await rig.waitStatus(ida, "offline", 3000);
    const [row] = await u.owner`
      SELECT status, last_status_update, last_seen_online, updated_at, team FROM streamers
      WHERE id = ${ida}`;
    assert.equal(row.status, "offline");
    assert.ok(row.last_status_update && row.last_seen_online && row.updated_at);
    assert.equal(row.team, "red", "the other system's column is untouched");
    const history = await u.owner<
      { event_type: string; timestamp: Date; created_at: Date; details: Record<string, unknown> }[]
    >`SELECT event_type, "timestamp", created_at, details FROM status_events
      WHERE streamer_id = ${ida} ORDER BY id`;
    assert.deepEqual(history.map((h) => `${h.event_type}/${h.details.source}`), [
      "online/reconcile",
      "offline/pusher",
    ]);
    assert.equal(history[1].details.previous_status, "online");
    assert.equal(history[1].details.event, "App\\Events\\StopStreamBroadcast");
    assert.equal(typeof history[1].details.observed_at, "string");
    assert.ok(history[1].created_at instanceof Date);

    // is_active off: unsubscribed within 2 s.
    await u.owner`UPDATE streamers SET is_active = false WHERE id = ${ida}`;
    const inactiveMs = await followedWithin("is_active=false followed", unsubscribed(rig, 7001));
    // The other system deletes a row (history first: its foreign key has no cascade).
    await u.owner.begin(async (tx) => {
      await tx`DELETE FROM status_events WHERE streamer_id = ${idb}`;
      await tx`DELETE FROM streamers WHERE id = ${idb}`;
    });
    const deleteMs = await followedWithin("a deleted row is dropped", unsubscribed(rig, 7002));
    const [{ n: orphans }] = await rig.sql`
      SELECT count(*)::int AS n FROM kickmon.streamer_state WHERE streamer_id = ${idb}`;
    assert.equal(orphans, 0, "kickmon's state for the deleted row is gone");

    // kick_user_id changed by the other system: the row now names another streamer.
    rig.sim.world.add({ userId: 6003, slug: "charlie", channelId: 7003 });
    rig.sim.world.add({ userId: 6004, slug: "delta", channelId: 7004, live: true });
    const [{ id: idc }] = await u.owner`
      INSERT INTO streamers (kick_user_id, username) VALUES ('6003', 'charlie') RETURNING id`;
    await followedWithin("charlie reconciled", async () => (await rig!.status(idc)) === "offline");
    await u.owner`UPDATE streamers SET kick_user_id = '6004', username = 'delta' WHERE id = ${idc}`;
    const changeMs = await followedWithin(
      "a changed kick_user_id is re-resolved",
      async () => (await rig!.status(idc)) === "online",
    );
    await followedWithin("the new streamer's channel", subscribed(rig, 7004), 5000);

    // A kick_user_id that is not a Kick user id: reported and skipped, never a crash.
    await u.owner`INSERT INTO streamers (kick_user_id, username) VALUES ('not-a-number', 'weird')`;
    const list = await runKickmon(["streamers", "list"], { DATABASE_URL: u.kickmonUrl });
    await waitFor(async () => {
      const l = await runKickmon(["streamers", "list", "--json"], { DATABASE_URL: u.kickmonUrl });
      const rows = JSON.parse(l.stdout) as Array<{ username: string; resolveError: string | null }>;
      return rows.find((r) => r.username === "weird")?.resolveError?.includes(
        "is not a Kick user id",
      ) === true;
    }, { timeoutMs: 5000, message: "the invalid id is reported" });
    assert.equal(list.code, 0, list.stderr);
    await u.owner`UPDATE streamers SET display_name = 'still running' WHERE username = 'weird'`;
    assert.equal(await rig.status(idc), "online");

    assert.equal(await rig.kickmon.stop(), 0);
    assert.equal(await u.definitions(), before, "table definitions byte-for-byte unchanged");
    assert.equal(
      await u.rowsDigest("username LIKE 'filler_%'"),
      fillerBefore,
      "filler rows untouched",
    );
    console.log(
      `10,000 rows, polled: insert→online ${insertMs.toFixed(0)} ms, is_active ${
        inactiveMs.toFixed(0)
      } ms, delete ${deleteMs.toFixed(0)} ms, kick_user_id change ${changeMs.toFixed(0)} ms`,
    );
  } finally {
    await rig?.close();
    await u.drop();
  }
});

Deno.test("your database, opted-in trigger: existing tables kickmon's role owns, LISTEN instead of polling", async () => {
  const u = await createUserDatabase({ grants: "owner" });
  let rig: Rig | undefined;
  try {
    const env = { DATABASE_URL: u.kickmonUrl };
    const beforeColumns = JSON.parse(await u.definitions()).columns;
    const m = await runKickmon(["db", "migrate"], env);
    assert.equal(m.code, 0, m.stderr);
    assert.match(
      m.stdout,
      /applied: schema, 001_state, 002_webhook_messages, 003_channel_id_source, 004_livestream_guard, 005_generic_plan$/m,
    );
    assert.doesNotMatch(m.stdout, /list_trigger|tables/, "no trigger unless asked for");
    const untouched = await u.definitions();
    assert.deepEqual(JSON.parse(untouched).columns, beforeColumns);
    const t = await runKickmon(["db", "migrate", "--install-trigger"], env);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /applied: list_trigger/);
    const after = JSON.parse(await u.definitions());
    assert.deepEqual(after.columns, beforeColumns, "columns unchanged by the trigger");
    assert.deepEqual(
      after.catalog.filter((c: { kind: string }) =>
        c.kind === "trigger" && !/RI_Constraint/.test(
          (c as unknown as { def: string }).def,
        )
      ).map((c: { name: string }) => c.name).sort(),
      ["kickmon_streamers_notify", "kickmon_streamers_notify_update"],
    );
    const health = await runKickmon(["db", "health"], env);
    assert.equal(health.code, 0, health.stdout + health.stderr);
    assert.match(health.stdout, /list changes: LISTEN/);

    rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "3600" }, {}, {
      databaseUrl: u.kickmonUrl,
    });
    assert.ok(rig.kickmon.lines.some((l) => /following the streamer list by \W*LISTEN/.test(l)));
    // The other system inserts: followed through NOTIFY.
    rig.sim.world.add({ userId: 8101, slug: "echo", channelId: 9101, live: true });
    const [{ id }] = await u.owner`
      INSERT INTO streamers (kick_user_id, username) VALUES ('8101', 'echo') RETURNING id`;
    const ms = await followedWithin("online", async () => (await rig!.status(id)) === "online");
    await followedWithin("subscribed", subscribed(rig, 9101), 5000);
    await u.owner`UPDATE streamers SET is_active = false WHERE id = ${id}`;
    await followedWithin("unsubscribed", unsubscribed(rig, 9101));
    console.log(`trigger mode: insert→online ${ms.toFixed(0)} ms`);
  } finally {
    await rig?.close();
    await u.drop();
  }
});

Deno.test("your database, empty: db migrate creates the specification's tables and kickmon's schema", async () => {
  const db = await createTestDatabase();
  const ref = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const refSql = postgres(ref.url, { max: 1, onnotice: () => {} });
  try {
    await refSql.unsafe(ORIGINAL_SCHEMA);
    const m = await runKickmon(["db", "migrate"], { DATABASE_URL: db.url });
    assert.equal(m.code, 0, m.stderr);
    assert.match(
      m.stdout,
      /applied: schema, tables, 001_state, 002_webhook_messages, 003_channel_id_source, 004_livestream_guard, 005_generic_plan, list_trigger/,
    );
    const cols = (s: postgres.Sql) =>
      s`SELECT table_name, column_name, ordinal_position, column_default, is_nullable,
               data_type, character_maximum_length
        FROM information_schema.columns WHERE table_schema = 'public'
        ORDER BY table_name, ordinal_position`;
    assert.deepEqual(await cols(sql), await cols(refSql), "columns exactly as specified");
    const [k] = await sql`SELECT to_regclass('kickmon.streamer_state') IS NOT NULL AS ok`;
    assert.equal(k.ok, true);
    const again = await runKickmon(["db", "migrate"], { DATABASE_URL: db.url });
    assert.match(again.stdout, /schema is up to date/);
  } finally {
    await sql.end({ timeout: 1 });
    await refSql.end({ timeout: 1 });
    await db.drop();
    await ref.drop();
  }
});

Deno.test("db health names every missing privilege with its GRANT; applying them makes it pass", async () => {
  const u = await createUserDatabase({ grants: "none" });
  try {
    const env = { DATABASE_URL: u.kickmonUrl };
    const h = await runKickmon(["db", "health", "--json"], env);
    assert.equal(h.code, 2, h.stdout + h.stderr);
    const report = JSON.parse(h.stdout) as {
      ok: boolean;
      problems: Array<{ message: string; fix: string }>;
    };
    assert.equal(report.ok, false);
    const fixes = report.problems.map((p) => p.fix);
    const role = u.kickmonRole;
    for (
      const expected of [
        `GRANT SELECT ON public.streamers TO ${role};`,
        `GRANT UPDATE (status, last_seen_online, last_status_update, updated_at) ON public.streamers TO ${role};`,
        `GRANT SELECT, INSERT ON public.status_events TO ${role};`,
        `GRANT USAGE ON SEQUENCE public.status_events_id_seq TO ${role};`,
      ]
    ) assert.ok(fixes.includes(expected), `${expected} in ${JSON.stringify(fixes)}`);
    assert.ok(fixes.some((f) => f.startsWith(`CREATE SCHEMA kickmon AUTHORIZATION ${role};`)));
    // A failed start says the same and exits 2.
    const start = await runKickmon(["start"], {
      ...env,
      KICK_CLIENT_ID: "x",
      KICK_CLIENT_SECRET: "y",
      HEALTH_CHECK_ENABLED: "false",
      SYSTEM_STATE_DIRECTORY: await Deno.makeTempDir(),
      KICK_OAUTH_URL: "http://127.0.0.1:1",
      KICK_PUSHER_HOST: "127.0.0.1",
      KICK_PUSHER_PORT: "1",
      KICK_PUSHER_TLS: "false",
    });
    assert.equal(start.code, 2, start.stdout + start.stderr);
    assert.match(start.stdout + start.stderr, /GRANT SELECT ON public.streamers/);
    // The DBA runs the printed statements; the plain-text report then says ok.
    for (const f of report.problems.map((p) => p.fix.split(" (or ")[0])) {
      await u.admin.unsafe(f.replace(/;.*$/, ""));
    }
    const ok = await runKickmon(["db", "health"], env);
    assert.equal(ok.code, 2, "schema out of date until migrated");
    assert.match(ok.stdout, /schema out of date/);
    const m = await runKickmon(["db", "migrate"], env);
    assert.equal(m.code, 0, m.stderr);
    const good = await runKickmon(["db", "health"], env);
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /^database ok/m);
    assert.match(good.stdout, /list changes: polled every 1000 ms/);
    // Unreachable is not a privilege problem: exit 1.
    const down = await runKickmon(["db", "health"], {
      DATABASE_URL: "postgres://kickmon@127.0.0.1:1/none",
      DATABASE_CONNECT_TIMEOUT: "2",
    });
    assert.equal(down.code, 1, down.stdout + down.stderr);
  } finally {
    await u.drop();
  }
});

Deno.test("db migrate --print: a DBA applies the SQL; kickmon's role then needs no CREATE at all", async () => {
  const u = await createUserDatabase({ grants: "least" });
  try {
    await u.admin.unsafe(`REVOKE CREATE ON DATABASE "${u.database}" FROM ${u.kickmonRole}`);
    const env = { DATABASE_URL: u.kickmonUrl };
    const refused = await runKickmon(["db", "migrate"], env);
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /CREATE SCHEMA kickmon AUTHORIZATION/);
    const p = await runKickmon(["db", "migrate", "--print"], env);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /CREATE SCHEMA IF NOT EXISTS kickmon AUTHORIZATION/);
    assert.match(p.stdout, /CREATE OR REPLACE FUNCTION kickmon\.commit_transitions/);
    assert.doesNotMatch(p.stdout, /CREATE TABLE streamers/);
    await u.admin.unsafe(p.stdout); // as a superuser, like a DBA with psql
    const h = await runKickmon(["db", "health"], env);
    assert.equal(h.code, 0, h.stdout + h.stderr);
    const m = await runKickmon(["db", "migrate"], env);
    assert.match(m.stdout, /schema is up to date/);
  } finally {
    await u.drop();
  }
});

Deno.test("DATABASE_SCHEMA: the other system's tables in their own schema", async () => {
  const u = await createUserDatabase({ grants: "least", schema: "crm" });
  let rig: Rig | undefined;
  try {
    const before = await u.definitions();
    rig = await startRig({ DATABASE_SCHEMA: "crm", MONITORING_RECONCILE_INTERVAL: "3600" }, {}, {
      databaseUrl: u.kickmonUrl,
    });
    rig.sim.world.add({ userId: 8201, slug: "foxtrot", channelId: 9201, live: true });
    const [{ id }] = await u.owner`
      INSERT INTO streamers (kick_user_id, username) VALUES ('8201', 'foxtrot') RETURNING id`;
    await followedWithin("online", async () => {
      const [r] = await u.owner`SELECT status FROM streamers WHERE id = ${id}`;
      return r.status === "online";
    }, 5000);
    const [{ n }] = await u.owner`SELECT count(*)::int AS n FROM status_events`;
    assert.equal(n, 1);
    assert.equal(await rig.kickmon.stop(), 0);
    assert.equal(await u.definitions(), before);
  } finally {
    await rig?.close();
    await u.drop();
  }
});

Deno.test("upgrade: a 0.1.0 database keeps its history and moves kickmon's columns out", async () => {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  let rig: Rig | undefined;
  try {
    await sql.unsafe(
      Deno.readTextFileSync(new URL("./fixtures/schema-0.1.0.sql", import.meta.url)),
    );
    await sql`CREATE TABLE schema_migrations (version TEXT PRIMARY KEY,
              applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`;
    await sql`INSERT INTO schema_migrations (version) VALUES ('001_initial_schema')`;
    const [a] = await sql`
      INSERT INTO streamers (username, kick_user_id, kick_channel_id, status, status_observed_at)
      VALUES ('oldtimer', 3001, 4001, 'online', now()) RETURNING id`;
    await sql`INSERT INTO streamers (username, resolve_error) VALUES ('ghost', 'no such channel')`;
    for (
      const [type, prev, ls] of [["online", "unknown", 11], ["offline", "online", 11], [
        "online",
        "offline",
        12,
      ]]
    ) {
      await sql`
        INSERT INTO status_events
          (streamer_id, event_type, previous_status, "timestamp", observed_at, details)
        VALUES (${a.id}, ${type}, ${prev}, now(), now(),
                ${sql.json({ source: "pusher", previous_status: prev, livestream_id: ls })})`;
    }
    const m = await runKickmon(["db", "migrate"], { DATABASE_URL: db.url });
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stdout, /upgrade_from_0\.1\.0/);
    const history = await sql`SELECT event_type, details FROM status_events ORDER BY id`;
    assert.equal(history.length, 3, "history kept");
    assert.deepEqual(history.map((h) => h.details.previous_status), [
      "unknown",
      "online",
      "offline",
    ]);
    assert.ok(history.every((h) => typeof h.details.observed_at === "string"));
    const [state] = await sql`
      SELECT kick_channel_id::int AS ch, last_livestream_id::int AS ls, last_livestream_status
      FROM kickmon.streamer_state WHERE streamer_id = ${a.id}`;
    assert.deepEqual({ ...state }, { ch: 4001, ls: 12, last_livestream_status: "online" });
    const cols = (await sql`
      SELECT column_name FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = 'streamers'`).map((r) => r.column_name);
    for (const gone of ["kick_channel_id", "status_observed_at", "resolve_error"]) {
      assert.ok(!cols.includes(gone), `${gone} moved out of streamers`);
    }
    const [legacy] = await sql`SELECT to_regclass('public.schema_migrations') AS t`;
    assert.equal(legacy.t, null);
    const again = await runKickmon(["db", "migrate"], { DATABASE_URL: db.url });
    assert.match(again.stdout, /schema is up to date/);

    // And it runs: the stream ends on Kick; the first frame of a new stream is inferred from history.
    rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "3600" }, {}, { databaseUrl: db.url });
    assert.ok(rig.kickmon.lines.some((l) => /following the streamer list by \W*LISTEN/.test(l)));
    await waitFor(subscribed(rig, 4001), { timeoutMs: 5000, message: "channel id carried over" });
    rig.sim.world.add({ userId: 3001, slug: "oldtimer", channelId: 4001 });
    rig.sim.world.setLive(3001, true); // livestream id > 12: a newer stream than the last in history
    await waitFor(async () => (await rig!.events(a.id)).length === 5, { timeoutMs: 5000 });
    const ev = await rig.events(a.id);
    assert.equal(ev[3].event_type, "offline");
    assert.equal(ev[3].details.inferred, true);
  } finally {
    await rig?.close();
    await sql.end({ timeout: 1 });
    await db.drop();
  }
});
