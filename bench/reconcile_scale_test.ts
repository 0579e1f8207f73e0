import assert from "node:assert/strict";
import { splitPasses, sumByLabel, summarizeReconcile } from "./reconcile_scale.ts";

const req = (at: number, first: number, count: number) => ({
  at,
  done: at + 200,
  firstId: first,
  ids: Array.from({ length: count }, (_, i) => first + i),
  channels: true,
});

Deno.test("bench reconcile: passes split where a pass asks about an id again", () => {
  const reqs = [
    req(0, 1, 50),
    req(1000, 51, 50),
    { at: 1500, done: 1800, firstId: null, ids: [7], channels: false }, // GET /livestreams
    req(60_000, 1, 50),
    req(61_000, 51, 50),
    req(62_000, 1, 50), // a third pass, cut off after one request
  ];
  const p = splitPasses(reqs, 100);
  assert.equal(p.length, 3);
  assert.deepEqual(p[0], {
    startMs: 0,
    endMs: 1800,
    durationMs: 1800,
    channelsRequests: 2,
    otherRequests: 1,
    ids: 100,
    complete: true,
  });
  assert.deepEqual([p[1].durationMs, p[1].complete], [1200, true]);
  assert.deepEqual([p[2].ids, p[2].complete], [50, false]);
  assert.deepEqual(splitPasses([], 100), []);
});

Deno.test("bench reconcile: /metrics counters summed by label", () => {
  const text = [
    "# HELP kickmon_api_requests_total x",
    'kickmon_api_requests_total{endpoint="GET /channels",code="200"} 199',
    'kickmon_api_requests_total{endpoint="GET /channels",code="429"} 1',
    'kickmon_api_requests_total{endpoint="GET /livestreams",code="200"} 2',
    'kickmon_reconciliations_total{outcome="ok"} 3',
  ].join("\n");
  assert.deepEqual(sumByLabel(text, "kickmon_api_requests_total", "endpoint"), {
    "GET /channels": 200,
    "GET /livestreams": 2,
  });
  assert.deepEqual(sumByLabel(text, "kickmon_reconciliations_total", "outcome"), { ok: 3 });
});

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
