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
 * - `--max-old-space-size`: the old generation's bound, from the memory the
 *   service may use (`KICKMON_MEMORY_MAX` at build time, MiB, default 256 =
 *   the unit's `MemoryMax=256M`) minus {@linkcode NON_HEAP_MIB}. V8 sizes
 *   its heap limit from the machine's RAM, not from the cgroup (~986 MB on a
 *   4 GB VM, 4.4 GB on a 24 GB one, under `MemoryMax=256M` either way), so
 *   near the cap the kernel's OOM killer ended kickmon before V8 had any
 *   reason to collect. With the bound, V8 collects harder as it nears it,
 *   and a heap that really outgrows it ends with V8's own "heap out of
 *   memory" (exit; systemd restarts) instead of a SIGKILL loop. Deno 2 lets
 *   no process read `/proc` or `/sys/fs/cgroup` without `--allow-all`, and a
 *   compiled binary ignores `DENO_V8_FLAGS`, so the bound cannot be sized
 *   from the cgroup at start: it is baked in, and a unit with another
 *   `MemoryMax=` needs a build with the same `KICKMON_MEMORY_MAX`.
 *
 * @example
 * ```ts
 * import { V8_FLAGS } from "./v8_flags.ts";
 * const arg = `--v8-flags=${V8_FLAGS.join(",")}`;
 * ```
 *
 * @module
 */

/** The unit's `MemoryMax=` (systemd/kickmon.service), MiB: the default memory budget. */
export const DEFAULT_MEMORY_MAX_MIB = 256;

/**
 * Memory kickmon uses outside V8's old generation, MiB, kept free under the
 * budget: the deno executable's mapped code (~40 MB `RssFile`, charged to
 * the cgroup), V8's young generation and code space, native buffers
 * (sockets, TLS, postgres.js) and malloc arenas (README "Memory").
 */
export const NON_HEAP_MIB = 96;

/**
 * The old generation's bound for a memory budget: `memoryMaxMib` −
 * {@linkcode NON_HEAP_MIB}, at least 64 MiB.
 *
 * @param memoryMaxMib the service's memory limit, MiB.
 * @returns MiB, for `--max-old-space-size`.
 *
 * @example
 * ```ts
 * oldSpaceMib(256); // 160
 * ```
 */
export function oldSpaceMib(memoryMaxMib: number): number {
  return Math.max(64, Math.floor(memoryMaxMib - NON_HEAP_MIB));
}

/**
 * kickmon's V8 flags for a memory budget.
 *
 * @param memoryMaxMib the service's memory limit, MiB (default the unit's 256).
 * @returns `--name[=value]` strings.
 *
 * @example
 * ```ts
 * v8Flags(512).at(-1); // "--max-old-space-size=416"
 * ```
 */
export function v8Flags(memoryMaxMib: number = DEFAULT_MEMORY_MAX_MIB): string[] {
  return [
    "--max-semi-space-size=1",
    "--heap-growing-percent=20",
    "--lite-mode",
    `--max-old-space-size=${oldSpaceMib(memoryMaxMib)}`,
  ];
}

/**
 * Raised for a `KICKMON_MEMORY_MAX` that is not a size.
 *
 * @example
 * ```ts
 * try {
 *   memoryMaxMibFromEnv({ KICKMON_MEMORY_MAX: "lots" });
 * } catch (e) {
 *   if (e instanceof MemoryMaxError) console.error(e.message);
 * }
 * ```
 */
export class MemoryMaxError extends Error {
  /**
   * @param message what is wrong with the value.
   * @param options `cause`, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MemoryMaxError";
  }
}

/**
 * Reads the build-time memory budget `KICKMON_MEMORY_MAX`: MiB, or a size
 * as systemd writes `MemoryMax=` (`256M`, `1G`, `524288K`).
 *
 * @returns MiB; {@linkcode DEFAULT_MEMORY_MAX_MIB} when unset.
 * @throws {MemoryMaxError} when the value is not such a size, or below 160 MiB.
 *
 * @example
 * ```ts
 * memoryMaxMibFromEnv({ KICKMON_MEMORY_MAX: "1G" }); // 1024
 * ```
 */
export function memoryMaxMibFromEnv(env: Readonly<Record<string, string | undefined>>): number {
  const v = env.KICKMON_MEMORY_MAX?.trim();
  if (!v) return DEFAULT_MEMORY_MAX_MIB;
  const m = v.match(/^(\d+(?:\.\d+)?)([KMGT]?)$/i);
  if (!m) {
    throw new MemoryMaxError(
      `KICKMON_MEMORY_MAX="${v}" is not a size (MiB, or 256M / 1G as in MemoryMax=)`,
    );
  }
  const factor: Record<string, number> = { "": 1, K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 };
  const mib = Number(m[1]) * factor[m[2].toUpperCase()];
  if (mib < 160) throw new MemoryMaxError(`KICKMON_MEMORY_MAX=${v} is below 160 MiB`);
  return mib;
}

/** kickmon's V8 flags for the unit's `MemoryMax=256M` (see the module doc). */
export const V8_FLAGS: readonly string[] = v8Flags();
