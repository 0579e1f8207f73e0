/**
 * Polling until a condition holds: {@linkcode waitFor} checks a predicate
 * every `intervalMs` until it is truthy or `timeoutMs` has passed. Used by
 * the tests in `tests/`, `src/` and `dev/` (re-exported by
 * `tests/helpers/database.ts`).
 *
 * @example
 * ```ts
 * import { waitFor } from "../dev/wait_for.ts";
 *
 * let ready = false;
 * setTimeout(() => (ready = true), 100);
 * await waitFor(() => ready, { timeoutMs: 1_000, message: "ready" });
 * ```
 *
 * @module
 */

/**
 * Options for {@linkcode waitFor}.
 *
 * @example
 * ```ts
 * import type { WaitForOptions } from "../dev/wait_for.ts";
 *
 * const opts: WaitForOptions = { timeoutMs: 2_000, intervalMs: 20, message: "row visible" };
 * ```
 */
export interface WaitForOptions {
  /** Give up after this many ms (default 5000). */
  timeoutMs?: number;
  /** Pause between attempts, in ms (default 50). */
  intervalMs?: number;
  /** What was awaited, for the timeout error (default "condition"). */
  message?: string;
}

/**
 * Raised by {@linkcode waitFor} on timeout; `cause` is the last error the
 * predicate threw, if any.
 *
 * @example
 * ```ts
 * import { waitFor, WaitForTimeoutError } from "../dev/wait_for.ts";
 *
 * try {
 *   await waitFor(() => false, { timeoutMs: 100, message: "never" });
 * } catch (err) {
 *   console.log(err instanceof WaitForTimeoutError); // true
 * }
 * ```
 */
export class WaitForTimeoutError extends Error {
  /**
   * Makes the error.
   *
   * @param message Includes the awaited condition and the timeout in ms.
   * @param options `cause`: the predicate's last error, if it threw.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WaitForTimeoutError";
  }
}

/**
 * Polls `predicate` until it returns (or resolves to) a truthy value and
 * returns that value. A predicate that throws or rejects counts as "not yet";
 * its last error becomes the timeout error's `cause`. An attempt still pending
 * at the deadline is abandoned.
 *
 * @param predicate Checked immediately, then every `intervalMs` ms.
 * @param opts `timeoutMs` (default 5000), `intervalMs` (default 50), `message`.
 * @returns The first truthy result.
 * @throws {WaitForTimeoutError} `timed out after <timeoutMs> ms waiting for <message>`.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { waitFor } from "../dev/wait_for.ts";
 *
 * const sql = postgres("postgres://postgres@127.0.0.1:5432/postgres", { max: 1 });
 * await waitFor(async () => (await sql`select count(*)::int as n from pg_class`)[0].n > 0, {
 *   timeoutMs: 2_000,
 *   message: "catalog rows",
 * });
 * await sql.end();
 * ```
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const intervalMs = opts.intervalMs ?? 50;
  const deadline = performance.now() + timeoutMs;
  const timedOut = Symbol("timedOut");
  let lastError: unknown = undefined;

  while (true) {
    const remaining = deadline - performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const result = await Promise.race([
        Promise.resolve().then(predicate),
        new Promise<typeof timedOut>((resolve) => {
          timer = setTimeout(() => resolve(timedOut), Math.max(0, remaining));
        }),
      ]);
      if (result !== timedOut && result) return result;
      if (result !== timedOut) lastError = undefined;
    } catch (err) {
      lastError = err;
    } finally {
      clearTimeout(timer);
    }
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new WaitForTimeoutError(
        `timed out after ${timeoutMs} ms waiting for ${opts.message ?? "condition"}`,
        lastError === undefined ? undefined : { cause: lastError },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
  }
}
