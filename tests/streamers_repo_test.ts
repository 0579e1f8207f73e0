import assert from "node:assert/strict";
import postgres from "postgres";
import { createTestDatabase } from "./helpers/database.ts";
import type { Sql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import {
  insertStreamer,
  listFingerprint,
  listStreamers,
  parseKickUserId,
  syncStreamerState,
  writeIdentity,
} from "../src/db/streamers_repo.ts";

async function withDb(fn: (sql: Sql) => Promise<void>) {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 2, onnotice: () => {} }) as unknown as Sql;
  try {
    await migrate(sql, { appSchema: "public" });
    await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
    await db.drop();
  }
}

Deno.test("parseKickUserId: digits are an id, blank is unknown, anything else is invalid", () => {
  assert.equal(parseKickUserId(" 2570626 "), 2570626);
  assert.equal(parseKickUserId(null), null);
  assert.equal(parseKickUserId("  "), null);
  for (const bad of ["abc", "12a", "-5", "1.5", "1234567890123456"]) {
    assert.equal(parseKickUserId(bad), "invalid", bad);
  }
});

Deno.test("listFingerprint moves with every followed column and not with status writes", async () => {
  await withDb(async (sql) => {
    const seen = new Set<string>();
    const step = async (what: string, change: () => Promise<unknown>, moves = true) => {
      const before = await listFingerprint(sql);
      await change();
      const after = await listFingerprint(sql);
      assert.equal(after !== before, moves, what);
      if (moves) {
        assert.ok(!seen.has(after), `${what}: a new fingerprint`);
        seen.add(after);
      }
    };
    seen.add(await listFingerprint(sql));
    const id = await insertStreamer(sql, { username: "a", kickUserId: 1 });
    await step("insert", () => insertStreamer(sql, { username: "b", kickUserId: 2 }));
    await step("username", () => sql`UPDATE streamers SET username = 'c' WHERE id = ${id}`);
    await step("kick_user_id", () => sql`UPDATE streamers SET kick_user_id = '3' WHERE id = ${id}`);
    await step("is_active", () => sql`UPDATE streamers SET is_active = false WHERE id = ${id}`);
    await step(
      "status and timestamps (kickmon's own writes)",
      () =>
        sql`UPDATE streamers SET status = 'online', updated_at = now(), last_seen_online = now()`,
      false,
    );
    await step("delete", () => sql`DELETE FROM streamers WHERE id = ${id}`);
  });
});

Deno.test("learned ids follow the row: a changed kick_user_id drops them, a deleted row's state goes", async () => {
  await withDb(async (sql) => {
    const id = await insertStreamer(sql, { username: "xqc", kickUserId: 676, kickChannelId: 668 });
    const [r1] = await listStreamers(sql, [id]);
    assert.equal(r1.kickChannelId, 668);
    // A stale write (learned for what the row said before) is refused.
    await sql`UPDATE streamers SET kick_user_id = '999', username = 'other' WHERE id = ${id}`;
    const [r2] = await listStreamers(sql, [id]);
    assert.equal(r2.kickChannelId, null, "learned for the old identity: ignored at once");
    assert.equal(r2.kickUserId, 999);
    assert.equal(
      await writeIdentity(sql, { streamerId: id, kickChannelId: 1, listed: r1.listed }),
      false,
    );
    assert.ok((await syncStreamerState(sql)) >= 1);
    const [k] = await sql`SELECT kick_channel_id, source_kick_user_id FROM kickmon.streamer_state
                          WHERE streamer_id = ${id}`;
    assert.deepEqual({ ...k }, { kick_channel_id: null, source_kick_user_id: "999" });
    assert.equal(
      await writeIdentity(sql, { streamerId: id, kickChannelId: 1000, listed: r2.listed }),
      true,
    );
    assert.equal((await listStreamers(sql, [id]))[0].kickChannelId, 1000);
    // Invalid ids are skipped and say why.
    const bad = await insertStreamer(sql, { username: "weird", kickUserId: "n/a" });
    const [rb] = await listStreamers(sql, [bad]);
    assert.equal(rb.isActive, false);
    await syncStreamerState(sql);
    const [e] =
      await sql`SELECT resolve_error FROM kickmon.streamer_state WHERE streamer_id = ${bad}`;
    assert.match(e.resolve_error, /'n\/a' is not a Kick user id/);
    assert.equal(await syncStreamerState(sql), 0, "nothing left to change");
    await sql`DELETE FROM streamers WHERE id = ${bad}`;
    await syncStreamerState(sql);
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM kickmon.streamer_state
                              WHERE streamer_id = ${bad}`;
    assert.equal(n, 0);
  });
});
