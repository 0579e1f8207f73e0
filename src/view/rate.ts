/**
 * Events per second over a sliding window, computed from samples of a
 * monotonically increasing counter (e.g. `kickmon_events_received_total`).
 *
 * @module
 */

/**
 * Keeps `(time, total)` samples for the last `windowMs` and reports the
 * average rate over them.
 *
 * @example
 * ```ts
 * const meter = new RateMeter(10_000);
 * meter.add(0, 0);
 * meter.add(5_000, 10);
 * meter.perSecond(); // 2
 * ```
 */
export class RateMeter {
  readonly #samples: Array<{ at: number; total: number }> = [];

  /**
   * Creates an empty meter.
   *
   * @param windowMs window length, ms (default 10 000).
   */
  constructor(readonly windowMs: number = 10_000) {}

  /**
   * Records the counter's current value.
   *
   * @param at sample time, ms (any monotonic clock, e.g. `performance.now()`).
   * @param total the counter's value at that time. A value lower than the
   *   previous one (counter reset) restarts the window.
   */
  add(at: number, total: number): void {
    const last = this.#samples.at(-1);
    if (last && (total < last.total || at < last.at)) this.#samples.length = 0;
    this.#samples.push({ at, total });
    // Keep one sample at or before the window start, so the window is full.
    while (this.#samples.length > 2 && this.#samples[1].at <= at - this.windowMs) {
      this.#samples.shift();
    }
  }

  /**
   * The average rate over the samples kept, events per second; 0 until
   * two samples span some time.
   */
  perSecond(): number {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last.at <= first.at) return 0;
    return ((last.total - first.total) * 1000) / (last.at - first.at);
  }
}
