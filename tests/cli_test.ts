import assert from "node:assert/strict";
import { createTestDatabase, freePort } from "./helpers/database.ts";
import { runKickmon } from "../dev/kickmon_process.ts";

const good = {
  KICK_CLIENT_ID: "cid",
  KICK_CLIENT_SECRET: "very-secret-value",
  DATABASE_URL: "postgres://kickmon:db-secret-pw@127.0.0.1:5432/kickmon",
};

Deno.test("cli: config validate names a missing variable and exits 2", async () => {
  const r = await runKickmon(["config", "validate"], { DATABASE_URL: good.DATABASE_URL });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /KICK_CLIENT_ID: must not be empty/);
  assert.match(r.stderr, /KICK_CLIENT_SECRET/);
});

Deno.test("cli: config validate names a malformed variable and exits 2", async () => {
  const r = await runKickmon(["config", "validate"], { ...good, KICK_PUSHER_PORT: "http" });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /KICK_PUSHER_PORT: expected a port/);
  assert.ok(!r.stderr.includes("at "), "no stack trace");
});

Deno.test("cli: config validate accepts a good config; show redacts secrets", async () => {
  const ok = await runKickmon(["config", "validate"], good);
  assert.equal(ok.code, 0, ok.stderr);
  const shown = await runKickmon(["config", "show"], good);
  assert.equal(shown.code, 0);
  assert.match(shown.stdout, /KICK_CLIENT_SECRET=\[REDACTED\]/);
  assert.ok(!shown.stdout.includes("very-secret-value"));
  assert.ok(!shown.stdout.includes("db-secret-pw"));
});

Deno.test("cli: db health against a closed port exits 1 with one line", async () => {
  const port = freePort();
  const r = await runKickmon(["db", "health"], {
    DATABASE_URL: `postgres://kickmon:db-secret-pw@127.0.0.1:${port}/kickmon`,
    DATABASE_CONNECT_TIMEOUT: "2",
  });
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^kickmon: database unreachable/);
  assert.ok(!r.stderr.includes("db-secret-pw"));
});

Deno.test("cli: unknown command is a usage error (exit 2); --help documents exit codes", async () => {
  const r = await runKickmon(["frobnicate"], {});
  assert.equal(r.code, 2);
  const h = await runKickmon(["--help"], {});
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Exit codes:/);
});

Deno.test("cli: db migrate, db health and streamers list against a real database", async () => {
  const db = await createTestDatabase();
  try {
    const env = { DATABASE_URL: db.url };
    const m1 = await runKickmon(["db", "migrate"], env);
    assert.equal(m1.code, 0, m1.stderr);
    assert.match(
      m1.stdout,
      /applied: schema, tables, 001_state, 002_webhook_messages, 003_channel_id_source, 004_livestream_guard, 005_generic_plan, list_trigger/,
    );
    const m2 = await runKickmon(["db", "migrate"], env);
    assert.match(m2.stdout, /up to date/);
    const h = await runKickmon(["db", "health"], env);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /^database ok/m);
    assert.match(h.stdout, /list changes: LISTEN/);
    const l = await runKickmon(["streamers", "list", "--json"], env);
    assert.equal(l.code, 0, l.stderr);
    assert.deepEqual(JSON.parse(l.stdout), []);
  } finally {
    await db.drop();
  }
});
