import assert from "node:assert/strict";
import postgres from "postgres";
import { createTestDatabase, waitFor } from "./helpers/database.ts";
import { createUserDatabase } from "./helpers/user_database.ts";
import { type DatabaseConfig, loadConfig } from "../src/config/config.ts";
import {
  applicationName,
  LEADER_LOCK_NAMESPACE,
  LeaderLock,
  leaderLockKey,
  parseApplicationName,
} from "../src/db/leader_lock.ts";

function dbConfig(url: string, schema = "public"): DatabaseConfig {
  return loadConfig({ DATABASE_URL: url, DATABASE_SCHEMA: schema }, {
    requireKickCredentials: false,
  }).database;
}

Deno.test("leaderLockKey: fixed namespace, a 31-bit hash of the schema", () => {
  const [ns, k] = leaderLockKey("public");
  assert.equal(ns, LEADER_LOCK_NAMESPACE);
  assert.equal(ns, 0x6b6d6c64);
  assert.deepEqual(leaderLockKey("public"), [ns, k], "deterministic");
  assert.notEqual(leaderLockKey("Public")[1], k, "case-sensitive, as the schema is");
  for (const s of ["public", "app", "ünïcode", ""]) {
    const [, h] = leaderLockKey(s);
    assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 31, `${s}: ${h}`);
  }
});

Deno.test("application_name: identity round-trips, cut to 63 bytes, ASCII only", () => {
  const id = { host: "kick-01.example", pid: 4242, since: 1_764_650_000_999 };
  assert.equal(applicationName(id), "kickmon-leader:1764650000:4242:kick-01.example");
  assert.deepEqual(parseApplicationName(applicationName(id)), { ...id, since: 1_764_650_000_000 });
  const candidate = { host: "h", pid: 7, since: null };
  assert.equal(applicationName(candidate), "kickmon-elector:7:h");
  assert.deepEqual(parseApplicationName("kickmon-elector:7:h"), candidate);
  const long = applicationName({ host: "x".repeat(100), pid: 1, since: 0 });
  assert.equal(long.length, 63);
  assert.equal(parseApplicationName(long)?.host, "x".repeat(63 - "kickmon-leader:0:1:".length));
  assert.equal(applicationName({ host: "hôst", pid: 1, since: null }), "kickmon-elector:1:h?st");
  assert.equal(parseApplicationName("kickmon"), null);
  assert.equal(parseApplicationName(""), null);
  assert.equal(parseApplicationName(null), null);
});

Deno.test("leader lock: one session takes it, the other is refused and sees who holds it", async (t) => {
  const db = await createTestDatabase();
  const config = dbConfig(db.url);
  const a = new LeaderLock(config, { identity: { host: "host-a", pid: 101 } });
  const b = new LeaderLock(config, { identity: { host: "host-b", pid: 202 } });
  try {
    await t.step("nobody holds it at first", async () => {
      assert.equal(await a.holder(), null);
      assert.equal(await a.verify(), false);
    });
    const since = 1_764_650_000_000;
    await t.step("a takes it; taking it again is idempotent", async () => {
      assert.equal(await a.tryAcquire(since), true);
      assert.equal(await a.verify(), true);
      assert.equal(await a.tryAcquire(since), true);
    });
    await t.step("b is refused and reads a's identity", async () => {
      assert.equal(await b.tryAcquire(Date.now()), false);
      assert.equal(await b.verify(), false);
      const h = await b.holder();
      assert.ok(h);
      assert.equal(h.backendPid, (await a.sessionInfo()).backendPid);
      assert.deepEqual(h.identity, { host: "host-a", pid: 101, since });
    });
    await t.step("the key lives apart from the migration lock's key space", async () => {
      const admin = postgres(db.url, { max: 1, onnotice: () => {} });
      try {
        const [r] = await admin`SELECT pg_try_advisory_lock(${0x6b69636b}::int8) AS got`;
        assert.equal(r.got, true);
      } finally {
        await admin.end({ timeout: 1 });
      }
    });
    await t.step("release hands it over and puts the candidate name back", async () => {
      await a.release();
      assert.equal(await a.verify(), false);
      assert.equal((await a.sessionInfo()).applicationName, "kickmon-elector:101:host-a");
      assert.equal(await b.tryAcquire(since + 5000), true);
      assert.equal((await a.holder())?.identity?.host, "host-b");
    });
    await t.step("close frees it with the session", async () => {
      await b.close();
      await waitFor(async () => (await a.holder()) === null, { message: "lock freed" });
      assert.equal(await a.tryAcquire(since), true);
    });
  } finally {
    await a.close();
    await b.close();
    await db.drop();
  }
});

Deno.test("leader lock: another schema is another lock", async () => {
  const db = await createTestDatabase();
  const a = new LeaderLock(dbConfig(db.url, "public"), { identity: { host: "a", pid: 1 } });
  const b = new LeaderLock(dbConfig(db.url, "tenant2"), { identity: { host: "b", pid: 2 } });
  try {
    assert.equal(await a.tryAcquire(Date.now()), true);
    assert.equal(await b.tryAcquire(Date.now()), true);
  } finally {
    await a.close();
    await b.close();
    await db.drop();
  }
});

Deno.test("leader lock: least-privilege roles see each other's identity (no table, no grant)", async () => {
  const u = await createUserDatabase({ grants: "least" });
  const other = `${u.kickmonRole}_b`;
  await u.admin.unsafe(`CREATE ROLE ${other} LOGIN`);
  await u.admin.unsafe(`GRANT CONNECT ON DATABASE "${u.database}" TO ${other}`);
  const otherUrl = new URL(u.kickmonUrl);
  otherUrl.username = other;
  const a = new LeaderLock(dbConfig(u.kickmonUrl), { identity: { host: "least-a", pid: 11 } });
  const b = new LeaderLock(dbConfig(otherUrl.toString()), {
    identity: { host: "least-b", pid: 22 },
  });
  try {
    const since = 1_764_000_000_000;
    assert.equal(await a.tryAcquire(since), true);
    assert.equal(await b.tryAcquire(Date.now()), false);
    // b is another role without pg_read_all_stats: pid and application_name are still visible.
    assert.deepEqual((await b.holder())?.identity, { host: "least-a", pid: 11, since });
  } finally {
    await a.close();
    await b.close();
    await u.admin.unsafe(`DROP OWNED BY ${other}`).catch(() => {});
    await u.drop();
    const cleanup = postgres(u.adminUrl.replace(/\/[^/?]+(\?|$)/, "/postgres$1"), {
      max: 1,
      onnotice: () => {},
    });
    await cleanup.unsafe(`DROP ROLE IF EXISTS ${other}`).finally(() => cleanup.end({ timeout: 1 }));
  }
});

Deno.test("leader lock: a terminated backend closes the session; the new one holds nothing", async () => {
  const db = await createTestDatabase();
  let closes = 0;
  const lock = new LeaderLock(dbConfig(db.url), {
    identity: { host: "h", pid: 1 },
    deadPeerSec: 6,
    onClose: () => closes++,
  });
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    assert.equal(await lock.tryAcquire(Date.now()), true);
    const before = await lock.sessionInfo();
    assert.deepEqual(before.keepalives, { idleSec: 4, intervalSec: 1, count: 2 });
    await admin`SELECT pg_terminate_backend(${before.backendPid})`;
    await waitFor(() => closes > 0, { message: "onClose after the backend was terminated" });
    // postgres.js reconnects on the next statement: a new session, no lock.
    assert.equal(await lock.verify(), false);
    const after = await lock.sessionInfo();
    assert.notEqual(after.backendPid, before.backendPid);
    assert.equal(after.applicationName, "kickmon-elector:1:h");
    assert.equal(await lock.holder(), null);
  } finally {
    await lock.close();
    await admin.end({ timeout: 1 });
    await db.drop();
  }
});

Deno.test("leader lock: an unreachable server is a connection DatabaseError", async () => {
  const db = await createTestDatabase();
  const url = new URL(db.url);
  await db.drop();
  url.port = "1"; // nothing listens there
  const lock = new LeaderLock(dbConfig(url.toString()), {
    identity: { host: "h", pid: 1 },
    queryTimeoutMs: 3000,
  });
  try {
    const e = await lock.tryAcquire(Date.now()).then(() => null, (e) => e);
    assert.ok(e, "tryAcquire must fail");
    assert.equal(e.name, "DatabaseError");
    assert.equal(e.connection, true, e.message);
  } finally {
    await lock.close();
  }
});
