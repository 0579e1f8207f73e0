import assert from "node:assert/strict";
import { splitPasses, sumByLabel } from "./reconcile_scale.ts";

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
