import assert from "node:assert/strict";
import type { Sql } from "../db/client.ts";
import { DatabaseState } from "./database_state.ts";

/** A stand-in for postgres.js: every query answers with `answer()`. */
function fakeSql(answer: () => Promise<unknown>): Sql {
  return ((..._args: unknown[]) => answer()) as unknown as Sql;
}

const SERVER = { host: "db.example", port: 5432 };

Deno.test("database state: a failure names the server, keeps the first error, probes until stopped", () => {
  const db = new DatabaseState(fakeSql(() => new Promise(() => {})), SERVER);
  try {
    assert.equal(db.up, true);
    db.report(false, new Error("connection refused"));
    db.report(false, new Error("still refused"));
    const s = db.snapshot();
    assert.equal(s.up, false);
    assert.equal(s.error, "database db.example:5432: connection refused");
    assert.equal(s.lastError, "database db.example:5432: still refused");
    assert.ok(s.nextRetryAt !== null && s.nextRetryAt > Date.now());
    db.report(true);
    assert.equal(db.snapshot().error, undefined);
    assert.equal(db.describe(new Error("db.example said no")), "db.example said no");
  } finally {
    db.stop();
  }
});

Deno.test("database state: check is true when the ping answers, false when late or failing", async () => {
  const ok = new DatabaseState(fakeSql(() => Promise.resolve([{ v: "15" }])), SERVER);
  assert.equal(await ok.check(500), true);
  ok.stop();
  const late = new DatabaseState(fakeSql(() => new Promise(() => {})), SERVER);
  assert.equal(await late.check(20), false);
  assert.match(late.snapshot().error ?? "", /did not answer within 20 ms/);
  late.stop();
  const failing = new DatabaseState(
    fakeSql(() => Promise.reject(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))),
    SERVER,
  );
  assert.equal(await failing.check(500), false);
  assert.equal(failing.up, false);
  failing.stop();
  await assert.rejects(failing.waitUntilReachable(), /stopped while waiting/);
});
