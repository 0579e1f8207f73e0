import assert from "node:assert/strict";
import {
  PERF_MARKERS,
  performanceTables,
  readResult,
  regenerate,
  resultSection,
  withPerformanceTables,
} from "./readme_table.ts";

Deno.test("README: the performance tables are what bench/results/*.json generates", async () => {
  const readme = Deno.readTextFileSync(new URL("../README.md", import.meta.url));
  const want = await regenerate(readme, readResult);
  assert.ok(
    want === readme,
    "README.md's performance tables differ from bench/results/*.json: run `deno task bench:readme`",
  );
});

Deno.test("bench readme: replaces only what is between the markers", () => {
  const doc = `intro\n${PERF_MARKERS.start}\nold | table\n${PERF_MARKERS.end}\nafter\n`;
  assert.equal(
    withPerformanceTables(doc, "NEW"),
    `intro\n${PERF_MARKERS.start}\n\nNEW\n\n${PERF_MARKERS.end}\nafter\n`,
  );
  assert.throws(() => withPerformanceTables("no markers", "x"), /markers/);
  assert.equal(performanceTables(() => null), "(no results committed)");
});

const machine = {
  cores: 2,
  cpuModel: "Test CPU",
  kernel: "6.1.0",
  deno: "2.9.6",
  postgres: "15.18 (x)",
};
const row = (n: number, rate: number, run: number, p50: number) => ({
  n,
  rate,
  run,
  latency: { p50, p99: p50 * 4 },
  lost: 0,
  sent: 10,
  committed: 10,
  cpu: { kickmonLoadPct: 40, kickmonUsPerTransition: 300 },
  rss: { peakMB: 90, steadyMB: 85 },
  batches: { mean: 3 },
  startup: { subscribedMs: 1200 },
  figures: {
    p50Ms: p50,
    p99Ms: p50 * 4,
    floorP50Ms: 1,
    floorP99Ms: 4,
    p50VsFloor: p50,
    p99VsFloor: p50,
    lost: 0,
    cpuPct: 40,
    cpuUsPerTransition: 300,
    peakRssMB: 90,
    steadyRssMB: 85,
    rowsPerCommit: 3,
    subscribedS: 1.2,
  },
});

Deno.test("bench readme: a K-run result shows median (min–max), machine and date", () => {
  const json = {
    generatedAt: "2026-12-02T05:00:00.000Z",
    mode: "default",
    runs: 3,
    durationSec: 30,
    perConnection: 1000,
    machine,
    sides: [{
      label: "A",
      ref: "HEAD",
      commit: "abc",
      v8Flags: "--lite-mode",
      floors: [{ tx: { p50: 1, p99: 4 } }, { tx: { p50: 2, p99: 5 } }, {
        tx: { p50: 1.5, p99: 6 },
      }],
      scenarios: [row(10000, 2000, 1, 3), row(10000, 2000, 2, 5), row(10000, 2000, 3, 4)],
    }],
  };
  const s = resultSection("default.json", "deno task bench", json);
  assert.match(
    s,
    /^\*\*`deno task bench`\*\* \(`bench\/results\/default\.json`, 2026-12-02, 3 runs/,
  );
  assert.match(s, /2 cores \(Test CPU\), Linux 6\.1\.0, Deno 2\.9\.6, PostgreSQL 15\.18/);
  assert.match(s, /p50 1\.50 \(1\.00–2\.00\) ms, p99 5\.00 \(4\.00–6\.00\) ms/);
  assert.match(s, /\| 10,000 \| 2,000 \| +3 \| +0 \| 4\.00 \(3\.00–5\.00\) \|/);
});

Deno.test("bench readme: a result from before --runs is one run", () => {
  const json = {
    generatedAt: "2026-11-21T22:36:39.273Z",
    mode: "full",
    durationSec: 30,
    perConnection: 1000,
    v8Flags: "--lite-mode",
    machine: { cores: 2, os: "linux 6.18.44", deno: "2.9.6" },
    floor: { tx: { p50: 1.5, p99: 6 } },
    scenarios: [{ ...row(1000, 100, 1, 3), cpu: { kickmonLoadPct: 10, kickmonLoadSec: 0.3 } }],
  };
  const s = resultSection("latest.json", "deno task bench --full", json);
  assert.match(s, /1 run\) on 2 cores \(CPU model not recorded\), Linux 6\.18\.44/);
  // 0.3 s over 10 transitions: 30,000 µs each; p50 3 on a floor of 1.5: 2.0×.
  assert.match(s, /\| 1,000 \| +100 \| +1 \| +0 \| +3\.00 \| +12\.0 \| +2\.0× \|/);
  assert.match(s, /\| +30000 \|/);
});
