/**
 * `kickmon start --manual`: placeholder until the live view lands.
 *
 * @module
 */
import { runStart } from "../cli/start.ts";

/**
 * Runs the monitor with the live terminal view.
 *
 * @returns the exit code.
 *
 * @example
 * ```ts
 * Deno.exit(await runManual());
 * ```
 */
export function runManual(): Promise<number> {
  return runStart();
}
