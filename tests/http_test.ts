/**
 * Issue 5: /health follows the components; /metrics is valid Prometheus text.
 */
import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { startThrowawayCluster } from "../dev/pg_cluster.ts";
import { startSimulator } from "../dev/simulator/simulator.ts";
import { createTestDatabase, freePort, waitFor } from "./helpers/database.ts";
import { startRig } from "./helpers/harness.ts";
import { baseEnv, spawnKickmon, spawnProcess } from "../dev/kickmon_process.ts";

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: r.status, body: await r.text() };
}

Deno.test({
  name: "/health turns 503 when PostgreSQL or the Pusher socket goes, 200 when they return",
  sanitizeResources: false,
  fn: async () => {
    const cluster = await startThrowawayCluster();
    const port = freePort();
    const rig = await startRig(
      {
        HEALTH_CHECK_ENABLED: "true",
        HEALTH_CHECK_LISTEN: `127.0.0.1:${port}`,
        DATABASE_CONNECT_TIMEOUT: "1",
      },
      {},
      { databaseUrl: cluster.url },
    );
    const health = `http://127.0.0.1:${port}/health`;
    try {
      rig.sim.world.add({ userId: 11, slug: "healthy", channelId: 12 });
      const id = await rig.insert({ username: "healthy", userId: 11, channelId: 12 });
      // Healthy once the new streamer's channel has its Pusher connection.
      const ok = await waitFor(async () => {
        const r = await get(health);
        const b = JSON.parse(r.body);
        return r.status === 200 && b.pusher.connections.length === 1 ? b : null;
      }, { timeoutMs: 10_000 });
      assert.equal(ok.status, "healthy");
      assert.equal(ok.database.up, true);
      assert.equal(ok.pusher.connections[0].state, "connected");

      await cluster.pgStop();
      const down = await waitFor(async () => {
        const r = await get(health);
        return r.status === 503 ? JSON.parse(r.body) : null;
      }, { timeoutMs: 8000, message: "503 after PostgreSQL stops" }).catch((e) => {
        throw new Error(
          `${e.message}; kickmon output:\n${rig.kickmon.lines.slice(-30).join("\n")}`,
          {
            cause: e,
          },
        );
      });
      assert.equal(down.database.up, false);
      await cluster.pgStart();
      await waitFor(async () => (await get(health)).status === 200, {
        timeoutMs: 15_000,
        message: "200 after PostgreSQL returns",
      });

      rig.sim.pusher.rejectNewConnections(4100);
      rig.sim.pusher.dropAll(4100, "over capacity");
      const deaf = await waitFor(async () => {
        const r = await get(health);
        return r.status === 503 ? JSON.parse(r.body) : null;
      }, { timeoutMs: 5000, message: "503 after the socket drops" });
      assert.equal(deaf.pusher.up, false);
      rig.sim.pusher.rejectNewConnections(null);
      await waitFor(async () => (await get(health)).status === 200, {
        timeoutMs: 15_000,
        message: "200 after the socket returns",
      });

      // /metrics: parses as Prometheus text and counts what happened.
      rig.sim.world.setLive(11, true);
      await rig.waitStatus(id, "online", 5000);
      const m = await get(`http://127.0.0.1:${port}/metrics`);
      assert.equal(m.status, 200);
      const families = parsePrometheusTextFormat(m.body) as Array<
        {
          name: string;
          type: string;
          metrics: Array<
            {
              labels?: Record<string, string>;
              value?: string;
              buckets?: Record<string, string>;
              count?: string;
            }
          >;
        }
      >;
      const byName = new Map(families.map((f) => [f.name, f]));
      for (
        const name of [
          "kickmon_streamers",
          "kickmon_pusher_connections",
          "kickmon_events_received_total",
          "kickmon_transitions_total",
          "kickmon_event_to_commit_seconds",
          "kickmon_write_queue_depth",
          "kickmon_pusher_reconnects_total",
          "kickmon_api_requests_total",
          "kickmon_process_resident_memory_bytes",
        ]
      ) assert.ok(byName.has(name), `missing ${name}`);
      assert.equal(byName.get("kickmon_event_to_commit_seconds")!.type, "HISTOGRAM");
      // One transition to online: from Pusher, or from the reconciliation that
      // follows the reconnect above if the API answered first (a legitimate race).
      const online = byName.get("kickmon_transitions_total")!.metrics
        .filter((x) => x.labels?.status === "online")
        .reduce((n, x) => n + Number(x.value), 0);
      assert.equal(online, 1);
      assert.ok(
        Number(byName.get("kickmon_process_resident_memory_bytes")!.metrics[0].value) > 1e6,
      );
      assert.ok(byName.get("kickmon_pusher_reconnects_total")!.metrics.length > 0);
      const s = await get(`http://127.0.0.1:${port}/streamers/healthy/status`);
      assert.equal(JSON.parse(s.body).status, "online");
      assert.equal((await get(`http://127.0.0.1:${port}/streamers/nobody/status`)).status, 404);
    } finally {
      await rig.close();
      await cluster.stop();
    }
  },
});

Deno.test("MONITORING_MAX_RECONNECT_ATTEMPTS: a monitor that gives up exits 1 (systemd restarts it)", async () => {
  const rig = await startRig({});
  try {
    await rig.kickmon.stop();
    rig.sim.world.add({ userId: 21, slug: "giveup", channelId: 22 });
    await rig.insert({ username: "giveup", userId: 21, channelId: 22 });
    rig.sim.pusher.rejectNewConnections(4100);
    const p = spawnKickmon(["start"], {
      ...rig.env,
      MONITORING_MAX_RECONNECT_ATTEMPTS: "3",
      MONITORING_RECONNECT_DELAY: "50",
      MONITORING_MAX_RECONNECT_DELAY: "200",
    });
    const st = await Promise.race([
      p.status,
      new Promise<null>((r) => setTimeout(() => r(null), 30_000)),
    ]);
    if (!st) p.kill("SIGKILL");
    assert.ok(st, `did not exit:\n${p.lines.slice(-10).join("\n")}`);
    assert.equal(st.code, 1);
    assert.ok(p.lines.some((l) => /gave up after 3 reconnect attempts/.test(l)));
  } finally {
    await rig.close();
  }
});

Deno.test("an OAuth outage backs off and shows in /health, then recovers", async () => {
  const port = freePort();
  const rig = await startRig({
    HEALTH_CHECK_ENABLED: "true",
    HEALTH_CHECK_LISTEN: `127.0.0.1:${port}`,
    MONITORING_RECONCILE_INTERVAL: "1",
  });
  const health = `http://127.0.0.1:${port}/health`;
  try {
    rig.sim.world.add({ userId: 31, slug: "oauthy", channelId: 32 });
    await rig.insert({ username: "oauthy", userId: 31, channelId: 32 });
    await waitFor(async () => (await get(health)).status === 200, { timeoutMs: 10_000 });
    rig.sim.api.failNext("/oauth/token", { status: 503, body: "" }, 12);
    rig.sim.api.expireAllTokens();
    const down = await waitFor(async () => {
      const r = await get(health);
      return r.status === 503 ? JSON.parse(r.body) : null;
    }, { timeoutMs: 10_000, message: "503 while the token cannot be refreshed" });
    assert.match(down.token.state, /failing|none|refreshing/);
    await waitFor(async () => (await get(health)).status === 200, {
      timeoutMs: 40_000,
      message: "200 once the OAuth server answers again",
    });
    const tokenRequests = rig.sim.api.requests("/oauth/token");
    assert.ok(tokenRequests < 40, `backed off (${tokenRequests} token requests)`);
  } finally {
    await rig.close();
  }
});

Deno.test({
  name: "/health survives running out of file handles, and bad paths get 400 without internals",
  ignore: !Deno.statSync("/usr/bin/prlimit").isFile,
  fn: async () => {
    const sim = await startSimulator();
    const db = await createTestDatabase();
    const port = freePort();
    const ROOT = new URL("../", import.meta.url).pathname;
    // A hard limit Deno cannot raise: the health server hits EMFILE first.
    const p = spawnProcess("/usr/bin/prlimit", [
      "--nofile=192:192",
      Deno.execPath(),
      "run",
      "-A",
      `${ROOT}main.ts`,
      "start",
    ], {
      ...baseEnv(),
      NO_COLOR: "1",
      ...sim.env(),
      DATABASE_URL: db.url,
      SYSTEM_STATE_DIRECTORY: await Deno.makeTempDir(),
      HEALTH_CHECK_ENABLED: "true",
      HEALTH_CHECK_LISTEN: `127.0.0.1:${port}`,
    });
    const conns: Deno.Conn[] = [];
    try {
      await p.waitForLine(/kickmon started/, 30_000);
      const base = `http://127.0.0.1:${port}`;
      assert.equal((await get(`${base}/streamers/%E0%A4%A/status`)).status, 400);
      const nul = await get(`${base}/streamers/a%00b/status`);
      assert.equal(nul.status, 400);
      assert.doesNotMatch(nul.body, /postgres|invalid byte|syntax/i);
      // A flood of idle connections (a slowloris) exhausts the file handles.
      for (let i = 0; i < 400; i++) {
        try {
          conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        } catch {
          break;
        }
      }
      await p.waitForLine(/health endpoint stopped/, 10_000);
      for (const c of conns.splice(0)) c.close();
      await waitFor(async () => {
        try {
          return (await get(`${base}/health`)).status === 200;
        } catch {
          return false;
        }
      }, { timeoutMs: 20_000, message: "/health answers again" });
      assert.equal(await p.stop(), 0);
    } finally {
      for (const c of conns) c.close();
      p.kill("SIGKILL");
      await p.status;
      await db.drop();
      await sim.close();
    }
  },
});
