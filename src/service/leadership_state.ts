/**
 * The leader election's state machine (issue 14), pure: the roles, the
 * events, THE transition function {@linkcode transition}, and the timings
 * derived from the takeover bound. No timers, no SQL: the elector in
 * `leadership.ts` polls `db/leader_lock.ts` and feeds events in here.
 *
 * Three roles: `leader` (holds the advisory lock), `standby` (the database
 * answers and someone else, or nobody yet, holds it) and `unknown` (the
 * database does not answer: this instance cannot lead and cannot tell who
 * does).
 *
 * **Timings**, all from `takeoverMs` (`MONITORING_LEADER_TAKEOVER`, at least
 * 5000 ms), see {@linkcode electorTimings}:
 *
 * | what | default (10 s) | rule |
 * |---|---|---|
 * | poll: a candidate tries the lock, the leader re-checks it in `pg_locks` | 2 s | takeover / 5 |
 * | statement timeout of each poll | 2 s | = poll |
 * | lease: a leader with no successful check for this long demotes itself | 4 s | 2 × poll |
 * | dead peer: the server ends a silent leader's session (TCP keepalives) | 6 s | 0.6 × takeover, whole s |
 *
 * @module
 */
import type { LeaderIdentity } from "../db/leader_lock.ts";

/**
 * This instance's role.
 *
 * @example
 * ```ts
 * const r: Role = elector.snapshot().role; // "leader" | "standby" | "unknown"
 * ```
 */
export type Role = "leader" | "standby" | "unknown";

/**
 * The leader as this instance knows it (see `LeaderIdentity` of `db/leader_lock.ts`).
 *
 * @example
 * ```ts
 * const l: LeaderInfo | null = elector.state.leader;
 * ```
 */
export type LeaderInfo = LeaderIdentity;

/**
 * The elector's whole state; only {@linkcode transition} makes a new one.
 *
 * @example
 * ```ts
 * const s: ElectorState = transition(initialState(Date.now()), { type: "closed", at: Date.now() });
 * ```
 */
export interface ElectorState {
  /** This instance's role. */
  readonly role: Role;
  /** When this role began, ms since the Unix epoch. */
  readonly since: number;
  /** The leader (this instance when `role` is `leader`), null when unknown or nobody leads. */
  readonly leader: LeaderInfo | null;
  /** Promotions + demotions of this instance so far. */
  readonly changesTotal: number;
  /** When the last successful lock check was SENT, ms since the epoch (leader only), else null. */
  readonly lastVerifiedAt: number | null;
  /** Why the role is what it is (for logs and `/health`). */
  readonly reason: string;
}

/**
 * What can happen to the elector. `at` is when it happened, ms since the
 * Unix epoch; for a check's answer, when the check was sent.
 *
 * @example
 * ```ts
 * const e: ElectorEvent = { type: "unreachable", at: Date.now(), error: "ECONNREFUSED" };
 * ```
 */
export type ElectorEvent =
  /** The lock was taken and found in `pg_locks`; `self` is this instance's identity. */
  | { readonly type: "acquired"; readonly at: number; readonly self: LeaderInfo }
  /** The leader's check found the lock still held by this session. */
  | { readonly type: "verified"; readonly at: number }
  /** The lock is someone else's (`leader`), or nobody's (null): not taken this time. */
  | { readonly type: "refused"; readonly at: number; readonly leader: LeaderInfo | null }
  /** The leader's check found the lock NOT held by this session (e.g. after a reconnect). */
  | { readonly type: "lost"; readonly at: number }
  /** A statement failed or timed out: the database is unreachable. */
  | { readonly type: "unreachable"; readonly at: number; readonly error: string }
  /** The session's connection closed (restart, failover, terminated backend, network). */
  | { readonly type: "closed"; readonly at: number }
  /** The lease timer fired; demotes only if no check succeeded for `leaseMs`. */
  | { readonly type: "lease_expired"; readonly at: number; readonly leaseMs: number }
  /** `stop()`: leadership is given up for good. */
  | { readonly type: "stopped"; readonly at: number };

/**
 * The state before the first poll.
 *
 * @param now ms since the Unix epoch.
 *
 * @example
 * ```ts
 * initialState(Date.now()).role; // "unknown"
 * ```
 */
export function initialState(now: number): ElectorState {
  return {
    role: "unknown",
    since: now,
    leader: null,
    changesTotal: 0,
    lastVerifiedAt: null,
    reason: "not checked yet",
  };
}

/**
 * THE transition function: the state after an event. Pure. A change between
 * `leader` and another role counts in `changesTotal`.
 *
 * @example
 * ```ts
 * const s0 = initialState(0);
 * const s1 = transition(s0, { type: "acquired", at: 5, self: { host: "a", pid: 1, since: 5 } });
 * s1.role; // "leader"
 * transition(s1, { type: "closed", at: 9 }).role; // "unknown"
 * ```
 */
export function transition(s: ElectorState, e: ElectorEvent): ElectorState {
  const become = (
    role: Role,
    leader: LeaderInfo | null,
    reason: string,
    lastVerifiedAt: number | null = null,
  ): ElectorState => ({
    role,
    since: role === s.role ? s.since : e.at,
    leader,
    changesTotal: s.changesTotal + ((role === "leader") !== (s.role === "leader") ? 1 : 0),
    lastVerifiedAt,
    reason,
  });
  switch (e.type) {
    case "acquired":
      if (s.role === "leader") return { ...s, lastVerifiedAt: e.at };
      return become("leader", e.self, "holds the leader lock", e.at);
    case "verified":
      return s.role === "leader" ? { ...s, lastVerifiedAt: e.at } : s;
    case "refused":
      return become(
        "standby",
        e.leader,
        e.leader ? "another instance holds the leader lock" : "the leader lock is free",
      );
    case "lost":
      if (s.role !== "leader") return s;
      return become("standby", null, "the leader lock is no longer held by this session");
    case "unreachable":
      return become("unknown", null, `database unreachable: ${e.error}`);
    case "closed":
      if (s.role !== "leader") return s;
      return become("unknown", null, "the leader lock's session closed");
    case "lease_expired":
      if (s.role !== "leader" || s.lastVerifiedAt === null) return s;
      if (e.at - s.lastVerifiedAt < e.leaseMs) return s;
      return become("unknown", null, `no successful lock check for ${e.leaseMs} ms`);
    case "stopped":
      return become("standby", null, "stopped");
  }
}

/**
 * Derived timings, all ms except `deadPeerSec`; see the module doc.
 *
 * @example
 * ```ts
 * const { pollMs, leaseMs }: ElectorTimings = electorTimings(10_000); // 2000, 4000
 * ```
 */
export interface ElectorTimings {
  /** Between two polls of the lock. */
  readonly pollMs: number;
  /** A poll's statement not answered within this ends the session. */
  readonly queryTimeoutMs: number;
  /** A leader without a successful check for this long demotes itself. */
  readonly leaseMs: number;
  /** The server ends a silent session after about this many SECONDS. */
  readonly deadPeerSec: number;
}

/**
 * The smallest `takeoverMs` the bounds hold for (keepalives count in whole seconds).
 *
 * @example
 * ```ts
 * electorTimings(MIN_TAKEOVER_MS).pollMs; // 1000
 * ```
 */
export const MIN_TAKEOVER_MS = 5000;

/**
 * The timings for a takeover bound.
 *
 * @param takeoverMs `MONITORING_LEADER_TAKEOVER` in ms, at least {@linkcode MIN_TAKEOVER_MS}.
 * @throws {RangeError} when `takeoverMs` is below {@linkcode MIN_TAKEOVER_MS} or not finite.
 *
 * @example
 * ```ts
 * electorTimings(10_000); // { pollMs: 2000, queryTimeoutMs: 2000, leaseMs: 4000, deadPeerSec: 6 }
 * ```
 */
export function electorTimings(takeoverMs: number): ElectorTimings {
  if (!Number.isFinite(takeoverMs) || takeoverMs < MIN_TAKEOVER_MS) {
    throw new RangeError(
      `takeover bound must be at least ${MIN_TAKEOVER_MS} ms, got ${takeoverMs}`,
    );
  }
  const pollMs = Math.floor(takeoverMs / 5);
  return {
    pollMs,
    queryTimeoutMs: pollMs,
    leaseMs: 2 * pollMs,
    deadPeerSec: Math.max(3, Math.floor((0.6 * takeoverMs) / 1000)),
  };
}
