/**
 * The request budget shared by every caller of one official-API client
 * (`KICK_API_MAX_REQUESTS_PER_MINUTE`, docs/kick-protocol.md §4.9): a token bucket
 * (as GCRA) plus a pause of the whole budget after a 429.
 *
 * @module
 */

import { abortableSleep } from "../../util/abortable_sleep.ts";

/** Options of {@linkcode RequestBudget}. */
export interface RequestBudgetOptions {
  /** Requests per minute (must be > 0). */
  readonly maxRequestsPerMinute: number;
  /** Bucket size: requests that may go out back to back (default: 10 s worth, at least 1). */
  readonly burst?: number;
}

/**
 * A GCRA token bucket with a shared pause. {@linkcode RequestBudget.take}
 * waits for the caller's slot; {@linkcode RequestBudget.pause} (after a 429)
 * holds back every caller, including those already waiting for a slot.
 * Times are `performance.now()` ms.
 *
 * @example
 * ```ts
 * const budget = new RequestBudget({ maxRequestsPerMinute: 60 });
 * const closed = new AbortController();
 * if (await budget.take(closed.signal)) await fetch(url);
 * ```
 */
export class RequestBudget {
  // Token bucket as GCRA: #tat = theoretical arrival time (ms, performance.now()).
  readonly #intervalMs: number;
  readonly #toleranceMs: number;
  #tat = 0;
  /** performance.now() before which no budgeted request is sent (after a 429). */
  #pausedUntil = 0;

  /**
   * Creates a full bucket.
   *
   * @param opts See {@linkcode RequestBudgetOptions}.
   * @throws {TypeError} when `maxRequestsPerMinute` ≤ 0.
   */
  constructor(opts: RequestBudgetOptions) {
    const rpm = opts.maxRequestsPerMinute;
    if (!(rpm > 0)) throw new TypeError("maxRequestsPerMinute must be > 0");
    this.#intervalMs = 60_000 / rpm;
    const burst = Math.max(1, Math.floor(opts.burst ?? Math.ceil(rpm / 6)));
    this.#toleranceMs = (burst - 1) * this.#intervalMs;
  }

  /**
   * Waits for a slot in the budget and for any pause.
   *
   * @param signal Ends the wait early (the client was closed).
   * @returns true when the caller may send; false when `signal` aborted while waiting.
   * @example
   * ```ts
   * if (!await budget.take(closed.signal)) throw new Error("closed");
   * ```
   */
  async take(signal: AbortSignal): Promise<boolean> {
    const sleep = async (ms: number) => {
      await abortableSleep(ms, signal);
      return !signal.aborted;
    };
    for (;;) {
      const now = performance.now();
      if (this.#pausedUntil > now) {
        if (!await sleep(this.#pausedUntil - now)) return false;
        continue;
      }
      const tat = Math.max(this.#tat, now);
      const wait = tat - this.#toleranceMs - now;
      this.#tat = tat + this.#intervalMs;
      if (wait > 0 && !await sleep(wait)) return false;
      // A 429 that arrived while this caller waited for its slot pauses it too.
      const paused = this.#pausedUntil - performance.now();
      if (paused > 0 && !await sleep(paused)) return false;
      return true;
    }
  }

  /**
   * Holds back every budgeted request for `ms` from now (a 429 pauses the
   * whole budget, not just the caller that got it). A shorter pause never
   * shortens a longer one.
   *
   * @param ms How long, in ms.
   * @example
   * ```ts
   * budget.pause(2000); // after "429, Retry-After: 2"
   * ```
   */
  pause(ms: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, performance.now() + ms);
  }
}
