/**
 * Reading another process's memory and CPU from Linux `/proc`, from outside
 * the process: `VmRSS`/`VmHWM` from `/proc/<pid>/status`, `utime + stime`
 * from `/proc/<pid>/stat`, and the process tree (to find the process that
 * really runs kickmon under a launcher).
 *
 * @module
 */

/** Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`; 100 on Linux). */
export const CLK_TCK = 100;

/**
 * Memory of one process, in **bytes**: resident now (`VmRSS`), the peak
 * resident size since it started (`VmHWM`), and how the current resident
 * size splits into anonymous and file-backed pages.
 *
 * @example
 * ```ts
 * import type { MemorySample } from "./proc_stats.ts";
 * const m: MemorySample = { rssBytes: 60e6, hwmBytes: 72e6, anonBytes: 20e6, fileBytes: 40e6 };
 * ```
 */
export interface MemorySample {
  readonly rssBytes: number;
  readonly hwmBytes: number;
  /** Resident anonymous memory (heap, stacks: private to the process), `RssAnon`. */
  readonly anonBytes: number;
  /** Resident file-backed memory (the executable's code, mapped files), `RssFile`. */
  readonly fileBytes: number;
}

/**
 * Reads `VmRSS` and `VmHWM` of a process.
 *
 * @returns the sample, or `null` when the process is gone (or not Linux).
 *
 * @example
 * ```ts
 * import { readMemory } from "./proc_stats.ts";
 * const m = readMemory(Deno.pid);
 * console.log(m && m.rssBytes / 1e6, "MB");
 * ```
 */
export function readMemory(pid: number): MemorySample | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return null;
  }
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return {
    rssBytes: kb("VmRSS"),
    hwmBytes: kb("VmHWM"),
    anonBytes: kb("RssAnon"),
    fileBytes: kb("RssFile"),
  };
}

/**
 * CPU time used by a process so far (user + system), in **seconds**, from
 * `/proc/<pid>/stat` fields 14 and 15 (resolution 10 ms).
 *
 * @returns seconds, or `null` when the process is gone.
 *
 * @example
 * ```ts
 * import { readCpuSeconds } from "./proc_stats.ts";
 * const before = readCpuSeconds(Deno.pid) ?? 0;
 * ```
 */
export function readCpuSeconds(pid: number): number | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name (field 2) may contain spaces; fields after it are plain.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state): utime is field 14 → rest[11], stime field 15 → rest[12].
  const utime = Number(rest[11]), stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return (utime + stime) / CLK_TCK;
}

/**
 * How often a process's main thread has gone to sleep and been woken so far:
 * `voluntary_ctxt_switches` of `/proc/<pid>/status` (the thread group leader, which is the
 * thread that runs JavaScript in Deno). On a virtual machine each such sleep and wake costs
 * far more CPU than a system call (`measureWakeCost` in `bench/machine.ts` measures how much),
 * so wakes per transition explain much of the CPU per transition at low rates.
 *
 * @returns the count, or `null` when the process is gone.
 *
 * @example
 * ```ts
 * import { readVoluntarySwitches } from "./proc_stats.ts";
 * console.log(readVoluntarySwitches(Deno.pid));
 * ```
 */
export function readVoluntarySwitches(pid: number): number | null {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(
      /^voluntary_ctxt_switches:\s+(\d+)/m,
    );
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * The command line of a process (`/proc/<pid>/cmdline`, NULs as spaces), or
 * `""` when it is gone.
 *
 * @example
 * ```ts
 * import { readCmdline } from "./proc_stats.ts";
 * console.log(readCmdline(Deno.pid)); // e.g. "deno run -A bench/bench.ts"
 * ```
 */
export function readCmdline(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

/**
 * Direct children of a process, from `/proc/<pid>/task/<tid>/children`
 * (every thread, since a child belongs to the thread that forked it).
 *
 * @example
 * ```ts
 * import { childPids } from "./proc_stats.ts";
 * console.log(childPids(Deno.pid));
 * ```
 */
export function childPids(pid: number): number[] {
  const out = new Set<number>();
  try {
    for (const t of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const text = Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/children`);
        for (const s of text.trim().split(/\s+/)) if (s) out.add(Number(s));
      } catch { /* thread gone */ }
    }
  } catch { /* process gone */ }
  return [...out];
}

/**
 * The process that runs a script under a launcher: the deepest process in
 * the tree rooted at `pid` whose command line contains `marker` (`deno run`
 * executes the script in the process it starts, so this is usually `pid`
 * itself; the walk makes the choice explicit rather than assumed).
 *
 * @returns the pid found, or `pid` when nothing below it matches.
 *
 * @example
 * ```ts
 * import { findScriptPid } from "./proc_stats.ts";
 * const pid = findScriptPid(child.pid, "main.ts");
 * ```
 */
export function findScriptPid(pid: number, marker: string): number {
  let best = pid;
  const walk = (p: number, depth: number): void => {
    if (depth > 8) return;
    for (const c of childPids(p)) {
      if (readCmdline(c).includes(marker)) best = c;
      walk(c, depth + 1);
    }
  };
  walk(pid, 0);
  return best;
}

/**
 * Total CPU seconds of a process and all its descendants (e.g. a PostgreSQL
 * postmaster and its backends). Processes that exited meanwhile are not
 * counted, so compare two readings only over short spans with stable
 * connections.
 *
 * @example
 * ```ts
 * import { readTreeCpuSeconds } from "./proc_stats.ts";
 * const pgCpu = readTreeCpuSeconds(postmasterPid);
 * ```
 */
export function readTreeCpuSeconds(pid: number): number {
  let total = 0;
  const walk = (p: number, depth: number): void => {
    total += readCpuSeconds(p) ?? 0;
    if (depth > 4) return;
    for (const c of childPids(p)) walk(c, depth + 1);
  };
  walk(pid, 0);
  return total;
}
