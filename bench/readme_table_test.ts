import assert from "node:assert/strict";
import {
  HA_MARKERS,
  haSection,
  PERF_MARKERS,
  performanceTables,
  readResult,
  regenerate,
  resultSection,
  startupSection,
  withHaTable,
  withPerformanceTables,
} from "./readme_table.ts";
import { summarizeTwoInstances, type TwoInstanceRun } from "./two_instance_report.ts";
import { summarizeScenarios } from "./report.ts";

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
    wakesPerTransition: 0.5,
    peakRssMB: 90,
    steadyRssMB: 85,
    rowsPerCommit: 3,
    subscribedS: 1.2,
  },
});

/** A K-run result of side A only: one row per p50, the floors given or 1/4 ms each. */
const kRuns = (
  n: number,
  rate: number,
  p50s: number[],
  floors = p50s.map(() => ({ tx: { p50: 1, p99: 4 } })),
) => ({
  generatedAt: "2026-12-02T06:00:00.000Z",
  mode: "default",
  runs: p50s.length,
  durationSec: 30,
  perConnection: 1000,
  machine,
  sides: [{
    label: "A",
    ref: "HEAD",
    commit: "abcdef0",
    v8Flags: "--lite-mode",
    floors,
    scenarios: p50s.map((p, i) => row(n, rate, i + 1, p)),
  }],
});

Deno.test("bench readme: a K-run result shows median (min–max), machine and date", () => {
  const json = kRuns(10000, 2000, [3, 5, 4], [
    { tx: { p50: 1, p99: 4 } },
    { tx: { p50: 2, p99: 5 } },
    { tx: { p50: 1.5, p99: 6 } },
  ]);
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

const twoRun = (run: number, p50: number, lost = 0): TwoInstanceRun => ({
  run,
  n: 10_000,
  rate: 2_000,
  durationSec: 15,
  sent: 30_000,
  committed: 30_000 - lost,
  lost,
  duplicates: 0,
  finalMismatches: 0,
  latency: { p50Ms: p50, p99Ms: p50 * 10, maxMs: p50 * 20 },
  instances: [
    { role: "leader", committed: 18_000, apiRequests: 200 },
    { role: "standby", committed: 12_000 - lost, apiRequests: 0 },
  ],
});

Deno.test("bench readme: the two-instance table sits beside default.json's one-instance row", () => {
  const runs = [twoRun(1, 5), twoRun(2, 7, 3), twoRun(3, 6), {
    run: 4,
    n: 10_000,
    rate: 2_000,
    durationSec: 15,
    error: "two instances did not subscribe in time",
  }];
  const two = {
    generatedAt: "2026-12-02T06:30:00.000Z",
    mode: "two-instances",
    runs: 4,
    durationSec: 15,
    machine,
    commit: "1234567890",
    v8Flags: "--lite-mode",
    perConnection: 1000,
    summary: summarizeTwoInstances(runs),
    oneInstance: {
      summary: summarizeScenarios([row(10_000, 2_000, 1, 2), row(10_000, 2_000, 2, 2.5)]),
    },
  };
  const files: Record<string, unknown> = {
    "two_instances.json": two,
    "default.json": kRuns(10_000, 2_000, [3, 5, 4]),
  };
  const read = (f: string) => (f in files ? JSON.stringify(files[f]) : null);
  const s = haSection(read);
  assert.match(s, /`bench\/results\/two_instances\.json`, 2026-12-02, 4 runs.*commit 1234567/);
  assert.match(s, /1,000 channels per Pusher connection/);
  assert.match(s, /`default\.json` row is `deno task bench` \(`bench\/results\/default\.json`/);
  // The same-run one-instance row first (p50 median 2.25 of 2, 2.5), then default.json's
  // (median 4 of 3, 4, 5), then the two instances.
  const lines = s.split("\n").filter((l) => /^\| +[12], /.test(l));
  assert.equal(lines.length, 3, s);
  assert.match(
    lines[0],
    /^\| +1, same runs \| 10,000 \| 2,000 \| +2 \| +0 \| +- \| 2\.25 \(2\.00–2\.50\) \|/,
  );
  assert.match(
    lines[1],
    /^\| 1, `default\.json` \| 10,000 \| 2,000 \| +3 \| +0 \| +- \| 4\.00 \(3\.00–5\.00\) \|/,
  );
  // Two instances: three runs completed (one failed), lost 0 (0–3), the leader's 60 % share, standby 0.
  assert.match(
    lines[2],
    /^\| +2, same runs \| 10,000 \| 2,000 \| 3 \(1 failed\) \| 0 \(0–3\) \| +0 \| 6\.00 \(5\.00–7\.00\) \|/,
  );
  assert.match(s, /\| +60 \| +0 \|$/m);
  assert.equal(haSection(() => null), "(no two-instance result committed)");

  const doc = `a\n${HA_MARKERS.start}\nold\n${HA_MARKERS.end}\nb\n`;
  assert.equal(withHaTable(doc, "NEW"), `a\n${HA_MARKERS.start}\n\nNEW\n\n${HA_MARKERS.end}\nb\n`);
  assert.throws(() => withHaTable("no markers", "x"), /high-availability/);
});

Deno.test("bench readme: the start-up table shows each spacing's subscribe time and RSS", () => {
  const startup = (spacing: number | undefined, subscribedS: number[], peak: number[]) => {
    const j = kRuns(50_000, 100, subscribedS.map(() => 3));
    const scenarios = j.sides[0].scenarios.map((r, i) => ({
      ...r,
      connections: 200,
      startup: { startedMs: 1000, subscribedMs: subscribedS[i] * 1000 },
      rss: { idleMB: peak[i] - 5, peakMB: peak[i], steadyMB: peak[i] - 2 },
    }));
    return {
      ...j,
      perConnection: 250,
      ...(spacing === undefined ? {} : { connectSpacingMs: spacing }),
      sides: [{ ...j.sides[0], scenarios }],
    };
  };
  const after = startup(15, [4, 3.8, 4.1], [190, 200, 210]);
  const before = startup(undefined, [21, 20.5, 21.5], [160, 165, 170]);
  const files: Record<string, unknown> = {
    "startup-100ms.json": before,
    // A --compare result: this tree (A) and the commit before the setting (B), interleaved.
    "startup.json": {
      ...after,
      sides: [after.sides[0], {
        ...before.sides[0],
        label: "B",
        ref: "4f87413",
        commit: "4f87413",
      }],
    },
  };
  const s = startupSection((f) => (f in files ? JSON.stringify(files[f]) : null))!;
  const rows = s.split("\n").filter((l) => l.startsWith("| `startup"));
  assert.equal(rows.length, 3, s);
  // A result without connectSpacingMs is from the fixed 100 ms; missing files are skipped.
  assert.match(
    rows[0],
    /^\| `startup-100ms\.json` +\| abcdef0 +\| +100 \| 50,000 \| +250 \| +200 \| +3 \| +1\.0 \| 21\.0 \(20\.5–21\.5\) \| 160 \(155–165\) \| 165 \(160–170\) \|/,
  );
  assert.match(
    rows[1],
    /^\| `startup\.json` A +\| abcdef0 +\| +15 \| 50,000 \| +250 \| +200 \| +3 \| +1\.0 \| +4\.0 \(3\.8–4\.1\) \|/,
  );
  assert.match(
    rows[2],
    /^\| `startup\.json` B +\| 4f87413 +\| +100 \(fixed\) \| 50,000 \|.*\| 21\.0 \(20\.5–21\.5\) \|/,
  );
  assert.doesNotMatch(s, /startup-20ms/);
  assert.match(s, /--connect-spacing 100 --out bench\/results\/startup-100ms\.json/);
  assert.match(
    s,
    /`startup\.json` \(2026-12-02, 3 runs, median \(min–max\), A\/B interleaved\): `deno task bench .*--compare 4f87413/,
  );
  assert.equal(startupSection(() => null), null);
});
