import assert from "node:assert/strict";
import { summarizeReconcile } from "./reconcile_report.ts";

Deno.test("bench reconcile: summaries by budget over runs", () => {
  const base = {
    n: 100,
    apiLatencyMs: [100, 300] as const,
    live: 10,
    expectedChannelsRequests: 2,
    budgetBoundMs: 2000,
    startPassLoggedMs: 2000,
    noChannelMissed: 0,
    channelIdsLearned: 10,
    withChannelMissed: 0,
    metrics: null,
    stop: null,
  };
  const lat = (p50: number) => ({
    count: 10,
    p50,
    p95: p50,
    p99: p50 * 2,
    max: p50 * 2,
    mean: p50,
  });
  const pass = (d: number) => ({
    startMs: 0,
    endMs: d,
    durationMs: d,
    channelsRequests: 2,
    otherRequests: 1,
    ids: 100,
    complete: true,
  });
  const s = summarizeReconcile([
    {
      ...base,
      budgetPerMin: 60,
      passes: [pass(2000), pass(4000)],
      noChannel: lat(1000),
      withChannel: lat(5),
    },
    { ...base, budgetPerMin: 100, passes: [pass(1000)], noChannel: lat(500), withChannel: lat(4) },
    { ...base, budgetPerMin: 60, passes: [pass(5000)], noChannel: lat(3000), withChannel: lat(6) },
  ]);
  assert.deepEqual(s.map((x) => [x.budgetPerMin, x.runs]), [[60, 2], [100, 1]]);
  // Run 1's median pass is 3000 ms, run 2's 5000 ms.
  assert.deepEqual(s[0].passMs, { n: 2, median: 4000, min: 3000, max: 5000 });
  assert.deepEqual(s[0].requestsPerPass, { n: 2, median: 3, min: 3, max: 3 });
  assert.deepEqual(s[0].noChannelP99Ms, { n: 2, median: 4000, min: 2000, max: 6000 });
});
