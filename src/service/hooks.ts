/**
 * A typed hook: the way a plugin hears about something the monitor does
 * (a Pusher reconnect, a list change, a commit) without patching its fields.
 * `subscribe(fn)` returns the function that unsubscribes it; `emit(value)`
 * calls every subscriber in the order they subscribed.
 *
 * @module
 */

/**
 * One event's subscribers.
 *
 * `emit` is on the hot path (every commit reaches `onTransition`): it walks
 * a plain array and allocates nothing. Unsubscribing replaces the array, so
 * an `emit` in progress is not disturbed. A subscriber that throws stops the
 * `emit` and the error reaches its caller, as a throwing callback always did.
 *
 * @typeParam T The value each subscriber is called with (`void` for none).
 *
 * @example
 * ```ts
 * const changed = new Hook<number>();
 * const off = changed.subscribe((n) => console.log("count", n));
 * changed.emit(3); // logs "count 3"
 * off();
 * changed.emit(4); // logs nothing
 * ```
 */
export class Hook<T = void> {
  #fns: ReadonlyArray<(value: T) => void> = [];

  /**
   * Adds a subscriber.
   *
   * @returns a function that removes it again (calling it twice is harmless).
   */
  subscribe(fn: (value: T) => void): () => void {
    // A wrapper per subscription: the same function subscribed twice is two subscriptions.
    const entry = (value: T) => fn(value);
    this.#fns = [...this.#fns, entry];
    return () => {
      this.#fns = this.#fns.filter((f) => f !== entry);
    };
  }

  /** Calls every subscriber with `value`, in subscription order. */
  emit(value: T): void {
    const fns = this.#fns;
    for (let i = 0; i < fns.length; i++) fns[i](value);
  }

  /** Number of subscribers. */
  get size(): number {
    return this.#fns.length;
  }
}
