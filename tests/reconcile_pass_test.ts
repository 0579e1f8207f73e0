/**
 * A reconciliation pass is never slow in silence (issue 15: "never let a pass
 * overrun silently"): its duration and coverage are in `/metrics`
 * (`kickmon_reconcile_pass_duration_seconds`, `kickmon_reconcile_pass_coverage_ratio`),
 * and a pass longer than `MONITORING_RECONCILE_INTERVAL` is counted
 * (`kickmon_reconcile_pass_overruns_total`) and logged at WARN with the budget
 * that sets it. Real `kickmon start`, the simulator, a real PostgreSQL.
 *
 * @module
 */
import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { startRig } from "./helpers/harness.ts";
import { freePort, waitFor } from "./helpers/database.ts";

interface Family {
  name: string;
  metrics: Array<{ value?: string; buckets?: Record<string, string> }>;
}

Deno.test("reconcile pass: duration, coverage and an overrun of the interval are in /metrics and the log", async () => {
  const port = freePort();
  // 150 streamers = 3 × /channels; 20 requests/min spaces them 3 s apart, so a
  // pass takes several seconds against a 1 s interval.
  const rig = await startRig({
    HEALTH_CHECK_ENABLED: "true",
    HEALTH_CHECK_LISTEN: `127.0.0.1:${port}`,
    KICK_API_MAX_REQUESTS_PER_MINUTE: "20",
    MONITORING_RECONCILE_INTERVAL: "1",
  });
  try {
    for (let i = 0; i < 150; i++) {
      const userId = 80_000_000 + i;
      rig.sim.world.add({ userId, slug: `pass_${i}`, channelId: 3_000_000 + i });
      await rig.insert({ username: `pass_${i}`, userId });
    }
    const warned = () =>
      rig.kickmon.logs().find((l) =>
        l.level === "WARN" && l.wanted === 150 &&
        /longer than MONITORING_RECONCILE_INTERVAL/.test(String(l.message))
      );
    await waitFor(() => warned() !== undefined, {
      timeoutMs: 60_000,
      message: "the overrun warning for a pass over all 150",
    });
    const w = warned()!;
    assert.ok(Number(w.seconds) > 1, JSON.stringify(w));
    assert.match(String(w.message), /KICK_API_MAX_REQUESTS_PER_MINUTE/);

    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const families = new Map<string, Family>(
      (parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f]),
    );
    const overruns = Number(
      families.get("kickmon_reconcile_pass_overruns_total")?.metrics[0].value,
    );
    assert.ok(overruns >= 1, `overruns ${overruns}`);
    const coverage = Number(
      families.get("kickmon_reconcile_pass_coverage_ratio")?.metrics[0].value,
    );
    assert.equal(coverage, 1, "every streamer exists on Kick, so the pass answered for all");
    // Every pass is observed, whatever its reason: sum the _count series from the raw text
    // (the text-format parser folds a labelled histogram's series together).
    const counted = [
      ...text.matchAll(/^kickmon_reconcile_pass_duration_seconds_count\{[^}]*\} (\d+)$/gm),
    ].reduce((n, m) => n + Number(m[1]), 0);
    const overrunning = Number(
      text.match(/^kickmon_reconcile_pass_duration_seconds_count\{reason="list_changed"\} (\d+)$/m)
        ?.[1] ?? 0,
    ) + Number(
      text.match(/^kickmon_reconcile_pass_duration_seconds_count\{reason="interval"\} (\d+)$/m)
        ?.[1] ?? 0,
    );
    assert.ok(
      counted >= 2,
      `passes observed: ${counted}\n${text.match(/^kickmon_reconcile.*$/gm)}`,
    );
    assert.ok(overrunning >= 1, "the pass over the 150 streamers is in the histogram");
  } finally {
    await rig.close();
  }
});
