/**
 * `kickmon doctor` (src/cli/doctor.ts) as a real CLI process against the Kick
 * simulator and a real PostgreSQL: every check passes on a healthy setup, and
 * each way of breaking it fails (or warns on) the right line with the right
 * remedy. The client secret never appears in the output.
 *
 * @module
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { insertStreamer } from "../src/db/streamers_repo.ts";
import type { Sql } from "../src/db/client.ts";
import { startSimulator } from "../dev/simulator/simulator.ts";
import { createTestDatabase, freePort } from "./helpers/database.ts";
import { runKickmon, spawnKickmon } from "../dev/kickmon_process.ts";
import { createUserDatabase } from "./helpers/user_database.ts";

interface Check {
  name: string;
  status: "ok" | "warn" | "fail";
  detail: string;
  remedy?: string;
  ms: number;
}

async function doctor(env: Record<string, string>, args: string[] = []) {
  const r = await runKickmon(["doctor", ...args], env);
  return { ...r, out: r.stdout + r.stderr };
}

async function doctorJson(env: Record<string, string>, args: string[] = []) {
  const r = await doctor(env, ["--json", ...args]);
  const report = JSON.parse(r.stdout) as { ok: boolean; checks: Check[] };
  const line = (name: string) => {
    const c = report.checks.find((x) => x.name === name);
    assert.ok(c, `no "${name}" line in ${r.stdout}`);
    return c;
  };
  return { ...r, report, line };
}

const NAMES = [
  "configuration",
  "database reachable",
  "database schema",
  "database privileges",
  "oauth token",
  "api /channels",
  "api /livestreams v1",
  "api /users/livestreams",
  "webhook public key",
  "unofficial lookup",
  "pusher connect",
  "pusher subscribe",
  "pusher ping",
  "webhook listener",
];

Deno.test("doctor: every check passes against the simulator, then each broken mode fails its line", async (t) => {
  const sim = await startSimulator({ activityTimeoutSec: 90 });
  const db = await createTestDatabase();
  const env = {
    ...sim.env(),
    DATABASE_URL: db.url,
    KICK_UNOFFICIAL_CHANNEL_LOOKUP: "true",
    SYSTEM_STATE_DIRECTORY: await Deno.makeTempDir(),
  };
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const noSecret = (out: string) =>
    assert.ok(!out.includes(sim.clientSecret), `client secret printed:\n${out}`);
  try {
    assert.equal((await runKickmon(["db", "migrate"], env)).code, 0);
    sim.world.add({ userId: 2570626, slug: "bossmanjack", channelId: 2515504, live: true });
    sim.world.add({ userId: 777, slug: "sleepy", channelId: 7770 });
    await insertStreamer(sql as unknown as Sql, {
      username: "bossmanjack",
      kickUserId: 2570626,
      kickChannelId: 2515504,
    });

    await t.step(
      "healthy: every line ok, exit 0",
      async () => {
        const r = await doctorJson(env);
        assert.equal(r.code, 0, r.out);
        noSecret(r.out);
        assert.deepEqual(r.report.checks.map((c) => c.name), NAMES);
        for (const c of r.report.checks) {
          assert.equal(c.status, "ok", JSON.stringify(c));
          assert.equal(c.remedy, undefined);
          assert.ok(c.ms >= 0);
        }
        assert.equal(r.report.ok, true);
        assert.match(r.line("database reachable").detail, /PostgreSQL \d+.*ms round trip/);
        assert.match(r.line("oauth token").detail, /expires_in 7200 s/);
        assert.match(
          r.line("api /channels").detail,
          /HTTP 200, bossmanjack: user id 2570626, live/,
        );
        assert.match(r.line("api /livestreams v1").detail, /channel id 2515504/);
        assert.match(r.line("api /users/livestreams").detail, /HTTP 200, 1 rows/);
        assert.match(r.line("unofficial lookup").detail, /channel id 2515504/);
        assert.match(r.line("pusher connect").detail, /activity_timeout 90 s/);
        assert.match(
          r.line("pusher subscribe").detail,
          /channel\.2515504 \(from the database\): subscription_succeeded/,
        );
        assert.match(r.line("pusher ping").detail, /pong in [\d.]+ ms/);
        // The text form: one line per check plus the summary.
        const text = await doctor(env);
        assert.equal(text.code, 0, text.out);
        noSecret(text.out);
        const lines = text.stdout.trim().split("\n");
        assert.equal(lines.length, NAMES.length + 1, text.stdout);
        assert.match(lines[0], /^ok\s+configuration\s+valid/);
        assert.match(lines.at(-1)!, /^14 ok, 0 warn, 0 fail$/);
      },
    );

    await t.step("wrong client secret: the oauth line fails, the API lines say why", async () => {
      const r = await doctorJson({ ...env, KICK_CLIENT_SECRET: "not-the-secret-4711" });
      assert.equal(r.code, 1, r.out);
      assert.ok(!r.out.includes("not-the-secret-4711"), r.out);
      noSecret(r.out);
      const o = r.line("oauth token");
      assert.equal(o.status, "fail");
      assert.match(o.detail, /Kick rejected the client credentials \(invalid_client, HTTP 401\)/);
      assert.match(o.remedy!, /KICK_CLIENT_ID and KICK_CLIENT_SECRET/);
      assert.equal(r.line("api /channels").status, "fail");
      assert.match(r.line("api /channels").remedy!, /fix the oauth token check first/);
      // Pusher needs no credentials: still fine.
      assert.equal(r.line("pusher ping").status, "ok");
      const text = await doctor({ ...env, KICK_CLIENT_SECRET: "not-the-secret-4711" });
      assert.equal(text.code, 1);
      assert.match(text.stdout, /^fail\s+oauth token\s+Kick rejected.*→ copy KICK_CLIENT_ID/m);
    });

    await t.step("Cloudflare 403 HTML page: the unofficial lookup fails and names it", async () => {
      sim.api.setUnofficialBlocked("html");
      try {
        const r = await doctorJson(env);
        assert.equal(r.code, 1, r.out);
        noSecret(r.out);
        const u = r.line("unofficial lookup");
        assert.equal(u.status, "fail");
        assert.match(u.detail, /HTTP 403: Cloudflare HTML challenge page/);
        assert.match(u.remedy!, /KICK_UNOFFICIAL_CHANNEL_LOOKUP=false/);
        assert.deepEqual(
          r.report.checks.filter((c) => c.status === "fail").map((c) => c.name),
          ["unofficial lookup"],
        );
      } finally {
        sim.api.setUnofficialBlocked(false);
      }
    });

    await t.step("Pusher 4001 refusal: connect fails with the key remedy", async () => {
      sim.pusher.rejectNewConnections(4001);
      try {
        const r = await doctorJson(env);
        assert.equal(r.code, 1, r.out);
        const c = r.line("pusher connect");
        assert.equal(c.status, "fail");
        assert.match(c.detail, /pusher:error 4001/);
        assert.match(c.remedy!, /KICK_PUSHER_KEY/);
        assert.equal(r.line("pusher subscribe").status, "fail");
        assert.equal(r.line("pusher ping").status, "fail");
        assert.equal(r.line("oauth token").status, "ok");
      } finally {
        sim.pusher.rejectNewConnections(null);
      }
    });

    await t.step(
      "v1 /livestreams 404: fail, with the remedy naming what kickmon does instead",
      async () => {
        sim.api.setV1LivestreamsGone(true);
        try {
          const r = await doctorJson(env);
          assert.equal(r.code, 1, "a removed v1 /livestreams is a failure: " + r.out);
          const l = r.line("api /livestreams v1");
          assert.equal(l.status, "fail");
          assert.match(l.detail, /HTTP 404: v1 \/livestreams is gone/);
          assert.match(l.detail, /learns no channel ids from Kick's official API/);
          assert.match(l.remedy!, /unofficial lookup \(enabled\)/);
          assert.match(l.remedy!, /kickmon streamers set-channel-id <username> <channel_id>/);
          assert.equal(r.line("api /users/livestreams").status, "ok", "its successor answers");
          assert.equal(r.line("pusher subscribe").status, "ok", "the row's channel id still works");
          const off = await doctorJson({ ...env, KICK_UNOFFICIAL_CHANNEL_LOOKUP: "false" });
          assert.match(
            off.line("api /livestreams v1").remedy!,
            /KICK_UNOFFICIAL_CHANNEL_LOOKUP=true/,
          );
        } finally {
          sim.api.setV1LivestreamsGone(false);
        }
      },
    );

    await t.step(
      "v1 /livestreams with Deprecation and Sunset headers: warn, still answering",
      async () => {
        sim.api.setV1LivestreamsDeprecated(true);
        try {
          const r = await doctorJson(env);
          assert.equal(r.code, 0, "a warning is not a failure: " + r.out);
          const l = r.line("api /livestreams v1");
          assert.equal(l.status, "warn");
          assert.match(
            l.detail,
            /channel id 2515504; Kick marks it deprecated \(Deprecation: @1782172800, Sunset: Thu, 31 Dec 2026/,
          );
          assert.match(l.remedy!, /set-channel-id/);
        } finally {
          sim.api.setV1LivestreamsDeprecated(false);
        }
      },
    );

    await t.step("/users/livestreams missing: warn, not available, nothing to do", async () => {
      sim.api.failNext("/public/v1/users/livestreams", {
        status: 404,
        body: '{"message":"Not Found"}',
      });
      const r = await doctorJson(env);
      assert.equal(r.code, 0, r.out);
      const u = r.line("api /users/livestreams");
      assert.equal(u.status, "warn");
      assert.match(u.detail, /not available \(HTTP 404\)/);
      assert.match(u.remedy!, /kickmon does not need it and reconciles through \/channels/);
    });

    await t.step(
      "offline streamer without a known channel id: subscribe warns, ping still runs",
      async () => {
        const r = await doctorJson(
          { ...env, KICK_UNOFFICIAL_CHANNEL_LOOKUP: "false" },
          ["--streamer", "sleepy"],
        );
        assert.equal(r.code, 0, r.out);
        assert.match(r.line("api /channels").detail, /sleepy: user id 777, offline/);
        assert.match(r.line("api /livestreams v1").detail, /not live/);
        assert.equal(r.line("unofficial lookup").status, "ok");
        assert.match(r.line("unofficial lookup").detail, /disabled/);
        const s = r.line("pusher subscribe");
        assert.equal(s.status, "warn");
        assert.match(s.detail, /no channel id known/);
        assert.equal(r.line("pusher connect").status, "ok");
        assert.equal(r.line("pusher ping").status, "ok");
      },
    );

    await t.step("webhooks enabled: the listener line warns until kickmon runs", async () => {
      const port = freePort();
      const hooks = {
        ...env,
        KICK_WEBHOOK_ENABLED: "true",
        KICK_WEBHOOK_LISTEN: `127.0.0.1:${port}`,
        HEALTH_CHECK_LISTEN: `127.0.0.1:${freePort()}`,
      };
      const down = await doctorJson(hooks);
      assert.equal(down.code, 0, down.out);
      const w = down.line("webhook listener");
      assert.equal(w.status, "warn");
      assert.match(w.detail, new RegExp(`nothing listens on 127\\.0\\.0\\.1:${port}`));
      assert.match(w.remedy!, /start kickmon/);
      const k = spawnKickmon(["start"], hooks);
      try {
        await k.waitForLine(/webhook receiver listening/, 20_000);
        const up = await doctorJson(hooks);
        assert.equal(up.code, 0, up.out);
        assert.equal(up.line("webhook listener").status, "ok", up.out);
        assert.match(up.line("webhook listener").detail, /is bound/);
      } finally {
        await k.stop();
      }
    });

    await t.step(
      "database unreachable: three failing lines, the password never printed",
      async () => {
        const r = await doctorJson({
          ...env,
          DATABASE_URL: "postgres://kickmon:hunter2pw@127.0.0.1:1/none",
          DATABASE_CONNECT_TIMEOUT: "2",
        });
        assert.equal(r.code, 1, r.out);
        assert.ok(!r.out.includes("hunter2pw"), r.out);
        assert.equal(r.line("database reachable").status, "fail");
        assert.match(r.line("database reachable").remedy!, /DATABASE_URL/);
        assert.match(r.line("database privileges").detail, /not checked/);
        // Without a list there is no default streamer; --streamer still checks the API.
        const named = await doctorJson({
          ...env,
          DATABASE_URL: "postgres://kickmon:hunter2pw@127.0.0.1:1/none",
          DATABASE_CONNECT_TIMEOUT: "2",
        }, ["--streamer", "bossmanjack"]);
        assert.equal(named.line("api /channels").status, "ok", named.out);
        assert.match(named.line("pusher subscribe").detail, /from \/livestreams/);
      },
    );

    await t.step("invalid configuration: one failing line, exit 1", async () => {
      const r = await doctorJson({ ...env, KICK_PUSHER_PORT: "not-a-port" });
      assert.equal(r.code, 1, r.out);
      assert.equal(r.report.checks.length, 1);
      const c = r.line("configuration");
      assert.equal(c.status, "fail");
      assert.match(c.detail, /KICK_PUSHER_PORT/);
      assert.match(c.remedy!, /generate-template/);
      noSecret(r.out);
    });
  } finally {
    await sql.end({ timeout: 1 });
    await db.drop();
    await sim.close();
  }
});

Deno.test("doctor: a missing database privilege fails the privileges line with its GRANT", async () => {
  const sim = await startSimulator();
  const u = await createUserDatabase({ grants: "least" });
  try {
    const env = { ...sim.env(), DATABASE_URL: u.kickmonUrl };
    assert.equal((await runKickmon(["db", "migrate"], env)).code, 0);
    sim.world.add({ userId: 6001, slug: "alpha", channelId: 7001, live: true });
    await u.owner`INSERT INTO streamers (kick_user_id, username, display_name)
      VALUES ('6001', 'alpha', 'Alpha')`;
    const good = await doctorJson(env);
    assert.equal(good.line("database privileges").status, "ok", good.out);
    assert.match(good.line("pusher subscribe").detail, /channel\.7001 \(from \/livestreams\)/);

    await u.admin.unsafe(`REVOKE SELECT, INSERT ON public.status_events FROM ${u.kickmonRole}`);
    const r = await doctorJson(env);
    assert.equal(r.code, 1, r.out);
    const p = r.line("database privileges");
    assert.equal(p.status, "fail");
    assert.match(p.detail, /status_events/);
    assert.ok(
      p.remedy!.includes(`GRANT SELECT, INSERT ON public.status_events TO ${u.kickmonRole};`),
      p.remedy,
    );
    assert.equal(r.line("database reachable").status, "ok");
  } finally {
    await u.drop();
    await sim.close();
  }
});
