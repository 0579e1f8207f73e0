/**
 * A sleep that an `AbortSignal` cuts short: the one wait used by the Kick
 * clients' retry loops and by the simulator's delayed answers. It has no
 * dependencies, so any layer may import it.
 *
 * @module
 */

/**
 * Waits `ms` milliseconds, or less if `signal` aborts first. Never rejects.
 *
 * @param ms How long to wait, in ms.
 * @param signal Ends the wait early when aborted (an already aborted signal resolves at once).
 * @returns A promise that resolves (never rejects) when the time is up or `signal` aborts.
 * @example
 * ```ts
 * const stop = new AbortController();
 * await abortableSleep(1000, stop.signal); // resolves early on stop.abort()
 * ```
 */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
