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

/** What {@linkcode measureWakeCost} reports. */
export interface WakeCost {
  /** CPU time (all threads' `schedstat` run time) per sleep-and-wake of a Deno process, µs. */
  readonly denoTimerWakeUs: number;
  /** The same sleep-and-wake cycles, ms apart, that were timed. */
  readonly wakes: number;
  /** The sleep of each cycle, ms. */
  readonly sleepMs: number;
}

const WAKE_PROBE = `
const ns = () => { let t = 0; for (const e of Deno.readDirSync("/proc/self/task")) {
  try { t += Number(Deno.readTextFileSync("/proc/self/task/" + e.name + "/schedstat").split(" ")[0]); } catch {} }
  return t; };
const n = Number(Deno.args[0]), ms = Number(Deno.args[1]);
for (let i = 0; i < 50; i++) await new Promise((r) => setTimeout(r, ms));
const t0 = ns();
for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, ms));
console.log(((ns() - t0) / 1000 / n).toFixed(1));
`;

/**
 * The CPU one sleep and wake costs a Deno process on this machine: a child `deno eval` sleeps
 * `wakes` times for `sleepMs` on a timer and reports its threads' run time
 * (`/proc/self/task/<tid>/schedstat`, ns) per cycle. A floor under kickmon's CPU per
 * transition at low rates, where every frame and every database answer finds the process
 * asleep: on the 2-core KVM machines of issue 15, 170–300 µs per wake (Python's
 * `time.sleep`, for comparison, ~75 µs), against well under 1 µs for a system call.
 *
 * @returns the measurement, or `null` off Linux or when the child fails.
 *
 * @example
 * ```ts
 * import { measureWakeCost } from "./machine.ts";
 * const w = await measureWakeCost();
 * if (w) console.log(`${w.denoTimerWakeUs} µs of CPU per wake`);
 * ```
 */
export async function measureWakeCost(wakes = 500, sleepMs = 2): Promise<WakeCost | null> {
  if (Deno.build.os !== "linux") return null;
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", WAKE_PROBE, String(wakes), String(sleepMs)],
      stdout: "piped",
      stderr: "null",
      env: { NO_COLOR: "1" },
    }).output();
    const us = Number(new TextDecoder().decode(out.stdout).trim());
    return out.success && Number.isFinite(us) ? { denoTimerWakeUs: us, wakes, sleepMs } : null;
  } catch {
    return null;
  }
}
