/**
 * What the service's leader-only work needs of leadership (issue 14), and
 * the gate it goes through: the {@linkcode Leadership} port (a
 * `LeaderElector` of `leadership.ts` has it; {@linkcode STANDALONE} is the
 * one instance that always leads), and {@linkcode leaderOnly}, which wraps
 * an API client so that every call re-checks the role first and refuses
 * with {@linkcode NotLeaderError} once this instance stood down.
 *
 * Leader-only (they spend the one API budget of the Kick app): reconciliation,
 * identity resolution, the unofficial lookup, webhook subscription
 * management and the purge of old webhook message ids. Every instance, leader
 * or not, listens to Pusher, receives webhooks, writes transitions, spools
 * and follows the list.
 *
 * @module
 */
import { type LeadershipChange, type LeadershipSnapshot, localIdentity } from "./leadership.ts";

/**
 * The role as the monitor and its plugins see it.
 *
 * @example
 * ```ts
 * const gate: Leadership = monitor.leadership;
 * gate.onPromoted(() => console.log("leading"));
 * ```
 */
export interface Leadership {
  /** Whether this instance leads right now. */
  readonly isLeader: boolean;
  /** The role for `/health`, `/metrics` and the live view. */
  snapshot(): LeadershipSnapshot;
  /** Calls `fn` on promotion; returns the function that removes it. */
  onPromoted(fn: (change: LeadershipChange) => void): () => void;
  /** Calls `fn` on demotion; returns the function that removes it. */
  onDemoted(fn: (change: LeadershipChange) => void): () => void;
  /** Starts electing (the monitor calls it in `start()`). */
  start(): void;
  /** Gives leadership up and ends the elector's session. Never throws. */
  stop(): Promise<void>;
}

/**
 * The role of a monitor without election (one instance, tests, tools): it
 * always leads, from the start, with no change ever.
 *
 * @example
 * ```ts
 * STANDALONE.isLeader; // true
 * ```
 */
export const STANDALONE: Leadership = {
  isLeader: true,
  snapshot: () => ({
    role: "leader",
    since: Math.round(performance.timeOrigin),
    leader: { ...localIdentity(), since: Math.round(performance.timeOrigin) },
    changes_total: 0,
    eligible: true,
    reason: "no election (a single instance)",
  }),
  onPromoted: () => () => {},
  onDemoted: () => () => {},
  start: () => {},
  stop: () => Promise.resolve(),
};

/**
 * A leader-only call was refused because this instance no longer leads.
 * Expected during a change of leader: callers stop their pass quietly.
 *
 * @example
 * ```ts
 * try { await api.getChannels({ slugs: ["a"] }); } catch (e) {
 *   if (e instanceof NotLeaderError) return; // stood down meanwhile
 *   throw e;
 * }
 * ```
 */
export class NotLeaderError extends Error {
  /**
   * @param what the call refused, e.g. `getChannels`.
   * @param options `cause`, if any.
   */
  constructor(what: string, options: { cause?: unknown } = {}) {
    super(`${what} refused: this instance is no longer the leader`, options);
    this.name = "NotLeaderError";
  }
}

/**
 * Wraps `target` (an API client) so that every method call first asks
 * `mayCall` (typically "this instance leads, and still in the same term")
 * and, when it says no, rejects with {@linkcode NotLeaderError} without
 * calling it. A call already in flight
 * when leadership is lost finishes (at most one request of overlap, the
 * bound issue 14 sets). Properties that are not functions pass through.
 *
 * @param target the client whose every method is leader-only.
 * @param mayCall asked before every call; false refuses it.
 * @returns a view of `target` with the same type.
 *
 * @example
 * ```ts
 * const api = leaderOnly(plugin.api, () => monitor.leadership.isLeader);
 * await api.getChannels({ broadcasterUserIds: [1] }); // NotLeaderError on a standby
 * ```
 */
export function leaderOnly<T extends object>(target: T, mayCall: () => boolean): T {
  return new Proxy(target, {
    get(t, prop) {
      const v = Reflect.get(t, prop);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) => {
        if (!mayCall()) {
          return Promise.reject(new NotLeaderError(String(prop)));
        }
        return v.apply(t, args);
      };
    },
  });
}
