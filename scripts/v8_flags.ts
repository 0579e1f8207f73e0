/**
 * The V8 flags kickmon ships with: baked into the binary by
 * `deno task compile` (`deno compile --v8-flags=…`), and passed by
 * `deno task bench` to the kickmon process it measures. For `deno run`, pass
 * them yourself: `deno run --v8-flags=--max-semi-space-size=1,--heap-growing-percent=20,--lite-mode …`
 * (or set `DENO_V8_FLAGS`).
 *
 * Why (measured with `deno task bench`, N = 10,000 streamers, 2,000
 * transitions/s, see README "Performance"): V8 sizes the heap for throughput
 * by default. Subscribing 10,000 Pusher channels at start allocates in a
 * burst, the young generation grows to its 16 MB × 2 maximum and the old
 * generation is allowed to triple before the next full collection, and the
 * pages V8 took are not given back to the OS: the process stays at ~210 MB
 * resident although ~30 MB of it is live. The two heap flags below bring it
 * to ~111–115 MB for a few more (short) collections, and `--lite-mode` to
 * ~96 MB; latency did not change beyond the run-to-run noise.
 *
 * - `--max-semi-space-size=1`: young generation capped at 1 MB per
 *   semi-space (scavenges stay sub-millisecond; more objects get promoted).
 * - `--heap-growing-percent=20`: after a full collection the old generation
 *   may grow 20 % before the next one (V8's default factor is up to 4×).
 * - `--lite-mode`: no optimizing compilers (V8's interpreter and baseline
 *   code only). Measured on the bundle the binary is compiled from, at
 *   N = 10,000 and 2,000 transitions/s: peak RSS 111 → 96–99 MB, CPU 38 →
 *   56 % of one core, p99 within the run-to-run noise (14.5 → 19.9 ms); at
 *   5,000/s the CPU sets the tail (p99 38 → 103 ms). kickmon mostly waits on
 *   sockets and PostgreSQL; at real-world rates (a few transitions per
 *   second) the CPU difference is a fraction of a percent, while the memory
 *   is saved on every deployment. Remove it for thousands of transitions/s.
 *
 * No hard heap limit is set (`--max-old-space-size`), so a larger list can
 * never make kickmon run out of heap because of these flags.
 *
 * @example
 * ```ts
 * import { V8_FLAGS } from "./v8_flags.ts";
 * const arg = `--v8-flags=${V8_FLAGS.join(",")}`;
 * ```
 *
 * @module
 */

/** kickmon's V8 flags (see the module doc), each a `--name[=value]` string. */
export const V8_FLAGS: readonly string[] = [
  "--max-semi-space-size=1",
  "--heap-growing-percent=20",
  "--lite-mode",
];
