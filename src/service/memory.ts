/**
 * V8's heap limit against the memory kickmon may use.
 *
 * V8 sizes its heap limit from the machine's RAM, not from a cgroup's
 * `memory.max` (systemd's `MemoryMax=`): without a bound, a kickmon under
 * `MemoryMax=256M` believed it had ~1 GB, and near the cap the kernel killed
 * it instead of V8 collecting. The build bakes a bound
 * (`--max-old-space-size`, scripts/v8_flags.ts); at start kickmon logs the
 * limit it got, and, where it may read its cgroup (from source with `-A`;
 * Deno 2 refuses `/proc` and `/sys` to the narrow permissions of the
 * binary), warns when the heap may grow past the cgroup's limit.
 *
 * @module
 */
import v8 from "node:v8";

/**
 * Memory V8 and the cgroup allow, bytes.
 *
 * @example
 * ```ts
 * const m: MemoryLimits = { heapLimitBytes: 171e6, cgroupLimitBytes: 268435456 };
 * ```
 */
export interface MemoryLimits {
  /** V8's `heap_size_limit` (old + young generation + large objects). */
  readonly heapLimitBytes: number;
  /** The cgroup's `memory.max` (v2) or `memory.limit_in_bytes` (v1); null: none or unreadable. */
  readonly cgroupLimitBytes: number | null;
}

/**
 * Room outside V8's heap the process needs, bytes (deno's mapped code,
 * native buffers, malloc arenas; see `NON_HEAP_MIB` in scripts/v8_flags.ts,
 * which keeps 96 MiB of which V8's young generation takes ~3).
 */
export const NON_HEAP_BYTES = 90 * 1024 * 1024;

/** Values at or above this mean "no limit" (cgroup v1 writes 2^63 − 4096). */
const UNLIMITED = 2 ** 60;

/**
 * Reads this process's cgroup memory limit: cgroup v2 (`0::/path` in
 * `/proc/self/cgroup` → `memory.max`), else v1 (the `memory` controller →
 * `memory.limit_in_bytes`).
 *
 * @param root prefix of `/proc` and `/sys` (a test's directory), default `""`.
 * @returns bytes, or null for no limit (`max`), no cgroup, or a read this
 *   build may not do. Never throws.
 *
 * @example
 * ```ts
 * await cgroupMemoryLimit(); // 268435456 under MemoryMax=256M
 * ```
 */
export async function cgroupMemoryLimit(root = ""): Promise<number | null> {
  let lines: string[];
  try {
    lines = (await Deno.readTextFile(`${root}/proc/self/cgroup`)).split("\n");
  } catch {
    return null;
  }
  const candidates: string[] = [];
  const v2 = lines.find((l) => l.startsWith("0::"));
  if (v2) candidates.push(`${root}/sys/fs/cgroup${v2.slice(3).replace(/\/$/, "")}/memory.max`);
  const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  if (v1) {
    const path = v1.slice(v1.lastIndexOf(":") + 1).replace(/\/$/, "");
    candidates.push(`${root}/sys/fs/cgroup/memory${path}/memory.limit_in_bytes`);
  }
  for (const file of candidates) {
    let text: string;
    try {
      text = (await Deno.readTextFile(file)).trim();
    } catch {
      continue;
    }
    if (text === "max") return null;
    const n = Number(text);
    if (Number.isFinite(n) && n > 0) return n >= UNLIMITED ? null : n;
  }
  return null;
}

/**
 * V8's heap limit and the cgroup's memory limit.
 *
 * @param root see {@linkcode cgroupMemoryLimit}.
 *
 * @example
 * ```ts
 * const { heapLimitBytes } = await memoryLimits();
 * ```
 */
export async function memoryLimits(root = ""): Promise<MemoryLimits> {
  return {
    heapLimitBytes: v8.getHeapStatistics().heap_size_limit,
    cgroupLimitBytes: await cgroupMemoryLimit(root),
  };
}

/**
 * What to say about the limits: a warning when V8 may grow its heap past
 * what the cgroup leaves it ({@linkcode NON_HEAP_BYTES} below its limit).
 *
 * @returns `{ level, message }` for the start-up log line.
 *
 * @example
 * ```ts
 * memoryVerdict({ heapLimitBytes: 986e6, cgroupLimitBytes: 256 * 2 ** 20 }).level; // "warning"
 * ```
 */
export function memoryVerdict(m: MemoryLimits): { level: "info" | "warning"; message: string } {
  const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;
  if (m.cgroupLimitBytes === null) {
    return { level: "info", message: `V8 heap limit ${mib(m.heapLimitBytes)}` };
  }
  const room = m.cgroupLimitBytes - NON_HEAP_BYTES;
  if (m.heapLimitBytes > room) {
    const budget = Math.floor(m.cgroupLimitBytes / 2 ** 20);
    return {
      level: "warning",
      message: `V8 may grow its heap to ${mib(m.heapLimitBytes)} but the cgroup's memory limit ` +
        `is ${mib(m.cgroupLimitBytes)}: near it the kernel would kill kickmon before V8 ` +
        `collects. Build with KICKMON_MEMORY_MAX=${budget} (deno task compile), or run with ` +
        `--v8-flags=--max-old-space-size=${Math.max(64, budget - 96)}`,
    };
  }
  return {
    level: "info",
    message: `V8 heap limit ${mib(m.heapLimitBytes)}, cgroup memory limit ${
      mib(m.cgroupLimitBytes)
    }`,
  };
}
