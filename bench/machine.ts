/**
 * The machine a benchmark ran on, as the results and the README state it:
 * cores, CPU model (`/proc/cpuinfo`), kernel (`/proc/sys/kernel/osrelease`),
 * memory, Deno. Figures from different machines are not comparable; this
 * says which one produced them.
 *
 * @module
 */

/**
 * What {@linkcode describeMachine} reports. `memoryMB` in 10^6 bytes.
 *
 * @example
 * ```ts
 * import type { Machine } from "./machine.ts";
 * const m: Machine = { cores: 2, cpuModel: "AMD EPYC", kernel: "6.1.0", memoryMB: 4000, deno: "2.9.6" };
 * ```
 */
export interface Machine {
  /** Logical CPUs (`navigator.hardwareConcurrency`). */
  readonly cores: number;
  /** The first `model name` of `/proc/cpuinfo`, or `"unknown"`. */
  readonly cpuModel: string;
  /** Kernel release (`/proc/sys/kernel/osrelease`, else `Deno.osRelease()`). */
  readonly kernel: string;
  readonly memoryMB: number;
  readonly deno: string;
}

/**
 * The CPU model from the text of `/proc/cpuinfo` (x86 `model name`, else an
 * ARM `Model`/`Hardware`/`CPU part` line).
 *
 * @returns the model, or `"unknown"`.
 *
 * @example
 * ```ts
 * import { cpuModelOf } from "./machine.ts";
 * cpuModelOf("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"); // "AMD EPYC 7B13"
 * ```
 */
export function cpuModelOf(cpuinfo: string): string {
  for (const key of ["model name", "Model", "Hardware", "CPU part"]) {
    const m = new RegExp(`^${key}\\s*:\\s*(.+)$`, "m").exec(cpuinfo);
    if (m && m[1].trim()) return m[1].trim().replace(/\s+/g, " ");
  }
  return "unknown";
}

/**
 * Describes this machine (reads `/proc`; falls back to Deno's own answers
 * off Linux). Never throws.
 *
 * @example
 * ```ts
 * import { describeMachine } from "./machine.ts";
 * const m = describeMachine();
 * console.log(`${m.cores} × ${m.cpuModel}, Linux ${m.kernel}`);
 * ```
 */
export function describeMachine(): Machine {
  const read = (path: string): string | null => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return null;
    }
  };
  return {
    cores: navigator.hardwareConcurrency,
    cpuModel: cpuModelOf(read("/proc/cpuinfo") ?? ""),
    kernel: read("/proc/sys/kernel/osrelease")?.trim() || Deno.osRelease(),
    memoryMB: Math.round(Deno.systemMemoryInfo().total / 1e6),
    deno: Deno.version.deno,
  };
}
