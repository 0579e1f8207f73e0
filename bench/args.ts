/**
 * The benchmark's command line (`deno task bench …`, see `bench/bench.ts`
 * for what each flag measures): one parser, {@linkcode parseBenchArgs},
 * and the defaults of each mode.
 *
 * @module
 */
import { V8_FLAGS } from "../scripts/v8_flags.ts";

/**
 * Parsed command line of the benchmark.
 *
 * @example
 * ```ts
 * import { parseBenchArgs } from "./args.ts";
 * parseBenchArgs(["--quick"]).ns; // [1000]
 * ```
 */
export interface BenchArgs {
  readonly ns: number[];
  readonly rates: number[];
  readonly durationSec: number;
  readonly mode: "default" | "quick" | "full" | "custom" | "reconcile" | "two-instances";
  readonly perConnection: number;
  readonly floorIterations: number;
  readonly out: string;
  readonly cpuProfDir: string | undefined;
  readonly seed: number;
  /** V8 flags for the kickmon process, comma-separated ("" = none). Default: the shipped {@linkcode V8_FLAGS}. */
  readonly v8Flags: string;
  /**
   * Run kickmon from `main.ts` (`--source`) instead of the default: the bundle
   * that `deno task compile` compiles into the binary, built for the run.
   */
  readonly source: boolean;
  /**
   * Measure the first start of a new bundle (`--cold`: V8 compiles it from
   * source and writes its code cache) instead of a later start (the default:
   * one `kickmon --version` runs first, as any earlier start of the service would).
   */
  readonly cold: boolean;
  /** Extra `deno run` arguments for the kickmon process (space-separated on the command line). */
  readonly kickmonDenoArgs: string[];
  /** `MONITORING_LIST_FOLLOW` for kickmon (`--list-follow`): LISTEN on the trigger, or poll. */
  readonly listFollow: "trigger" | "poll";
  /**
   * Runs of every scenario (`--runs K`), each with its own floor first; the
   * figures are reported as median and min–max. Default 3 (`--full` and the
   * plain run), 1 (`--quick`, custom `--n`/`--rate`).
   */
  readonly runs: number;
  /** `--compare REF`: also run REF's kickmon, interleaved A/B per run; null without. */
  readonly compare: string | null;
  /** Whether `--v8-flags` was given (then both sides of `--compare` use it). */
  readonly v8FlagsGiven: boolean;
  /** `--reconcile-scale`: the reconciliation-at-scale scenario instead (`bench/reconcile_scale.ts`). */
  readonly reconcileScale: boolean;
  /**
   * `--two-instances`: the two-instance scenario instead (`bench/two_instances.ts`; default
   * N = 10,000, R = 2,000, 3 runs), written to `bench/results/two_instances.json`.
   */
  readonly twoInstances: boolean;
  /** `--budget a,b`: `KICK_API_MAX_REQUESTS_PER_MINUTE` values for `--reconcile-scale`. Default 60,100. */
  readonly budgets: number[];
  /** `--api-latency MIN-MAX`: the simulated API's answer delay for `--reconcile-scale`, ms. Default 100-300. */
  readonly apiLatencyMs: readonly [number, number];
  /** `--live K`: streamers that go live during `--reconcile-scale`. Default min(200, N/10). */
  readonly live: number | null;
  /**
   * `--connect-spacing MS`: kickmon's `KICK_PUSHER_CONNECT_SPACING` (ms between two Pusher
   * connection attempts); null: kickmon's default.
   */
  readonly connectSpacingMs: number | null;
}

const FULL_NS = [1_000, 10_000, 50_000];
const FULL_RATES = [100, 1_000, 2_000, 5_000];
const ROOT = new URL("../", import.meta.url).pathname;

function listFollowArg(v: string | true | undefined): "trigger" | "poll" {
  if (v === undefined) return "trigger";
  if (v === "trigger" || v === "poll") return v;
  throw new Error("--list-follow: trigger or poll");
}

/**
 * Parses the flags described in the module doc.
 *
 * @throws {Error} on an unknown flag or a value that is not a positive number.
 *
 * @example
 * ```ts
 * import { parseBenchArgs } from "./args.ts";
 * parseBenchArgs(["--n", "1000,10000", "--rate=500"]).ns; // [1000, 10000]
 * ```
 */
export function parseBenchArgs(argv: string[]): BenchArgs {
  const flags = new Map<string, string | true>();
  const valued = new Set([
    "n",
    "rate",
    "duration",
    "per-connection",
    "floor-iterations",
    "out",
    "cpu-prof",
    "seed",
    "v8-flags",
    "kickmon-deno-args",
    "list-follow",
    "runs",
    "compare",
    "budget",
    "api-latency",
    "live",
    "connect-spacing",
  ]);
  const known = new Set([
    ...valued,
    "quick",
    "full",
    "source",
    "cold",
    "help",
    "reconcile-scale",
    "two-instances",
  ]);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf("=");
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    if (!known.has(name)) throw new Error(`unknown flag --${name}`);
    if (valued.has(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new Error(`--${name} needs a value`);
      flags.set(name, v);
    } else flags.set(name, true);
  }
  if (flags.has("help")) {
    console.log(
      "deno task bench [--quick | --full] [--n N[,N…]] [--rate R[,R…]] [--duration S]\n" +
        "                [--per-connection C] [--floor-iterations I] [--out FILE]\n" +
        "                [--cpu-prof DIR] [--seed S] [--v8-flags A,B] [--source | --cold]\n" +
        '                [--kickmon-deno-args "…"] [--list-follow trigger|poll]\n' +
        "                [--runs K] [--compare REF] [--connect-spacing MS]\n" +
        "deno task bench --reconcile-scale [--n N] [--budget 60,100] [--api-latency 100-300]\n" +
        "                [--live K] [--runs K] [--out FILE]\n" +
        "deno task bench --two-instances [--n N] [--rate R] [--duration S] [--runs K] [--out FILE]",
    );
    Deno.exit(0);
  }
  const list = (name: string): number[] | undefined => {
    const v = flags.get(name);
    if (v === undefined) return undefined;
    const xs = String(v).split(",").map((s) => Number(s.trim().replace(/_/g, "")));
    for (const x of xs) {
      if (!(Number.isInteger(x) && x > 0)) throw new Error(`--${name}: not a positive integer`);
    }
    return xs;
  };
  const one = (name: string, def: number, allowZero = false): number => {
    const v = flags.get(name);
    if (v === undefined) return def;
    const x = Number(v);
    if (!(Number.isFinite(x) && (x > 0 || (allowZero && x === 0)))) {
      throw new Error(`--${name}: not a positive number`);
    }
    return x;
  };
  const quick = flags.has("quick");
  const full = flags.has("full");
  if (quick && full) throw new Error("--quick and --full exclude each other");
  const reconcileScale = flags.has("reconcile-scale");
  const twoInstances = flags.has("two-instances");
  if (twoInstances && (reconcileScale || quick || full)) {
    throw new Error("--two-instances runs alone (not with --reconcile-scale, --quick or --full)");
  }
  const mode = reconcileScale
    ? "reconcile"
    : twoInstances
    ? "two-instances"
    : quick
    ? "quick"
    : full
    ? "full"
    : flags.has("n") || flags.has("rate")
    ? "custom"
    : "default";
  const compare = flags.has("compare") ? String(flags.get("compare")) : null;
  if (compare !== null && flags.has("source")) {
    throw new Error("--compare runs bundles: it cannot be combined with --source");
  }
  if (compare !== null && (reconcileScale || twoInstances)) {
    throw new Error("--compare is not available for --reconcile-scale or --two-instances");
  }
  const latency = String(flags.get("api-latency") ?? "100-300").split("-").map(Number);
  if (
    latency.length !== 2 || !latency.every((x) => Number.isFinite(x) && x >= 0) ||
    latency[0] > latency[1]
  ) {
    throw new Error("--api-latency: MIN-MAX in ms, e.g. 100-300");
  }
  const runs = one("runs", quick || mode === "custom" || reconcileScale ? 1 : 3);
  if (!Number.isInteger(runs)) throw new Error("--runs: not a positive integer");
  return {
    ns: list("n") ?? (full ? FULL_NS : quick ? [1_000] : [10_000]),
    rates: list("rate") ?? (full ? FULL_RATES : quick ? [500] : [2_000]),
    durationSec: one("duration", quick ? 5 : 30),
    mode,
    perConnection: one("per-connection", 1000),
    floorIterations: one("floor-iterations", quick ? 1000 : 2000, true),
    // Only the full table is the reference result; other modes do not overwrite it
    // (nor does a --reconcile-scale check at another N overwrite the N=10,000 one).
    out: String(
      flags.get("out") ??
        `${ROOT}bench/results/${
          full
            ? "latest"
            : reconcileScale && (list("n")?.[0] ?? 10_000) !== 10_000
            ? "reconcile-check"
            : twoInstances
            ? "two_instances"
            : mode
        }.json`,
    ),
    cpuProfDir: flags.has("cpu-prof") ? String(flags.get("cpu-prof")) : undefined,
    seed: one("seed", 1),
    v8Flags: flags.has("v8-flags") ? String(flags.get("v8-flags")) : V8_FLAGS.join(","),
    source: flags.has("source"),
    cold: flags.has("cold"),
    kickmonDenoArgs: flags.has("kickmon-deno-args")
      ? String(flags.get("kickmon-deno-args")).split(" ").filter(Boolean)
      : [],
    listFollow: listFollowArg(flags.get("list-follow")),
    runs,
    compare,
    v8FlagsGiven: flags.has("v8-flags"),
    reconcileScale,
    twoInstances,
    budgets: list("budget") ?? [60, 100],
    apiLatencyMs: [latency[0], latency[1]],
    live: flags.has("live") ? one("live", 1) : null,
    connectSpacingMs: flags.has("connect-spacing") ? one("connect-spacing", 0, true) : null,
  };
}
