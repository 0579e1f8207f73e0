/**
 * The collapse rules of the write queue: how pending transitions of one
 * streamer merge into fewer without losing count of them (README, "Every
 * transition is either in the spool or dropped by one of these documented,
 * counted rules"). Pure functions over transitions; when they apply (the
 * per-streamer cap, the spool and queue bounds) is the status writer's
 * policy (`status_writer.ts`).
 *
 * A merged transition carries `extra.collapsed` (how many transitions it
 * stands for besides itself, those it absorbed included) and
 * `extra.collapsed_because`, both written to `status_events.details`.
 *
 * @module
 */
import type { Transition } from "../core/types.ts";

/** How many transitions `t` already stands for besides itself. */
function collapsedIn(t: Transition): number {
  return Number(t.extra?.collapsed ?? 0);
}

/**
 * Collapses the last two pending transitions of `t`'s streamer into `t`.
 * Pending transitions of one streamer alternate, so two consecutive ones are
 * a flip and back: removing them and appending `t` keeps the net state, the
 * newest time and livestream, and the first transitions of the burst.
 *
 * Removes them from `queue` **in place**, searching from the end down to
 * index `from` (the first transition not in flight).
 *
 * @returns the transitions removed (newest first) and `t` marked with their
 *   count, or null when fewer than two are pending (nothing changed).
 *
 * @example
 * ```ts
 * const queue = [on1, off1]; // one streamer, both pending
 * const r = collapseLastTwo(queue, 0, on2, "more than 16 pending");
 * // queue is []; r.next is on2 with extra.collapsed 2; r.removed is [off1, on1]
 * ```
 */
export function collapseLastTwo(
  queue: Transition[],
  from: number,
  t: Transition,
  because: string,
): { next: Transition; removed: Transition[] } | null {
  const id = t.streamerId;
  const at: number[] = [];
  for (let i = queue.length - 1; i >= from && at.length < 2; i--) {
    if (queue[i].streamerId === id) at.push(i);
  }
  if (at.length < 2) return null;
  const removed = at.map((i) => queue[i]);
  for (const i of at) queue.splice(i, 1); // descending: indices stay valid
  const carried = removed.reduce((n, r) => n + collapsedIn(r), 0);
  return {
    next: {
      ...t,
      extra: { ...t.extra, collapsed: carried + collapsedIn(t) + 2, collapsed_because: because },
    },
    removed,
  };
}

/**
 * Collapses every streamer's transitions in `tail` to the net one, or, for a
 * run that ends where it started, to its last flip and back (so every
 * collapsed transition is still counted in a row). A streamer with at most
 * two is kept as it is. Streamers keep their order of last appearance.
 *
 * @returns the new tail and the transitions dropped from it.
 *
 * @example
 * ```ts
 * const { kept, dropped } = netPerStreamer([on1, off1, on2], "the queue reached its bound");
 * // kept: [on2 with extra.collapsed 2]; dropped: [on1, off1]
 * ```
 */
export function netPerStreamer(
  tail: readonly Transition[],
  why: string,
): { kept: Transition[]; dropped: Transition[] } {
  const lists = new Map<number, Transition[]>();
  for (const t of tail) {
    const l = lists.get(t.streamerId);
    if (l) l.push(t);
    else lists.set(t.streamerId, [t]);
  }
  const mark = (t: Transition, collapsed: number): Transition => ({
    ...t,
    extra: { ...t.extra, collapsed, collapsed_because: why },
  });
  // Pending transitions of a streamer alternate: an odd run ends in the
  // state of its newest transition, an even one where it started.
  const net = new Map<number, Transition[]>();
  const dropped: Transition[] = [];
  for (const [id, l] of lists) {
    const k = l.length;
    if (k <= 2) {
      net.set(id, l);
      continue;
    }
    const sum = l.reduce((n, t) => n + collapsedIn(t), 0);
    if (k % 2 === 1) {
      net.set(id, [mark(l[k - 1], sum + k - 1)]);
      dropped.push(...l.slice(0, -1));
    } else {
      net.set(id, [mark(l[k - 2], sum - collapsedIn(l[k - 1]) + k - 2), l[k - 1]]);
      dropped.push(...l.slice(0, -2));
    }
  }
  const kept: Transition[] = [];
  for (const t of tail) {
    const l = lists.get(t.streamerId)!;
    if (t === l[l.length - 1]) kept.push(...net.get(t.streamerId)!);
  }
  return { kept, dropped };
}
