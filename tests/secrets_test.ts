/**
 * Issue 4: secrets never reach a log line or CLI output, even when the
 * errors that carry them happen; loose env-file permissions are reported.
 */
import assert from "node:assert/strict";
import { freePort, waitFor } from "./helpers/database.ts";
import { startRig } from "./helpers/harness.ts";
import { runKickmon, spawnKickmon } from "../dev/kickmon_process.ts";

const CLIENT_SECRET = "sekr1t-client-Zq9";
const DB_PASSWORD = "pa55-db-Xy7";

Deno.test("secrets: never in logs through 401s, token refreshes and a bad database password", async () => {
  const rig = await startRig(
    { MONITORING_RECONCILE_INTERVAL: "1", SYSTEM_LOG_LEVEL: "debug" },
    { clientSecret: CLIENT_SECRET, tokenLifetimeSec: 2 },
  );
  try {
    rig.sim.world.add({ userId: 77, slug: "secretive", channelId: 78 });
    await rig.insert({ username: "secretive", userId: 77, channelId: 78 });
    rig.sim.api.expireAllTokens();
    rig.sim.api.failNext("/public/v1/channels", {
      status: 401,
      body: '{"message":"unauthorized"}',
    });
    await waitFor(() => rig.sim.api.requests("/oauth/token") >= 3, { timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 1500));
    await rig.kickmon.stop();
    const all = rig.kickmon.lines.join("\n");
    assert.ok(!all.includes(CLIENT_SECRET), "client secret leaked");
    // Access tokens issued by the simulator never appear either.
    assert.ok(!/"access_token"/.test(all));
  } finally {
    await rig.close();
  }

  // Wrong client secret: a fatal configuration error, not a retry loop, and not echoed.
  const rig2 = await startRig({}, {});
  try {
    await rig2.kickmon.stop();
    const bad = spawnKickmon(["start"], {
      ...rig2.env,
      KICK_CLIENT_SECRET: "wrong-" + CLIENT_SECRET,
    });
    const code = (await bad.status).code;
    assert.equal(code, 2, bad.lines.join("\n"));
    assert.ok(bad.lines.some((l) => /invalid_client|KICK_CLIENT_SECRET/.test(l)));
    assert.ok(!bad.lines.join("\n").includes(CLIENT_SECRET));
  } finally {
    await rig2.close();
  }

  // Bad database password: CLI output names the problem, not the password.
  const u = new URL(
    Deno.env.get("TEST_DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/postgres",
  );
  const port = u.port || "5432";
  const r = await runKickmon(["db", "health"], {
    DATABASE_URL: `postgres://nosuchuser:${DB_PASSWORD}@127.0.0.1:${port}/postgres`,
  });
  assert.equal(r.code, 1);
  assert.ok(!(r.stdout + r.stderr).includes(DB_PASSWORD));
  const shown = await runKickmon(["config", "show"], {
    DATABASE_URL: `postgres://u:${DB_PASSWORD}@h/db`,
    KICK_CLIENT_SECRET: CLIENT_SECRET,
  });
  assert.ok(!(shown.stdout + shown.stderr).includes(DB_PASSWORD));
  assert.ok(!(shown.stdout + shown.stderr).includes(CLIENT_SECRET));
  // A monitor that cannot log in to PostgreSQL keeps the password out of its logs.
  const p = spawnKickmon(["start"], {
    KICK_CLIENT_ID: "x",
    KICK_CLIENT_SECRET: CLIENT_SECRET,
    KICK_OAUTH_URL: "http://127.0.0.1:1",
    KICK_API_URL: "http://127.0.0.1:1/public/v1",
    KICK_PUSHER_HOST: "127.0.0.1",
    KICK_PUSHER_PORT: String(freePort()),
    KICK_PUSHER_TLS: "false",
    HEALTH_CHECK_ENABLED: "false",
    SYSTEM_STATE_DIRECTORY: await Deno.makeTempDir(),
    DATABASE_URL: `postgres://nosuchuser:${DB_PASSWORD}@127.0.0.1:${port}/postgres`,
  });
  await new Promise((r) => setTimeout(r, 3000));
  p.kill("SIGKILL");
  await p.status;
  assert.ok(p.lines.length > 0);
  assert.ok(!p.lines.join("\n").includes(DB_PASSWORD), p.lines.join("\n"));
});

Deno.test("secrets: an env file readable by others is reported at start", async () => {
  const rig = await startRig({});
  const dir = await Deno.makeTempDir();
  try {
    await rig.kickmon.stop();
    const file = `${dir}/kickmon.env`;
    await Deno.writeTextFile(file, `KICK_CLIENT_SECRET=${rig.sim.clientSecret}\n`);
    await Deno.chmod(file, 0o644);
    const p = spawnKickmon(["start"], { ...rig.env, KICKMON_ENV_FILE: file });
    await p.waitForLine(/readable by others/, 20_000);
    assert.equal(await p.stop(), 0);
  } finally {
    await rig.close();
    await Deno.remove(dir, { recursive: true });
  }
});
