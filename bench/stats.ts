/**
 * Latency summaries for the benchmark: percentiles over a sample of
 * durations in milliseconds.
 *
 * @module
 */

/**
 * A percentile summary of a sample, every field in **milliseconds** (or
 * `null` when the sample is empty). `count` is the sample size.
 *
 * @example
 * ```ts
 * import type { LatencySummary } from "./stats.ts";
 * const s: LatencySummary = { count: 3, p50: 1, p95: 2, p99: 2, max: 2, mean: 1.3 };
 * ```
 */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
  readonly max: number | null;
  readonly mean: number | null;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of an ascending-sorted sample, nearest-rank
 * method (the smallest value with at least q of the sample at or below it).
 *
 * @returns the value, or `null` for an empty sample.
 * @throws {RangeError} when `q` is outside [0, 1].
 *
 * @example
 * ```ts
 * import { quantile } from "./stats.ts";
 * quantile(Float64Array.of(1, 2, 3, 4), 0.5); // 2
 * ```
 */
export function quantile(sorted: ArrayLike<number>, q: number): number | null {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: q must be in [0, 1], got ${q}`);
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1];
}

/**
 * Summarises a sample of durations (ms). The input is not modified.
 *
 * @example
 * ```ts
 * import { summarize } from "./stats.ts";
 * summarize([3, 1, 2]).p50; // 2
 * ```
 */
export function summarize(sample: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(sample).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p95: quantile(sorted, 0.95),
    p99: quantile(sorted, 0.99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
    mean: sorted.length ? sum / sorted.length : null,
  };
}

/**
 * Formats a duration in ms for tables: two decimals below 10 ms, one below
 * 100 ms, none above; `-` for null.
 *
 * @example
 * ```ts
 * import { fmtMs } from "./stats.ts";
 * fmtMs(1.234); // "1.23"
 * ```
 */
export function fmtMs(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "-";
  if (v < 10) return v.toFixed(2);
  if (v < 100) return v.toFixed(1);
  return v.toFixed(0);
}

/**
 * A sampler of exponential inter-arrival gaps for a Poisson process of
 * `ratePerSec` events per second, in ms. Deterministic for a given `seed`
 * (xorshift32), so two runs send the same schedule.
 *
 * @throws {RangeError} when `ratePerSec` is not positive.
 *
 * @example
 * ```ts
 * import { poissonGaps } from "./stats.ts";
 * const next = poissonGaps(2000, 1);
 * next(); // e.g. 0.31 (ms)
 * ```
 */
export function poissonGaps(ratePerSec: number, seed = 0x9e3779b9): () => number {
  if (!(ratePerSec > 0)) throw new RangeError(`rate must be > 0, got ${ratePerSec}`);
  const rand = xorshift(seed);
  const meanMs = 1000 / ratePerSec;
  return () => -Math.log(1 - rand()) * meanMs;
}

/**
 * A seeded uniform random number generator in [0, 1) (xorshift32).
 *
 * @example
 * ```ts
 * import { xorshift } from "./stats.ts";
 * const r = xorshift(42);
 * r(); // 0 ≤ r() < 1
 * ```
 */
export function xorshift(seed: number): () => number {
  let x = (seed >>> 0) || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}
