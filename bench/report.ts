/**
 * Summary tables of a benchmark over K runs, as Markdown laid out exactly
 * as `deno fmt` lays out a table (so the README's generated tables survive
 * formatting unchanged): one row per scenario, every figure `median
 * (min–max)` over the runs (see `bench/spread.ts`), and for `--compare` the
 * ratio B ÷ A per figure over paired runs.
 *
 * @module
 */
import { type FiguresSpread, fmtSpread, type RunFigures, spreadFigures } from "./spread.ts";

/**
 * One scenario (N, R) summarised over its runs.
 *
 * @example
 * ```ts
 * import type { ScenarioSummary } from "./report.ts";
 * declare const s: ScenarioSummary;
 * console.log(s.n, s.rate, s.figures.p50Ms?.median);
 * ```
 */
export interface ScenarioSummary {
  readonly n: number;
  /** Offered transitions per second. */
  readonly rate: number;
  /** Runs that produced a result. */
  readonly runs: number;
  readonly figures: FiguresSpread;
}

/**
 * Groups per-run figures by (N, R), in first-seen order, and summarises each
 * group.
 *
 * @example
 * ```ts
 * import { summarizeScenarios } from "./report.ts";
 * declare const rows: { n: number; rate: number; figures: import("./spread.ts").RunFigures }[];
 * summarizeScenarios(rows)[0].figures.p99Ms;
 * ```
 */
export function summarizeScenarios(
  rows: readonly { readonly n: number; readonly rate: number; readonly figures: RunFigures }[],
): ScenarioSummary[] {
  const groups = new Map<string, { n: number; rate: number; runs: RunFigures[] }>();
  for (const r of rows) {
    const key = `${r.n}/${r.rate}`;
    let g = groups.get(key);
    if (!g) groups.set(key, g = { n: r.n, rate: r.rate, runs: [] });
    g.runs.push(r.figures);
  }
  return [...groups.values()].map((g) => ({
    n: g.n,
    rate: g.rate,
    runs: g.runs.length,
    figures: spreadFigures(g.runs),
  }));
}

/**
 * A Markdown table in `deno fmt`'s layout: cells padded to the column width,
 * right-aligned columns padded on the left with a `---:` rule, left-aligned
 * ones on the right with `---`.
 *
 * @param align per column, `"r"` (default) or `"l"`.
 *
 * @example
 * ```ts
 * import { markdownTable } from "./report.ts";
 * markdownTable(["N", "p50 ms"], [["1,000", "2.5"]]);
 * // "|     N | p50 ms |\n| ----: | -----: |\n| 1,000 |    2.5 |"
 * ```
 */
export function markdownTable(
  head: readonly string[],
  body: readonly (readonly string[])[],
  align: readonly ("l" | "r")[] = [],
): string {
  const len = (s: string) => [...s].length;
  const widths = head.map((h, i) => Math.max(3, len(h), ...body.map((b) => len(b[i] ?? ""))));
  const cell = (s: string, i: number) => {
    const pad = " ".repeat(widths[i] - len(s));
    return align[i] === "l" ? s + pad : pad + s;
  };
  const line = (cells: readonly string[]) =>
    `| ${head.map((_, i) => cell(cells[i] ?? "", i)).join(" | ")} |`;
  const rule = `| ${
    widths.map((w, i) => align[i] === "l" ? "-".repeat(w) : "-".repeat(w - 1) + ":").join(" | ")
  } |`;
  return [line(head), rule, ...body.map(line)].join("\n");
}

/**
 * `12345` → `"12,345"` (the README's style for counts).
 *
 * @example
 * ```ts
 * import { thousands } from "./report.ts";
 * thousands(10000); // "10,000"
 * ```
 */
export function thousands(v: number): string {
  return String(Math.round(v)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** One column of a scenario table: its heading and how a row's cell is written. */
type Column = readonly [head: string, cell: (r: ScenarioSummary) => string];

/** The columns naming a scenario: N and R. */
const SCENARIO_KEY: readonly Column[] = [
  ["N", (r) => thousands(r.n)],
  ["R/s", (r) => thousands(r.rate)],
];

/** A markdown table of `rows`, one cell per column. */
function tableOf(rows: readonly ScenarioSummary[], columns: readonly Column[]): string {
  return markdownTable(columns.map((c) => c[0]), rows.map((r) => columns.map((c) => c[1](r))));
}

/**
 * The summary table: one row per scenario, `median (min–max)` per figure.
 * Latencies in ms, CPU in % of one core and µs per transition, RSS in MB.
 *
 * @example
 * ```ts
 * import { summaryTable } from "./report.ts";
 * console.log(summaryTable([]));
 * ```
 */
export function summaryTable(rows: readonly ScenarioSummary[]): string {
  const f = (r: ScenarioSummary) => r.figures;
  return tableOf(rows, [
    ...SCENARIO_KEY,
    ["runs", (r) => String(r.runs)],
    ["lost", (r) => fmtSpread(f(r).lost, 0)],
    ["p50 ms", (r) => fmtSpread(f(r).p50Ms)],
    ["p99 ms", (r) => fmtSpread(f(r).p99Ms)],
    ["p50/floor", (r) => fmtSpread(f(r).p50VsFloor, 1, "×")],
    ["p99/floor", (r) => fmtSpread(f(r).p99VsFloor, 1, "×")],
    ["kickmon CPU %", (r) => fmtSpread(f(r).cpuPct, 0)],
    ["CPU µs/transition", (r) => fmtSpread(f(r).cpuUsPerTransition, 0)],
    ["wakes/transition", (r) => fmtSpread(f(r).wakesPerTransition, 2)],
    ["peak RSS MB", (r) => fmtSpread(f(r).peakRssMB, 0)],
    ["rows/commit", (r) => fmtSpread(f(r).rowsPerCommit, 1)],
    ["subscribed s", (r) => fmtSpread(f(r).subscribedS, 1)],
  ]);
}

/**
 * The `--compare` table: per scenario, B ÷ A of each figure over paired runs
 * (`median (min–max)`; below 1 means B is lower: faster, leaner).
 *
 * @example
 * ```ts
 * import { compareTable } from "./report.ts";
 * console.log(compareTable([]));
 * ```
 */
export function compareTable(rows: readonly ScenarioSummary[]): string {
  const ratio =
    (pick: (f: ScenarioSummary["figures"]) => Parameters<typeof fmtSpread>[0]) =>
    (r: ScenarioSummary) => fmtSpread(pick(r.figures), 2);
  return tableOf(rows, [
    ...SCENARIO_KEY,
    ["pairs", (r) => String(r.runs)],
    ["floor p50 B/A", ratio((f) => f.floorP50Ms)],
    ["p50 B/A", ratio((f) => f.p50Ms)],
    ["p99 B/A", ratio((f) => f.p99Ms)],
    ["p50/floor B/A", ratio((f) => f.p50VsFloor)],
    ["CPU µs/transition B/A", ratio((f) => f.cpuUsPerTransition)],
    ["peak RSS B/A", ratio((f) => f.peakRssMB)],
    ["rows/commit B/A", ratio((f) => f.rowsPerCommit)],
  ]);
}
