/**
 * The two-instance results (`bench/two_instances.ts`, `deno task bench
 * --two-instances`) over runs: per N and R, the median and min–max of the
 * latency (frame sent → first NOTIFY, ms), lost and duplicate transitions,
 * how the writes split between the two instances (the larger share, %) and
 * the standby's official-API requests (see `bench/spread.ts`), and the
 * README's table that puts them beside the one-instance row of
 * `deno task bench` (`bench/readme_table.ts`).
 *
 * @module
 */
import type { TwoInstanceResult } from "./two_instances.ts";
import { fmtSpread, type Spread, spreadOf } from "./spread.ts";
import { markdownTable, type ScenarioSummary, thousands } from "./report.ts";

/**
 * One run of the two-instance scenario as the bench writes it: the result,
 * or why the run failed.
 *
 * @example
 * ```ts
 * import type { TwoInstanceRun } from "./two_instance_report.ts";
 * const failed: TwoInstanceRun = { run: 2, n: 10_000, rate: 2_000, durationSec: 15, error: "…" };
 * ```
 */
export type TwoInstanceRun =
  | (TwoInstanceResult & { readonly run: number; readonly error?: undefined })
  | {
    readonly run: number;
    readonly n: number;
    readonly rate: number;
    readonly durationSec: number;
    readonly error: string;
  };

/**
 * One N and R summarised over the runs that completed: latency in ms,
 * counts, the larger instance's share of the writes in %.
 *
 * @example
 * ```ts
 * import type { TwoInstanceSummary } from "./two_instance_report.ts";
 * declare const s: TwoInstanceSummary;
 * console.log(s.p99Ms?.median, s.lost?.max);
 * ```
 */
export interface TwoInstanceSummary {
  readonly n: number;
  readonly rate: number;
  /** Runs that completed (failed ones are left out, and counted in `failed`). */
  readonly runs: number;
  readonly failed: number;
  readonly p50Ms: Spread | null;
  readonly p99Ms: Spread | null;
  readonly maxMs: Spread | null;
  readonly lost: Spread | null;
  readonly duplicates: Spread | null;
  readonly finalMismatches: Spread | null;
  /** The larger of the two instances' `kickmon_transitions_total`, % of both. */
  readonly largerSharePct: Spread | null;
  /** Official-API requests of the instance that was not the leader at the end. */
  readonly standbyApiRequests: Spread | null;
}

/** The instances of a run that were not leader at the end (both when none was seen as leader). */
function standbyRequests(r: TwoInstanceResult): number | null {
  const leaders = r.instances.filter((i) => i.role === "leader");
  if (leaders.length !== 1) return null;
  return r.instances.filter((i) => i.role !== "leader").reduce((a, i) => a + i.apiRequests, 0);
}

/**
 * Groups runs by N and R (first-seen order) and summarises each group.
 *
 * @example
 * ```ts
 * import { summarizeTwoInstances } from "./two_instance_report.ts";
 * summarizeTwoInstances([]); // []
 * ```
 */
export function summarizeTwoInstances(runs: readonly TwoInstanceRun[]): TwoInstanceSummary[] {
  const groups = new Map<string, TwoInstanceRun[]>();
  for (const r of runs) {
    const key = `${r.n}/${r.rate}`;
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  }
  return [...groups.values()].map((g) => {
    const ok = g.filter((r): r is TwoInstanceResult & { run: number } => !r.error);
    const of = (f: (r: TwoInstanceResult) => number | null) => spreadOf(ok.map(f));
    return {
      n: g[0].n,
      rate: g[0].rate,
      runs: ok.length,
      failed: g.length - ok.length,
      p50Ms: of((r) => r.latency.p50Ms),
      p99Ms: of((r) => r.latency.p99Ms),
      maxMs: of((r) => r.latency.maxMs),
      lost: of((r) => r.lost),
      duplicates: of((r) => r.duplicates),
      finalMismatches: of((r) => r.finalMismatches),
      largerSharePct: of((r) => {
        const total = r.instances.reduce((a, i) => a + i.committed, 0);
        return total > 0 ? 100 * Math.max(...r.instances.map((i) => i.committed)) / total : null;
      }),
      standbyApiRequests: of(standbyRequests),
    };
  });
}

/**
 * One progress line for a run.
 *
 * @example
 * ```ts
 * import { twoInstanceLine } from "./two_instance_report.ts";
 * declare const r: import("./two_instances.ts").TwoInstanceResult;
 * console.error(twoInstanceLine(r));
 * ```
 */
export function twoInstanceLine(r: TwoInstanceResult): string {
  return `  sent ${r.sent}, lost ${r.lost}, duplicates ${r.duplicates}, final mismatches ${r.finalMismatches}, ` +
    `first NOTIFY p50 ${r.latency.p50Ms} ms, p99 ${r.latency.p99Ms} ms, max ${r.latency.maxMs} ms; ` +
    r.instances.map((i, k) =>
      `instance ${k + 1}: ${i.role ?? "?"}, ${i.committed} committed, ${i.apiRequests} API requests`
    ).join("; ");
}

/**
 * The high-availability table (deno fmt layout): the one-instance row of
 * `deno task bench` (when given) and the two-instance rows, `median
 * (min–max)` over runs; latency in ms, the write split in %.
 *
 * @param ones one-instance summaries to show first, each with the label of
 *   its `instances` cell (e.g. `1, same runs`).
 *
 * @example
 * ```ts
 * import { twoInstanceTable } from "./two_instance_report.ts";
 * console.log(twoInstanceTable([], []));
 * ```
 */
export function twoInstanceTable(
  ones: readonly { readonly label: string; readonly one: ScenarioSummary }[],
  two: readonly TwoInstanceSummary[],
): string {
  const head = [
    "instances",
    "N",
    "R/s",
    "runs",
    "lost",
    "duplicates",
    "p50 ms",
    "p99 ms",
    "max ms",
    "larger write share %",
    "standby API requests",
  ];
  const body: string[][] = [];
  for (const { label, one } of ones) {
    const f = one.figures;
    body.push([
      label,
      thousands(one.n),
      thousands(one.rate),
      String(one.runs),
      fmtSpread(f.lost, 0),
      "-",
      fmtSpread(f.p50Ms),
      fmtSpread(f.p99Ms),
      "-",
      "100",
      "-",
    ]);
  }
  for (const s of two) {
    body.push([
      "2, same runs",
      thousands(s.n),
      thousands(s.rate),
      s.failed ? `${s.runs} (${s.failed} failed)` : String(s.runs),
      fmtSpread(s.lost, 0),
      fmtSpread(s.duplicates, 0),
      fmtSpread(s.p50Ms),
      fmtSpread(s.p99Ms),
      fmtSpread(s.maxMs),
      fmtSpread(s.largerSharePct, 0),
      fmtSpread(s.standbyApiRequests, 0),
    ]);
  }
  return markdownTable(head, body);
}
