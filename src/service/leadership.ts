/**
 * Leader election (issue 14): which one of several kickmon instances on one
 * database spends the API budget (reconciliation, identity resolution,
 * webhook subscription management, the unofficial lookup). `kickmon start`
 * builds one (`src/cli/start.ts`) and hands it to the monitor, which starts
 * and stops it; the official-API plugin follows its promotions and
 * demotions (`service/official.ts`).
 *
 * {@linkcode LeaderElector} is the shell around the pure state machine of
 * `leadership_state.ts` (roles `leader | standby | unknown`, one
 * `transition` function, the timings): it polls the lock of
 * `db/leader_lock.ts`, feeds the answers in as events and runs the hooks.
 *
 * With the timings of `leadership_state.ts` (default bound 10 s: poll 2 s,
 * lease 4 s, dead peer 6 s) a standby takes over within one poll of the
 * leader's process dying (its socket closes, the server frees the lock at
 * once), and within dead peer + poll (8 s) of the leader's host or network
 * dying. A leader that cannot reach the database demotes itself after the
 * lease, before the server can free its lock for someone else (lease < dead
 * peer, measured from the same statement); one whose session closed (a
 * PostgreSQL restart or failover, `pg_terminate_backend`) demotes at once,
 * before any other poll could see the lock free, and re-checks `pg_locks` on
 * its new session before it claims anything. On demotion the elector ends
 * its session, so a lock held by a hung session cannot outlive the
 * leadership it stood for.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { DatabaseConfig } from "../config/config.ts";
import { LeaderLock, type LockHolder } from "../db/leader_lock.ts";
import {
  type ElectorEvent,
  type ElectorState,
  type ElectorTimings,
  electorTimings,
  initialState,
  type Role,
  transition,
} from "./leadership_state.ts";

const log = getLogger(["kickmon", "leadership"]);

/**
 * What the elector needs of the lock; {@linkcode LeaderLock} has it (tests
 * pass a fake).
 *
 * @example
 * ```ts
 * const port: LockPort = new LeaderLock(config.database, { identity: localIdentity() });
 * ```
 */
export interface LockPort {
  /** Takes the lock if free; true when this session holds it (checked in `pg_locks`). */
  tryAcquire(since: number): Promise<boolean>;
  /** Whether this session still holds it. */
  verify(): Promise<boolean>;
  /** Who holds it, or null. */
  holder(): Promise<LockHolder | null>;
  /** Gives it up. */
  release(): Promise<void>;
  /** Ends the current session (the next call connects a new one). Never throws. */
  reset(): Promise<void>;
  /** Ends the session for good. Never throws. */
  close(): Promise<void>;
}

/**
 * Timer functions, injectable for deterministic tests.
 *
 * @example
 * ```ts
 * const clock: ElectorClock = { now: Date.now, setTimeout, clearTimeout };
 * ```
 */
export interface ElectorClock {
  /** ms since the Unix epoch. */
  now(): number;
  /** Returns a handle for `clearTimeout`. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer of `setTimeout` (undefined: nothing). */
  clearTimeout(handle: unknown): void;
}

const REAL_CLOCK: ElectorClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout> | undefined),
};

/**
 * A change of role, as the hooks receive it.
 *
 * @example
 * ```ts
 * elector.onChange((c: LeadershipChange) => console.log(`${c.from} → ${c.to}: ${c.reason}`));
 * ```
 */
export interface LeadershipChange {
  /** The role before. */
  readonly from: Role;
  /** The role now. */
  readonly to: Role;
  /** When, ms since the Unix epoch. */
  readonly at: number;
  /** Why, in words (e.g. "the leader lock's session closed"). */
  readonly reason: string;
}

/**
 * What `/health` and `kickmon status` show (snake_case, as all JSON of kickmon).
 *
 * @example
 * ```ts
 * const s: LeadershipSnapshot = elector.snapshot();
 * // { role: "standby", since: 1764650000000, leader: { host: "kick-02", pid: 811,
 * //   since: 1764640000000 }, changes_total: 0, eligible: true,
 * //   reason: "another instance holds the leader lock" }
 * ```
 */
export interface LeadershipSnapshot {
  /** This instance's role. */
  readonly role: Role;
  /** When this instance got its role, ms since the Unix epoch. */
  readonly since: number;
  /** The leader: this instance, another one, or null (unknown / nobody). `since` in ms. */
  readonly leader:
    | { readonly host: string; readonly pid: number; readonly since: number | null }
    | null;
  /** Promotions + demotions of this instance. */
  readonly changes_total: number;
  /** Whether this instance may lead (`MONITORING_LEADER_ELIGIBLE`). */
  readonly eligible: boolean;
  /** Why the role is what it is. */
  readonly reason: string;
}

/**
 * Options for {@linkcode LeaderElector}.
 *
 * @example
 * ```ts
 * const opts: ElectorOptions = { lock, identity: localIdentity(), takeoverMs: 10_000 };
 * ```
 */
export interface ElectorOptions {
  /** The lock (a {@linkcode LeaderLock}, or a fake in tests). */
  readonly lock: LockPort;
  /** This instance (host name, OS pid). */
  readonly identity: { readonly host: string; readonly pid: number };
  /** The takeover bound in ms, see {@linkcode electorTimings}. */
  readonly takeoverMs: number;
  /** Injected clock and timers (default: the real ones). */
  readonly clock?: ElectorClock;
  /**
   * May this instance take the lock? Default true. An ineligible elector
   * (`MONITORING_LEADER_ELIGIBLE=false`, or `kickmon start --manual` beside a
   * running service) never tries it: it stays `standby` and reports who leads.
   */
  readonly eligible?: boolean;
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
  /** The poll, lease and timeout of this elector's `takeoverMs`. */
  readonly timings: ElectorTimings;
  readonly #lock: LockPort;
  readonly #identity: { readonly host: string; readonly pid: number };
  readonly #clock: ElectorClock;
  /** See {@linkcode ElectorOptions.eligible}. */
  readonly eligible: boolean;
  readonly #hooks = new Set<(c: LeadershipChange) => void>();
  #state: ElectorState;
  #pollTimer: unknown;
  #leaseTimer: unknown;
  #polling: Promise<void> | null = null;
  #pollAgain = false;
  #started = false;
  #stopped = false;

  /**
   * Makes an elector; nothing runs before {@linkcode LeaderElector.start}.
   *
   * @param options the lock, this instance's identity, the takeover bound, the clock.
   * @throws {RangeError} for a `takeoverMs` {@linkcode electorTimings} refuses.
   */
  constructor(options: ElectorOptions) {
    this.timings = electorTimings(options.takeoverMs);
    this.#lock = options.lock;
    this.#identity = options.identity;
    this.#clock = options.clock ?? REAL_CLOCK;
    this.eligible = options.eligible ?? true;
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
      eligible: this.eligible,
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
      } else if (this.eligible && await this.#lock.tryAcquire(at)) {
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
    // not permitted (a build without --allow-sys=hostname): keep the placeholder
  }
  return { host, pid: Deno.pid };
}

/**
 * Options for {@linkcode createLeaderElector}.
 *
 * @example
 * ```ts
 * const opts: CreateElectorOptions = { takeoverMs: config.monitoring.leaderTakeoverMs };
 * ```
 */
export interface CreateElectorOptions {
  /** `MONITORING_LEADER_TAKEOVER` in ms. */
  readonly takeoverMs: number;
  /** Default {@linkcode localIdentity}. */
  readonly identity?: { readonly host: string; readonly pid: number };
  /** The schema the lock key is derived from (default `db.schema`). */
  readonly schema?: string;
  /** See {@linkcode ElectorOptions.eligible}; default true. */
  readonly eligible?: boolean;
}

/**
 * An elector over a real {@linkcode LeaderLock} on its own session, with the
 * timings of `takeoverMs` and the lock's `onClose` wired to
 * {@linkcode LeaderElector.connectionClosed}. Connects on `start()`.
 *
 * @throws {RangeError} for a `takeoverMs` below `MIN_TAKEOVER_MS` (leadership_state.ts).
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
  const elector = new LeaderElector({
    lock,
    identity,
    takeoverMs: options.takeoverMs,
    eligible: options.eligible,
  });
  return elector;
}
