import assert from "node:assert/strict";
import {
  fmtSpread,
  ratioFigures,
  ratioOf,
  type RunFigures,
  runFigures,
  spreadFigures,
  spreadOf,
} from "./spread.ts";
import { markdownTable, summarizeScenarios, summaryTable, thousands } from "./report.ts";
import { cpuModelOf } from "./machine.ts";

const scenario = (p50: number, p99: number, over: Record<string, unknown> = {}) => ({
  latency: { p50, p99 },
  lost: 0,
  sent: 100,
  committed: 100,
  cpu: { kickmonLoadPct: 50, kickmonLoadSec: 0.02, kickmonUsPerTransition: null },
  rss: { peakMB: 90, steadyMB: 80 },
  batches: { mean: 2 },
  startup: { subscribedMs: 1500 },
  ...over,
});

Deno.test("bench spread: median and range, nulls left out", () => {
  assert.deepEqual(spreadOf([3, 1, 2]), { n: 3, median: 2, min: 1, max: 3 });
  assert.deepEqual(spreadOf([4, 1, null, 2, 3]), { n: 4, median: 2.5, min: 1, max: 4 });
  assert.equal(spreadOf([null, undefined, NaN]), null);
  assert.equal(ratioOf(3, 1.5), 2);
  assert.equal(ratioOf(3, 0), null);
  assert.equal(ratioOf(null, 2), null);
});

Deno.test("bench spread: ratios to the floor are per run, then summarised", () => {
  // Run 1: p50 4 on a floor of 1 (4×); run 2: p50 3 on a floor of 2 (1.5×).
  const runs = [
    runFigures(scenario(4, 10), { p50: 1, p99: 5 }),
    runFigures(scenario(3, 12), { p50: 2, p99: 4 }),
  ];
  const s = spreadFigures(runs);
  assert.deepEqual(s.p50VsFloor, { n: 2, median: 2.75, min: 1.5, max: 4 });
  // Not the ratio of the medians (3.5 / 1.5).
  assert.notEqual(s.p50VsFloor!.median, 3.5 / 1.5);
  assert.deepEqual(s.floorP50Ms, { n: 2, median: 1.5, min: 1, max: 2 });
  // CPU per transition: 0.02 s over 100 transitions = 200 µs, when the run did not say.
  assert.equal(runs[0].cpuUsPerTransition, 200);
  assert.equal(runs[0].subscribedS, 1.5);
  // A scenario that never started has no "lost" figure.
  const dead = runFigures(scenario(1, 1, { sent: 0, error: "did not start" }), null);
  assert.equal(dead.lost, null);
  assert.equal(dead.p50VsFloor, null);
});

Deno.test("bench spread: B ÷ A per run pair", () => {
  const a: RunFigures[] = [runFigures(scenario(2, 10), null), runFigures(scenario(4, 10), null)];
  const b: RunFigures[] = [runFigures(scenario(1, 10), null), runFigures(scenario(4, 20), null)];
  const r = ratioFigures(a, b);
  assert.deepEqual(r.p50Ms, { n: 2, median: 0.75, min: 0.5, max: 1 });
  assert.deepEqual(r.p99Ms, { n: 2, median: 1.5, min: 1, max: 2 });
  assert.equal(r.lost, null); // 0 ÷ 0
  assert.throws(() => ratioFigures(a, b.slice(1)), RangeError);
});

Deno.test("bench spread: formatting", () => {
  assert.equal(fmtSpread({ n: 3, median: 2.5, min: 2.25, max: 3.125 }), "2.50 (2.25–3.13)");
  assert.equal(fmtSpread({ n: 2, median: 4.01, min: 4, max: 4.02 }, 0), "4");
  assert.equal(fmtSpread({ n: 2, median: 4, min: 3.1, max: 4.9 }, 1, "×"), "4.0× (3.1–4.9)");
  assert.equal(fmtSpread(null), "-");
  assert.equal(thousands(10000), "10,000");
  assert.equal(thousands(500), "500");
});

Deno.test("bench report: tables in deno fmt's layout, grouped by scenario", () => {
  assert.equal(
    markdownTable(["N", "p50 ms"], [["1,000", "2.5"]]),
    "|     N | p50 ms |\n| ----: | -----: |\n| 1,000 |    2.5 |",
  );
  assert.equal(markdownTable(["a"], [["x"]], ["l"]), "| a   |\n| --- |\n| x   |");
  const rows = [
    { n: 1000, rate: 100, figures: runFigures(scenario(2, 5), null) },
    { n: 1000, rate: 500, figures: runFigures(scenario(3, 6), null) },
    { n: 1000, rate: 100, figures: runFigures(scenario(4, 7), null) },
  ];
  const s = summarizeScenarios(rows);
  assert.deepEqual(s.map((x) => [x.n, x.rate, x.runs]), [[1000, 100, 2], [1000, 500, 1]]);
  assert.deepEqual(s[0].figures.p50Ms, { n: 2, median: 3, min: 2, max: 4 });
  const t = summaryTable(s).split("\n");
  assert.equal(t.length, 4);
  assert.match(t[2], /^\| 1,000 \| +100 \| +2 \| +0 \| 3\.00 \(2\.00–4\.00\) \|/);
  // Every line as wide as the header (deno fmt pads every cell).
  for (const line of t) assert.equal([...line].length, [...t[0]].length);
});

Deno.test("bench machine: CPU model from /proc/cpuinfo", () => {
  assert.equal(cpuModelOf("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"), "AMD EPYC 7B13");
  assert.equal(cpuModelOf("Hardware\t: BCM2835\n"), "BCM2835");
  assert.equal(cpuModelOf(""), "unknown");
});
