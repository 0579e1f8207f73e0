/**
 * Figures over K runs of one scenario: the median and the spread (min–max)
 * of every figure the benchmark reports, each figure computed per run first
 * (a ratio to the floor is the run's latency ÷ that same run's floor), then
 * summarised. One run is noise; the spread says how much.
 *
 * Units are those of the figure's name: `Ms` milliseconds, `MB` 10^6 bytes,
 * `Pct` % of one core, `Us` microseconds, `S` seconds; ratios and counts
 * have none.
 *
 * @module
 */

/**
 * The median and range of one figure over runs (`n` runs had a value; runs
 * without one, e.g. a scenario that did not start, are left out).
 *
 * @example
 * ```ts
 * import type { Spread } from "./spread.ts";
 * const s: Spread = { n: 3, median: 2.1, min: 1.9, max: 2.6 };
 * ```
 */
export interface Spread {
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/**
 * The median (the mean of the two middle values for an even count) and the
 * range of the finite numbers among `values`.
 *
 * @returns the spread, or `null` when no value is a finite number.
 *
 * @example
 * ```ts
 * import { spreadOf } from "./spread.ts";
 * spreadOf([3, 1, 2]); // { n: 3, median: 2, min: 1, max: 3 }
 * spreadOf([null]);    // null
 * ```
 */
export function spreadOf(values: readonly (number | null | undefined)[]): Spread | null {
  const xs = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v))
    .sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = xs.length >> 1;
  const median = xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
  return { n: xs.length, median, min: xs[0], max: xs[xs.length - 1] };
}

/**
 * `a / b`, or `null` when either is missing or `b` is not positive.
 *
 * @example
 * ```ts
 * import { ratioOf } from "./spread.ts";
 * ratioOf(3, 1.5); // 2
 * ratioOf(3, 0);   // null
 * ```
 */
export function ratioOf(a: number | null | undefined, b: number | null | undefined): number | null {
  return typeof a === "number" && typeof b === "number" && Number.isFinite(a) && b > 0
    ? a / b
    : null;
}

/**
 * The per-run figures of one scenario run that are summarised over runs.
 * `p50VsFloor`/`p99VsFloor` are this run's latency ÷ this run's floor.
 *
 * @example
 * ```ts
 * import type { RunFigures } from "./spread.ts";
 * const f: Partial<RunFigures> = { p50Ms: 3.5, lost: 0 };
 * ```
 */
export interface RunFigures {
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly floorP50Ms: number | null;
  readonly floorP99Ms: number | null;
  readonly p50VsFloor: number | null;
  readonly p99VsFloor: number | null;
  readonly lost: number | null;
  readonly cpuPct: number | null;
  readonly cpuUsPerTransition: number | null;
  /** Sleeps of kickmon's main thread per transition (`null` in results from before issue 15's last session). */
  readonly wakesPerTransition: number | null;
  readonly peakRssMB: number | null;
  readonly steadyRssMB: number | null;
  readonly rowsPerCommit: number | null;
  readonly subscribedS: number | null;
}

/**
 * The names of {@linkcode RunFigures}, in the order tables show them.
 *
 * @example
 * ```ts
 * import { FIGURES } from "./spread.ts";
 * FIGURES.includes("cpuUsPerTransition"); // true
 * ```
 */
export const FIGURES: readonly (keyof RunFigures)[] = [
  "p50Ms",
  "p99Ms",
  "floorP50Ms",
  "floorP99Ms",
  "p50VsFloor",
  "p99VsFloor",
  "lost",
  "cpuPct",
  "cpuUsPerTransition",
  "wakesPerTransition",
  "peakRssMB",
  "steadyRssMB",
  "rowsPerCommit",
  "subscribedS",
];

/**
 * The fields of a scenario result {@linkcode runFigures} reads (a subset of
 * `ScenarioResult` in `bench/scenario.ts`, so old JSON results fit too).
 * Latencies in ms, CPU in % of one core, s and µs, RSS in MB.
 *
 * @example
 * ```ts
 * import type { ScenarioLike } from "./spread.ts";
 * const r: ScenarioLike = {
 *   latency: { p50: 3, p99: 12 }, lost: 0, sent: 100, committed: 100,
 *   cpu: { kickmonLoadPct: 40, kickmonLoadSec: 0.03 },
 *   rss: { peakMB: 90, steadyMB: 85 }, batches: { mean: 2 }, startup: { subscribedMs: 1200 },
 * };
 * ```
 */
export interface ScenarioLike {
  readonly latency: { readonly p50: number | null; readonly p99: number | null };
  readonly lost: number;
  readonly sent: number;
  readonly error?: string;
  readonly cpu: {
    readonly kickmonLoadPct: number | null;
    readonly kickmonLoadSec?: number | null;
    readonly kickmonUsPerTransition?: number | null;
    readonly kickmonWakesPerTransition?: number | null;
  };
  readonly committed?: number;
  readonly rss: { readonly peakMB: number | null; readonly steadyMB: number | null };
  readonly batches: { readonly mean: number | null };
  readonly startup: { readonly subscribedMs: number | null };
}

/**
 * The figures of one run of one scenario, given the floor measured in the
 * same run (ms; `null` when the floor was skipped).
 *
 * @example
 * ```ts
 * import { runFigures } from "./spread.ts";
 * declare const r: import("./scenario.ts").ScenarioResult;
 * runFigures(r, { p50: 1.5, p99: 5 }).p50VsFloor;
 * ```
 */
export function runFigures(
  r: ScenarioLike,
  floor: { readonly p50: number | null; readonly p99: number | null } | null,
): RunFigures {
  const started = !(r.error && r.sent === 0);
  const us = r.cpu.kickmonUsPerTransition ??
    (r.cpu.kickmonLoadSec != null && r.committed ? r.cpu.kickmonLoadSec * 1e6 / r.committed : null);
  return {
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    floorP50Ms: floor?.p50 ?? null,
    floorP99Ms: floor?.p99 ?? null,
    p50VsFloor: ratioOf(r.latency.p50, floor?.p50),
    p99VsFloor: ratioOf(r.latency.p99, floor?.p99),
    lost: started ? r.lost : null,
    cpuPct: r.cpu.kickmonLoadPct,
    cpuUsPerTransition: us,
    wakesPerTransition: r.cpu.kickmonWakesPerTransition ?? null,
    peakRssMB: r.rss.peakMB,
    steadyRssMB: r.rss.steadyMB,
    rowsPerCommit: r.batches.mean,
    subscribedS: r.startup.subscribedMs === null ? null : r.startup.subscribedMs / 1000,
  };
}

/**
 * Every figure of {@linkcode RunFigures} as a {@linkcode Spread} over runs
 * (`null`: no run had it).
 *
 * @example
 * ```ts
 * import type { FiguresSpread } from "./spread.ts";
 * declare const f: FiguresSpread;
 * console.log(f.p99Ms?.median, f.p99Ms?.min, f.p99Ms?.max);
 * ```
 */
export type FiguresSpread = { readonly [K in keyof RunFigures]: Spread | null };

/**
 * Summarises the figures of several runs of one scenario, figure by figure.
 *
 * @example
 * ```ts
 * import { spreadFigures } from "./spread.ts";
 * declare const runs: import("./spread.ts").RunFigures[];
 * spreadFigures(runs).p99Ms?.median;
 * ```
 */
export function spreadFigures(runs: readonly RunFigures[]): FiguresSpread {
  const out: Record<string, Spread | null> = {};
  for (const k of FIGURES) out[k] = spreadOf(runs.map((r) => r[k]));
  return out as FiguresSpread;
}

/**
 * Per figure, the spread of B ÷ A over paired runs (run k of B against run
 * k of A, interleaved in one invocation, so both saw the same machine).
 *
 * @throws {RangeError} when the two lists differ in length.
 *
 * @example
 * ```ts
 * import { ratioFigures } from "./spread.ts";
 * declare const a: import("./spread.ts").RunFigures[], b: typeof a;
 * ratioFigures(a, b).p50Ms?.median; // e.g. 0.8: B's p50 is 20 % lower
 * ```
 */
export function ratioFigures(
  a: readonly RunFigures[],
  b: readonly RunFigures[],
): FiguresSpread {
  if (a.length !== b.length) throw new RangeError(`ratioFigures: ${a.length} vs ${b.length} runs`);
  const out: Record<string, Spread | null> = {};
  for (const k of FIGURES) out[k] = spreadOf(a.map((ra, i) => ratioOf(b[i][k], ra[k])));
  return out as FiguresSpread;
}

/**
 * Formats a spread for a table: `median (min–max)`, or just the median when
 * the range prints as one value (one run, or runs that agree at this
 * precision); `-` for null. `digits` decimals (default: two below 10, one
 * below 100, none above); `suffix` (e.g. `×`) follows the median.
 *
 * @example
 * ```ts
 * import { fmtSpread } from "./spread.ts";
 * fmtSpread({ n: 3, median: 2.5, min: 2.25, max: 3.125 });      // "2.50 (2.25–3.13)"
 * fmtSpread({ n: 2, median: 4.01, min: 4, max: 4.02 }, 0);      // "4"
 * fmtSpread({ n: 2, median: 4, min: 3.1, max: 4.9 }, 1, "×");   // "4.0× (3.1–4.9)"
 * ```
 */
export function fmtSpread(s: Spread | null | undefined, digits?: number, suffix = ""): string {
  if (!s) return "-";
  const [med, lo, hi] = [s.median, s.min, s.max].map((v) => fmtNum(v, digits));
  return lo === hi ? med + suffix : `${med}${suffix} (${lo}–${hi})`;
}

/**
 * A number for a table: `digits` decimals, or by default two below 10, one
 * below 100, none above (thousands not separated).
 *
 * @example
 * ```ts
 * import { fmtNum } from "./spread.ts";
 * fmtNum(12.345); // "12.3"
 * ```
 */
export function fmtNum(v: number, digits?: number): string {
  const d = digits ?? (Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0);
  return v.toFixed(d);
}
