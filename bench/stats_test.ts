import assert from "node:assert/strict";
import { fmtMs, poissonGaps, quantile, summarize, xorshift } from "./stats.ts";
import { renderTable } from "./bench.ts";
import { parseBenchArgs } from "./args.ts";

Deno.test("bench stats: nearest-rank quantiles and summaries", () => {
  const sorted = Float64Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
  assert.equal(quantile(sorted, 0.5), 5);
  assert.equal(quantile(sorted, 0.99), 10);
  assert.equal(quantile(sorted, 0), 1);
  assert.equal(quantile([], 0.5), null);
  assert.throws(() => quantile(sorted, 1.5), RangeError);
  const s = summarize([3, 1, 2]);
  assert.deepEqual([s.count, s.p50, s.max, s.mean], [3, 2, 3, 2]);
  assert.equal(summarize([]).p99, null);
  assert.equal(fmtMs(1.234), "1.23");
  assert.equal(fmtMs(12.34), "12.3");
  assert.equal(fmtMs(null), "-");
});

Deno.test("bench stats: Poisson gaps average 1/rate and are reproducible", () => {
  const a = poissonGaps(2000, 5), b = poissonGaps(2000, 5);
  let sum = 0;
  for (let i = 0; i < 20_000; i++) {
    const g = a();
    assert.equal(g, b());
    assert.ok(g >= 0);
    sum += g;
  }
  const mean = sum / 20_000;
  assert.ok(mean > 0.45 && mean < 0.55, `mean gap ${mean} ms, expected ~0.5`);
  const r = xorshift(1);
  for (let i = 0; i < 1000; i++) {
    const v = r();
    assert.ok(v >= 0 && v < 1);
  }
  assert.throws(() => poissonGaps(0), RangeError);
});

Deno.test("bench args: modes, lists and errors", () => {
  const q = parseBenchArgs(["--quick"]);
  assert.deepEqual([q.ns, q.rates, q.durationSec, q.mode], [[1000], [500], 5, "quick"]);
  const f = parseBenchArgs(["--full", "--duration", "10"]);
  assert.deepEqual([f.ns, f.rates, f.durationSec], [[1000, 10000, 50000], [
    100,
    1000,
    2000,
    5000,
  ], 10]);
  const c = parseBenchArgs(["--n=10_000,2000", "--rate", "300", "--v8-flags="]);
  assert.deepEqual([c.ns, c.rates, c.mode, c.v8Flags], [[10000, 2000], [300], "custom", ""]);
  assert.ok(parseBenchArgs([]).v8Flags.includes("--max-semi-space-size"));
  assert.equal(parseBenchArgs([]).source, false);
  assert.equal(parseBenchArgs(["--source"]).source, true);
  assert.equal(parseBenchArgs(["--cold"]).cold, true);
  assert.throws(() => parseBenchArgs(["--quick", "--full"]));
  assert.throws(() => parseBenchArgs(["--n", "0"]));
  assert.throws(() => parseBenchArgs(["--bogus"]));
  assert.match(renderTable([]), /\| +N \| +R\/s \|/);
});

Deno.test("bench args: runs, compare and the reconciliation scenario", () => {
  assert.equal(parseBenchArgs([]).runs, 3);
  assert.equal(parseBenchArgs(["--full"]).runs, 3);
  assert.equal(parseBenchArgs(["--quick"]).runs, 1);
  assert.equal(parseBenchArgs(["--quick", "--runs", "2"]).runs, 2);
  assert.throws(() => parseBenchArgs(["--runs", "1.5"]));
  assert.throws(() => parseBenchArgs(["--runs", "0"]));
  const c = parseBenchArgs(["--quick", "--compare", "main~1"]);
  assert.deepEqual([c.compare, c.v8FlagsGiven], ["main~1", false]);
  assert.throws(() => parseBenchArgs(["--compare", "main", "--source"]));
  const r = parseBenchArgs(["--reconcile-scale"]);
  assert.deepEqual([r.mode, r.ns, r.budgets, r.apiLatencyMs, r.runs], [
    "reconcile",
    [10000],
    [60, 100],
    [100, 300],
    1,
  ]);
  assert.match(r.out, /bench\/results\/reconcile\.json$/);
  const q = parseBenchArgs(["--reconcile-scale", "--n", "1000", "--api-latency", "0-50"]);
  assert.deepEqual(q.apiLatencyMs, [0, 50]);
  assert.match(q.out, /reconcile-check\.json$/);
  assert.throws(() => parseBenchArgs(["--reconcile-scale", "--api-latency", "300-100"]));
  assert.throws(() => parseBenchArgs(["--reconcile-scale", "--compare", "main"]));
});
