/**
 * Issue 10, item 2: every network error names the host and the cause (Deno's
 * `fetch failed` keeps it in `error.cause`) in CLI output, log lines and
 * `/health`, and `/health` says when each failing component is tried again.
 * Real refusals: a closed TCP port, and TLS spoken to a plain-HTTP server.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Sql } from "../src/db/client.ts";
import { insertStreamer } from "../src/db/streamers_repo.ts";
import { startSimulator } from "../dev/simulator/simulator.ts";
import { createTestDatabase, freePort, waitFor } from "./helpers/database.ts";
import { runKickmon, spawnKickmon } from "../dev/kickmon_process.ts";

const creds = { KICK_CLIENT_ID: "sim-client-id", KICK_CLIENT_SECRET: "sim-client-secret" };

Deno.test("streamers add: a refused OAuth connection names the host and 'Connection refused'", async () => {
  const port = freePort();
  const r = await runKickmon(["streamers", "add", "somebody"], {
    ...creds,
    KICK_OAUTH_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: "postgres://kickmon@127.0.0.1:1/kickmon",
  });
  assert.equal(r.code, 1, r.stderr);
  const last = r.stderr.trim().split("\n").at(-1)!;
  assert.match(last, new RegExp(`token request to 127\\.0\\.0\\.1:${port} failed`), r.stderr);
  assert.match(last, /Connection refused/, r.stderr);
  assert.doesNotMatch(r.stderr, /TypeError: fetch failed/);
});

Deno.test("streamers test: TLS to a plain-HTTP server says it was a TLS failure, and where", async () => {
  const sim = await startSimulator(); // its API server speaks plain HTTP
  try {
    const host = new URL(sim.api.origin).host;
    const r = await runKickmon(["streamers", "test", "somebody"], {
      ...creds,
      KICK_OAUTH_URL: `https://${host}`,
    });
    assert.equal(r.code, 1, r.stderr);
    const last = r.stderr.trim().split("\n").at(-1)!;
    assert.match(last, new RegExp(`token request to ${host.replace(/\./g, "\\.")} failed: `));
    assert.match(last, /corrupt message|InvalidContentType|tls|certificate/i, last);
  } finally {
    await sim.close();
  }
});

Deno.test("start: Pusher and OAuth outages show host, cause and next retry in logs and /health", async () => {
  const sim = await startSimulator();
  const db = await createTestDatabase();
  const state = await Deno.makeTempDir({ prefix: "kickmon-neterr-" });
  const healthPort = freePort();
  const pusherPort = freePort();
  const oauthPort = freePort();
  const p = spawnKickmon(["start"], {
    ...sim.env(),
    DATABASE_URL: db.url,
    SYSTEM_STATE_DIRECTORY: state,
    HEALTH_CHECK_LISTEN: `127.0.0.1:${healthPort}`,
    KICK_PUSHER_HOST: "127.0.0.1",
    KICK_PUSHER_PORT: String(pusherPort), // nothing listens
    KICK_OAUTH_URL: `http://127.0.0.1:${oauthPort}`, // nothing listens
    MONITORING_RECONNECT_DELAY: "200",
    MONITORING_MAX_RECONNECT_DELAY: "1000",
  });
  try {
    await p.waitForLine(/kickmon started/, 60_000);
    // A streamer, so that a Pusher connection is attempted.
    const sql = (await import("postgres")).default(db.url, { max: 1, onnotice: () => {} });
    await insertStreamer(sql as unknown as Sql, { username: "x", kickUserId: 1, kickChannelId: 2 });
    await sql.end();

    const warn = await p.waitForLine(
      (l) => /cannot connect to ws:\/\/127\.0\.0\.1/.test(l),
      30_000,
    );
    const w = JSON.parse(warn);
    assert.equal(w.level, "WARN", "a monitor that cannot connect hears nothing: not INFO");
    assert.match(w.message, new RegExp(`ws://127\\.0\\.0\\.1:${pusherPort}: `));
    assert.match(w.message, /tcp connect error|Connection refused/);
    assert.match(w.message, /next attempt in [\d.]+ s/);

    const body = await waitFor(async () => {
      const r = await fetch(`http://127.0.0.1:${healthPort}/health`);
      const b = await r.json();
      return r.status === 503 && b.pusher.connections.length === 1 &&
          b.pusher.connections[0].last_error
        ? b
        : null;
    }, { timeoutMs: 30_000, message: "/health with the failing connection" });
    const now = Date.now();
    const c = body.pusher.connections[0];
    assert.match(c.last_error, new RegExp(`^ws://127\\.0\\.0\\.1:${pusherPort}: .*1006`));
    assert.ok(c.next_retry_at === null || Date.parse(c.next_retry_at) > now - 5_000, c);
    assert.equal(body.token.state, "failing");
    assert.match(
      body.token.last_error,
      new RegExp(`^token request to 127\\.0\\.0\\.1:${oauthPort} failed: .*Connection refused`),
    );
    assert.ok(Date.parse(body.token.last_error_at) <= now + 1_000, body.token);
    assert.ok(Date.parse(body.token.next_retry_at) > now - 1_000, JSON.stringify(body.token));
    assert.equal(body.database.up, true);
    assert.equal(body.database.last_error, null);

    const oauthLog = p.logs().find((l) => /token request to 127\.0\.0\.1/.test(String(l.message)));
    assert.ok(oauthLog, "the OAuth failure is logged with its host");
    assert.doesNotMatch(p.lines.join("\n"), /fetch failed/);
  } finally {
    await p.stop();
    await db.drop();
    await sim.close();
    await Deno.remove(state, { recursive: true }).catch(() => {});
  }
});
