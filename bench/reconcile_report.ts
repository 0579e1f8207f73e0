/**
 * The reconciliation-at-scale results (`bench/reconcile_scale.ts`) over
 * runs: per budget, the median and min–max of the pass duration, requests
 * per pass and live → online p50/p99 (see `bench/spread.ts`), as a table
 * in `deno fmt`'s layout and as one progress line per run.
 *
 * @module
 */
import type { Pass, ReconcileScaleResult } from "./reconcile_scale.ts";
import { fmtMs } from "./stats.ts";
import { fmtSpread, type Spread, spreadOf } from "./spread.ts";
import { markdownTable, thousands } from "./report.ts";

/**
 * One budget summarised over runs: pass duration (complete passes), requests
 * per pass, and live → online p50/p99 without and with a channel id, each a
 * {@linkcode Spread} over runs (ms, or requests).
 *
 * @example
 * ```ts
 * import type { ReconcileSummary } from "./reconcile_report.ts";
 * declare const s: ReconcileSummary;
 * console.log(s.budgetPerMin, s.passMs?.median);
 * ```
 */
export interface ReconcileSummary {
  readonly n: number;
  readonly budgetPerMin: number;
  readonly runs: number;
  readonly budgetBoundMs: number;
  /** Median over complete passes of each run, then spread over runs. */
  readonly passMs: Spread | null;
  readonly requestsPerPass: Spread | null;
  readonly noChannelP50Ms: Spread | null;
  readonly noChannelP99Ms: Spread | null;
  readonly noChannelMissed: Spread | null;
  readonly withChannelP50Ms: Spread | null;
  readonly withChannelP99Ms: Spread | null;
}

/**
 * Groups results by budget (first-seen order) and summarises each group.
 *
 * @example
 * ```ts
 * import { summarizeReconcile } from "./reconcile_report.ts";
 * summarizeReconcile([]); // []
 * ```
 */
export function summarizeReconcile(results: readonly ReconcileScaleResult[]): ReconcileSummary[] {
  const groups = new Map<number, ReconcileScaleResult[]>();
  for (const r of results) {
    const g = groups.get(r.budgetPerMin);
    if (g) g.push(r);
    else groups.set(r.budgetPerMin, [r]);
  }
  return [...groups.values()].map((g) => {
    const perRun = (f: (p: Pass) => number) =>
      spreadOf(g.map((r) => spreadOf(r.passes.filter((p) => p.complete).map(f))?.median));
    return {
      n: g[0].n,
      budgetPerMin: g[0].budgetPerMin,
      runs: g.length,
      budgetBoundMs: g[0].budgetBoundMs,
      passMs: perRun((p) => p.durationMs),
      requestsPerPass: perRun((p) => p.channelsRequests + p.otherRequests),
      noChannelP50Ms: spreadOf(g.map((r) => r.noChannel.p50)),
      noChannelP99Ms: spreadOf(g.map((r) => r.noChannel.p99)),
      noChannelMissed: spreadOf(g.map((r) => r.noChannelMissed)),
      withChannelP50Ms: spreadOf(g.map((r) => r.withChannel.p50)),
      withChannelP99Ms: spreadOf(g.map((r) => r.withChannel.p99)),
    };
  });
}

/**
 * The reconciliation table (deno fmt layout): per budget, pass duration (s),
 * requests per pass, live → online p50/p99 (s without a channel id, ms with
 * one), `median (min–max)` over runs.
 *
 * @example
 * ```ts
 * import { reconcileTable } from "./reconcile_report.ts";
 * console.log(reconcileTable([]));
 * ```
 */
export function reconcileTable(rows: readonly ReconcileSummary[]): string {
  const s = (v: Spread | null) =>
    v && { n: v.n, median: v.median / 1000, min: v.min / 1000, max: v.max / 1000 };
  return markdownTable(
    [
      "N",
      "budget req/min",
      "runs",
      "budget bound s",
      "pass s",
      "requests/pass",
      "no channel id: p50 s",
      "p99 s",
      "not online",
      "with channel id: p50 ms",
      "p99 ms",
    ],
    rows.map((r) => [
      thousands(r.n),
      String(r.budgetPerMin),
      String(r.runs),
      (r.budgetBoundMs / 1000).toFixed(0),
      fmtSpread(s(r.passMs), 0),
      fmtSpread(r.requestsPerPass, 0),
      fmtSpread(s(r.noChannelP50Ms), 0),
      fmtSpread(s(r.noChannelP99Ms), 0),
      fmtSpread(r.noChannelMissed, 0),
      fmtSpread(r.withChannelP50Ms),
      fmtSpread(r.withChannelP99Ms),
    ]),
  );
}

/**
 * One progress line for a finished run.
 *
 * @example
 * ```ts
 * import { reconcileLine } from "./reconcile_report.ts";
 * declare const r: import("./reconcile_scale.ts").ReconcileScaleResult;
 * console.log(reconcileLine(r));
 * ```
 */
export function reconcileLine(r: ReconcileScaleResult): string {
  const full = r.passes.filter((p) => p.complete);
  return `  ${full.length} complete passes: ${
    full.map((p) =>
      `${(p.durationMs / 1000).toFixed(0)} s/${p.channelsRequests + p.otherRequests} req`
    )
      .join(", ")
  }; no channel id: p50 ${fmtMs(r.noChannel.p50)} ms, p99 ${
    fmtMs(r.noChannel.p99)
  } ms (${r.noChannelMissed} not online); with channel id: p50 ${
    fmtMs(r.withChannel.p50)
  } ms, p99 ${fmtMs(r.withChannel.p99)} ms; /metrics: ${JSON.stringify(r.metrics)}` +
    (r.error ? `; ERROR ${r.error}` : "");
}
