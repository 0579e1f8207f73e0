/**
 * A SIGTERM ends kickmon promptly even while a reconciliation pass waits on
 * the official-API request budget: systemd's `TimeoutStopSec` (20 s in the
 * shipped unit) must never have to SIGKILL it. Real `kickmon start`, the
 * simulator, a real PostgreSQL.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startRig } from "./helpers/harness.ts";

Deno.test("shutdown: SIGTERM during a reconciliation pass that waits on the request budget exits within seconds", async () => {
  // One request a minute: a pass over 300 streamers (6 × /channels) needs ~5 min.
  const rig = await startRig({
    KICK_API_MAX_REQUESTS_PER_MINUTE: "1",
    MONITORING_RECONCILE_INTERVAL: "2",
  });
  try {
    for (let i = 0; i < 300; i++) {
      await rig.insert({ username: `budget_${i}`, userId: 90_000_000 + i });
    }
    // The list follower has the rows within a second (LISTEN), and a pass (every 2 s)
    // over them now waits on the budget: its first request is due up to a minute
    // after the last one. (Without the fix this test measured 25 s to exit.)
    await new Promise((r) => setTimeout(r, 5000));
    const t0 = performance.now();
    rig.kickmon.kill("SIGTERM");
    const timer = setTimeout(() => rig.kickmon.kill("SIGKILL"), 30_000);
    const status = await rig.kickmon.status;
    clearTimeout(timer);
    const ms = performance.now() - t0;
    assert.equal(status.code, 0, `exit ${status.code} after ${Math.round(ms)} ms`);
    assert.ok(ms < 10_000, `took ${Math.round(ms)} ms to exit (systemd stops waiting at 20 s)`);
    assert.ok(
      rig.kickmon.lines.some((l) => /stopped|shut down|shutting down/i.test(l)),
      rig.kickmon.lines.slice(-5).join("\n"),
    );
  } finally {
    await rig.close();
  }
});
