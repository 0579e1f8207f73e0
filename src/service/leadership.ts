/**
 * Leader election (issue 14): which one of several kickmon instances on one
 * database spends the API budget (reconciliation, identity resolution,
 * webhook subscription management, the unofficial lookup). Not wired in yet.
 *
 * Three roles: `leader` (holds the advisory lock of `db/leader_lock.ts`),
 * `standby` (the database answers and someone else, or nobody yet, holds
 * it) and `unknown` (the database does not answer: this instance cannot
 * lead and cannot tell who does). Every change of role goes through ONE
 * function, {@linkcode transition}; {@linkcode LeaderElector} is the shell
 * that polls the lock, feeds it events and runs the hooks.
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
 * So a standby takes over within one poll of the leader's process dying
 * (its socket closes, the server frees the lock at once), and within
 * dead peer + poll (8 s) of the leader's host or network dying. A leader
 * that cannot reach the database demotes itself after the lease, before the
 * server can free its lock for someone else (lease < dead peer, measured
 * from the same statement); one whose session closed (a PostgreSQL restart
 * or failover, `pg_terminate_backend`) demotes at once, before any other
 * poll could see the lock free, and re-checks `pg_locks` on its new session
 * before it claims anything. On demotion the elector ends its session, so a
 * lock held by a hung session cannot outlive the leadership it stood for.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { DatabaseConfig } from "../config/config.ts";
import { type LeaderIdentity, LeaderLock, type LockHolder } from "../db/leader_lock.ts";

const log = getLogger(["kickmon", "leadership"]);

/** This instance's role. */
export type Role = "leader" | "standby" | "unknown";

/** The leader as this instance knows it (see `LeaderIdentity` of `db/leader_lock.ts`). */
export type LeaderInfo = LeaderIdentity;

/** The elector's whole state; only {@linkcode transition} makes a new one. */
export interface ElectorState {
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

/** Derived timings, all ms except `deadPeerSec`; see the module doc. */
export interface ElectorTimings {
  readonly pollMs: number;
  readonly queryTimeoutMs: number;
  readonly leaseMs: number;
  readonly deadPeerSec: number;
}

/** The smallest `takeoverMs` the bounds hold for (keepalives count in whole seconds). */
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

/** What the elector needs of the lock; {@linkcode LeaderLock} has it. */
export interface LockPort {
  tryAcquire(since: number): Promise<boolean>;
  verify(): Promise<boolean>;
  holder(): Promise<LockHolder | null>;
  release(): Promise<void>;
  /** Ends the current session (the next call connects a new one). Never throws. */
  reset(): Promise<void>;
  /** Ends the session for good. Never throws. */
  close(): Promise<void>;
}

/** Timer functions, injectable for deterministic tests. */
export interface ElectorClock {
  /** ms since the Unix epoch. */
  now(): number;
  /** Returns a handle for `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const REAL_CLOCK: ElectorClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout> | undefined),
};

/** A change of role, as the hooks receive it. */
export interface LeadershipChange {
  readonly from: Role;
  readonly to: Role;
  /** ms since the Unix epoch. */
  readonly at: number;
  readonly reason: string;
}

/** What `/health` and `kickmon status` show (snake_case, as all JSON of kickmon). */
export interface LeadershipSnapshot {
  readonly role: Role;
  /** When this instance got its role, ms since the Unix epoch. */
  readonly since: number;
  /** The leader: this instance, another one, or null (unknown / nobody). `since` in ms. */
  readonly leader:
    | { readonly host: string; readonly pid: number; readonly since: number | null }
    | null;
  /** Promotions + demotions of this instance. */
  readonly changes_total: number;
  readonly reason: string;
}

/** Options for {@linkcode LeaderElector}. */
export interface ElectorOptions {
  readonly lock: LockPort;
  /** This instance (host name, OS pid). */
  readonly identity: { readonly host: string; readonly pid: number };
  /** The takeover bound in ms, see {@linkcode electorTimings}. */
  readonly takeoverMs: number;
  /** Injected clock and timers (default: the real ones). */
  readonly clock?: ElectorClock;
}

/**
 * Polls the leader lock and keeps the role. Hooks run synchronously, in
 * registration order, at the moment the role changes; a hook that throws is
 * logged and does not stop the others.
 *
 * @example
 * ```ts
 * const elector = createLeaderElector(config.database, { takeoverMs: 10_000 });
 * elector.onPromoted(() => reconciler.run("leader"));
 * elector.onDemoted(() => console.log("standing by"));
 * elector.start();
 * // … on SIGTERM:
 * await elector.stop();
 * ```
 */
export class LeaderElector {
  readonly timings: ElectorTimings;
  readonly #lock: LockPort;
  readonly #identity: { readonly host: string; readonly pid: number };
  readonly #clock: ElectorClock;
  readonly #hooks = new Set<(c: LeadershipChange) => void>();
  #state: ElectorState;
  #pollTimer: unknown;
  #leaseTimer: unknown;
  #polling: Promise<void> | null = null;
  #pollAgain = false;
  #started = false;
  #stopped = false;

  /** @throws {RangeError} for a `takeoverMs` {@linkcode electorTimings} refuses. */
  constructor(options: ElectorOptions) {
    this.timings = electorTimings(options.takeoverMs);
    this.#lock = options.lock;
    this.#identity = options.identity;
    this.#clock = options.clock ?? REAL_CLOCK;
    this.#state = initialState(this.#clock.now());
  }

  /** Whether this instance leads right now. */
  get isLeader(): boolean {
    return this.#state.role === "leader";
  }

  /** The state as it is now (see {@linkcode ElectorState}). */
  get state(): ElectorState {
    return this.#state;
  }

  /**
   * The role for `/health`.
   *
   * @example
   * ```ts
   * const { role, leader, changes_total } = elector.snapshot();
   * ```
   */
  snapshot(): LeadershipSnapshot {
    const s = this.#state;
    return {
      role: s.role,
      since: s.since,
      leader: s.leader && { host: s.leader.host, pid: s.leader.pid, since: s.leader.since },
      changes_total: s.changesTotal,
      reason: s.reason,
    };
  }

  /**
   * Calls `fn` on every change of role.
   *
   * @returns a function that removes the hook.
   *
   * @example
   * ```ts
   * const off = elector.onChange((c) => console.log(c.from, "→", c.to, c.reason));
   * off();
   * ```
   */
  onChange(fn: (change: LeadershipChange) => void): () => void {
    this.#hooks.add(fn);
    return () => this.#hooks.delete(fn);
  }

  /**
   * Calls `fn` when this instance becomes leader.
   *
   * @returns a function that removes the hook.
   *
   * @example
   * ```ts
   * elector.onPromoted(() => reconciler.run("leader"));
   * ```
   */
  onPromoted(fn: (change: LeadershipChange) => void): () => void {
    return this.onChange((c) => c.to === "leader" && fn(c));
  }

  /**
   * Calls `fn` the moment this instance stops being leader (lost, closed,
   * unreachable, lease expired, stopped).
   *
   * @returns a function that removes the hook.
   *
   * @example
   * ```ts
   * elector.onDemoted(() => reconciler.pause());
   * ```
   */
  onDemoted(fn: (change: LeadershipChange) => void): () => void {
    return this.onChange((c) => c.from === "leader" && fn(c));
  }

  /**
   * Starts polling (the first poll at once). Idempotent.
   *
   * @example
   * ```ts
   * elector.start();
   * ```
   */
  start(): void {
    if (this.#started || this.#stopped) return;
    this.#started = true;
    this.#poll();
  }

  /**
   * The session's connection closed: demote at once if leading (the next
   * poll, on a new session, is a candidate's again). Also called for every
   * failed connection attempt, so it must not poll by itself.
   * {@linkcode createLeaderElector} connects it to the lock's `onClose`.
   *
   * @example
   * ```ts
   * const lock = new LeaderLock(db, { identity, onClose: () => elector.connectionClosed() });
   * ```
   */
  connectionClosed(): void {
    if (this.#stopped) return;
    this.#apply({ type: "closed", at: this.#clock.now() });
  }

  /**
   * Stops polling, demotes (hooks run), releases the lock and ends the
   * session. Never throws.
   *
   * @example
   * ```ts
   * await elector.stop();
   * ```
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#clock.clearTimeout(this.#pollTimer);
    this.#clock.clearTimeout(this.#leaseTimer);
    const wasLeader = this.isLeader;
    this.#apply({ type: "stopped", at: this.#clock.now() }, true);
    await this.#polling?.catch(() => {});
    if (wasLeader) await this.#lock.release().catch(() => {});
    await this.#lock.close();
  }

  /** Runs a poll now, or right after the one in flight. */
  #poll(): void {
    if (this.#stopped) return;
    this.#clock.clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    if (this.#polling) {
      this.#pollAgain = true;
      return;
    }
    this.#polling = this.#pollOnce().finally(() => {
      this.#polling = null;
      if (this.#stopped) return;
      if (this.#pollAgain) {
        this.#pollAgain = false;
        this.#poll();
      } else {
        this.#pollTimer = this.#clock.setTimeout(() => this.#poll(), this.timings.pollMs);
      }
    });
  }

  async #pollOnce(): Promise<void> {
    const at = this.#clock.now();
    let event: ElectorEvent;
    try {
      if (this.isLeader) {
        event = (await this.#lock.verify()) ? { type: "verified", at } : { type: "lost", at };
      } else if (await this.#lock.tryAcquire(at)) {
        event = {
          type: "acquired",
          at,
          self: { ...this.#identity, since: Math.floor(at / 1000) * 1000 },
        };
      } else {
        const h = await this.#lock.holder();
        event = { type: "refused", at, leader: h?.identity ?? null };
      }
    } catch (e) {
      event = {
        type: "unreachable",
        at: this.#clock.now(),
        error: e instanceof Error ? e.message : String(e),
      };
    }
    if (this.#stopped) {
      // Taken while stopping: give it back (stop() closes the session too).
      if (event.type === "acquired") await this.#lock.release().catch(() => {});
      return;
    }
    // A check answered after the lease demoted this instance, or a
    // connection closed meanwhile: what it says no longer counts.
    if (event.type === "verified" && !this.isLeader) return;
    this.#apply(event);
  }

  /** Applies an event; on a change runs the hooks; on demotion ends the session. */
  #apply(event: ElectorEvent, stopping = false): void {
    const before = this.#state;
    const after = transition(before, event);
    this.#state = after;
    if (after.role === "leader") this.#armLease();
    else this.#clock.clearTimeout(this.#leaseTimer);
    if (after.role === before.role) return;
    const change: LeadershipChange = {
      from: before.role,
      to: after.role,
      at: event.at,
      reason: after.reason,
    };
    if (after.role === "leader") {
      log.info("became leader ({reason})", { reason: after.reason });
    } else if (before.role === "leader") {
      log.warn("no longer leader: {reason}", { reason: after.reason });
    } else {
      log.info("role {from} → {to}: {reason}", { ...change });
    }
    for (const fn of [...this.#hooks]) {
      try {
        fn(change);
      } catch (e) {
        log.error("a leadership hook failed: {error}", { error: String(e) });
      }
    }
    // Whatever demoted it, the session must not keep the lock on its own.
    if (before.role === "leader" && !stopping) void this.#lock.reset();
  }

  #armLease(): void {
    this.#clock.clearTimeout(this.#leaseTimer);
    const from = this.#state.lastVerifiedAt ?? this.#clock.now();
    const leaseMs = this.timings.leaseMs;
    this.#leaseTimer = this.#clock.setTimeout(() => {
      this.#apply({ type: "lease_expired", at: this.#clock.now(), leaseMs });
    }, Math.max(0, from + leaseMs - this.#clock.now()));
  }
}

/**
 * This process's identity: `Deno.hostname()` (needs `--allow-sys=hostname`;
 * `"unknown-host"` without it) and `Deno.pid`.
 *
 * @example
 * ```ts
 * localIdentity(); // { host: "kick-01", pid: 4242 }
 * ```
 */
export function localIdentity(): { host: string; pid: number } {
  let host = "unknown-host";
  try {
    host = Deno.hostname();
  } catch {
    // not permitted (the compiled binary grants no --allow-sys): keep the placeholder
  }
  return { host, pid: Deno.pid };
}

/** Options for {@linkcode createLeaderElector}. */
export interface CreateElectorOptions {
  /** `MONITORING_LEADER_TAKEOVER` in ms. */
  readonly takeoverMs: number;
  /** Default {@linkcode localIdentity}. */
  readonly identity?: { readonly host: string; readonly pid: number };
  /** The schema the lock key is derived from (default `db.schema`). */
  readonly schema?: string;
}

/**
 * An elector over a real {@linkcode LeaderLock} on its own session, with the
 * timings of `takeoverMs` and the lock's `onClose` wired to
 * {@linkcode LeaderElector.connectionClosed}. Connects on `start()`.
 *
 * @throws {RangeError} for a `takeoverMs` below {@linkcode MIN_TAKEOVER_MS}.
 *
 * @example
 * ```ts
 * const elector = createLeaderElector(config.database, { takeoverMs: 10_000 });
 * elector.start();
 * ```
 */
export function createLeaderElector(
  db: DatabaseConfig,
  options: CreateElectorOptions,
): LeaderElector {
  const timings = electorTimings(options.takeoverMs);
  const identity = options.identity ?? localIdentity();
  const lock = new LeaderLock(db, {
    identity,
    schema: options.schema,
    deadPeerSec: timings.deadPeerSec,
    queryTimeoutMs: timings.queryTimeoutMs,
    // Called only once a statement ran, i.e. after `elector` exists.
    onClose: () => elector.connectionClosed(),
  });
  const elector = new LeaderElector({ lock, identity, takeoverMs: options.takeoverMs });
  return elector;
}
