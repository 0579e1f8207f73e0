/**
 * Commits status transitions: `UPDATE streamers` (the specification's
 * columns only) + `INSERT status_events` + kickmon's own state +
 * `pg_notify('kickmon_status', …)` in one call of
 * `kickmon.commit_transitions`, with group commit and a durable spool for
 * database outages.
 *
 * - **Group commit**: when idle, a transition is written in the same turn
 *   of the event loop (one statement, no timer: the statement starts from
 *   `setImmediate`, after the other frames that arrived with it, so that
 *   they go out together). While a write is in flight, new transitions
 *   accumulate and go out together in the next statement, so throughput
 *   scales with load and latency stays at one round trip when idle.
 * - **Guards in the database**: a row changes only when its status differs
 *   (`IS DISTINCT FROM`, so duplicates write nothing), the streamer is
 *   active, and no newer observation is already committed
 *   (`kickmon.streamer_state.status_observed_at <= observed_at`). The last guard also makes spool
 *   replay idempotent.
 * - **Outages**: when PostgreSQL is unreachable, every queued transition is
 *   appended to a spool file (JSON lines, fsynced) and kept in memory; the
 *   writer retries with backoff and, once the database is back, commits the
 *   queue in order and truncates the spool. A spool found at start (a crash
 *   during an outage) is replayed first.
 *
 * This module holds the queue and the policy around it (group commit,
 * retry, the per-streamer cap and the queue bound); its parts live beside
 * it: the statement in `commit_transitions.ts`, the collapse rules in
 * `collapse.ts`, the spool's policy while the database is away (buffered
 * appends, rewrites, the spool bound, retrying a failed write) in
 * `outage_spool.ts`, the spool file's I/O in `spool.ts`.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { setImmediate } from "node:timers";
import type { Transition } from "../core/types.ts";
import { LogRateLimiter } from "../log/logging.ts";
import { isDataError, type Sql } from "./client.ts";
import { collapseLastTwo, netPerStreamer } from "./collapse.ts";
import { type CommitResult, commitTransitions, splitRounds } from "./commit_transitions.ts";
import { OutageSpool, type SpoolStats } from "./outage_spool.ts";
import { SpoolFile } from "./spool.ts";

const log = getLogger(["kickmon", "db", "writer"]);

export {
  type CommitResult,
  type CommittedTransition,
  commitTransitions,
  splitRounds,
} from "./commit_transitions.ts";

/** Options for {@linkcode StatusWriter}. */
export interface StatusWriterOptions {
  /** Spool file path (JSON lines). Null disables durability (tests of the writer alone). */
  readonly spoolPath: string | null;
  /**
   * Spool size bound, bytes. Reaching it, the spool is rewritten from the
   * queue; still over half of it, each streamer's pending transitions
   * collapse to the net one (see {@linkcode StatusWriter}). Default 64 MiB.
   */
  readonly spoolMaxBytes?: number;
  /**
   * Most transitions of one streamer waiting in the queue (≥ 2) while the
   * database is up. One more collapses the last two into the newest (the
   * history row says so). Bounds memory under any frame rate and keeps a
   * noisy channel from delaying the others by more than one commit (a commit
   * has at most this many rounds). During an outage the spool keeps
   * everything up to its own bound instead. Default 16.
   */
  readonly maxPendingPerStreamer?: number;
  /**
   * Most transitions in the queue (memory bound, whatever the frame rate).
   * Reaching it, each streamer's pending transitions collapse to the net one
   * until the queue has drained. Default 100000.
   */
  readonly maxQueue?: number;
  /** Largest number of transitions per statement. Default 1000. */
  readonly maxBatch?: number;
  /** Retry backoff while the database is unreachable: base and cap, ms. Default 250 / 5000. */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** Called after each successful commit with what was committed and refused. */
  readonly onCommit?: (result: CommitResult) => void;
  /** Called when the database goes down (`false`) or comes back (`true`). */
  readonly onDatabaseState?: (up: boolean, error?: Error) => void;
  /**
   * Called with transitions taken out of the queue without being written
   * (collapsed: a newer transition of the same streamer carries the net state).
   */
  readonly onCollapsed?: (dropped: readonly Transition[]) => void;
}

/** Counters exposed as metrics (the spool's: {@linkcode SpoolStats}). */
export interface WriterStats extends SpoolStats {
  /** Transitions waiting (in memory). */
  queueDepth: number;
  committedTotal: number;
  rejectedTotal: number;
  /**
   * Transitions never written because a newer one of the same streamer
   * superseded them (too many pending for one streamer, or the spool bound).
   */
  collapsedTotal: number;
  /** Transitions the database refused as invalid data (SQLSTATE class 22/23), dropped. */
  droppedTotal: number;
  statementsTotal: number;
  /** Whether the last write attempt reached the database. */
  databaseUp: boolean;
}

/**
 * The single writer of status transitions. Order per streamer is preserved.
 *
 * @example
 * ```ts
 * const writer = new StatusWriter(sql, { spoolPath: "./state/spool.jsonl" });
 * await writer.open(); // loads a spool left by a crash
 * writer.start(); // commits it, then everything enqueued
 * writer.enqueue(transition);
 * await writer.close(5_000);
 * ```
 */
export class StatusWriter {
  readonly #sql: Sql;
  readonly #opts: StatusWriterOptions;
  #queue: Transition[] = [];
  #loop: Promise<void> | null = null;
  /** False only between an {@linkcode open} that loaded a spool and {@linkcode start}. */
  #started = true;
  /** Transitions at the head of the queue whose statement is in flight. */
  #inflight = 0;
  /** The outage spool (null without `spoolPath`). */
  readonly #spool: OutageSpool | null;
  /** Transitions per streamer in the queue. */
  readonly #perStreamer = new Map<number, number>();
  /** Per-streamer cap in force: the option, or 2 once the spool or queue bound was reached. */
  #cap: number;
  /** Why the cap is 2, for the history rows. */
  #capWhy = "";

  #closed = false;
  /** A start of the loop is scheduled (see {@linkcode StatusWriter.#kick}). */
  #kickScheduled = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | null = null;
  #drained: Array<() => void> = [];
  readonly #limit = new LogRateLimiter(3, 60_000);
  readonly stats: WriterStats = {
    queueDepth: 0,
    spoolBytes: 0,
    committedTotal: 0,
    rejectedTotal: 0,
    collapsedTotal: 0,
    spoolTransitions: 0,
    spoolError: null,
    spoolWriteErrorsTotal: 0,
    spoolCompacted: false,
    droppedTotal: 0,
    statementsTotal: 0,
    databaseUp: true,
  };

  constructor(sql: Sql, opts: StatusWriterOptions) {
    this.#sql = sql;
    this.#opts = opts;
    this.#spool = opts.spoolPath
      ? new OutageSpool(new SpoolFile(opts.spoolPath), opts.spoolMaxBytes ?? 64 * 1024 * 1024, {
        queue: () => this.#queue,
        compactToNet: () => this.#compactToNet(),
        isClosed: () => this.#closed,
        stats: this.stats,
      })
      : null;
    this.#cap = this.#normalCap;
  }

  /**
   * Loads a spool left by an earlier run (a crash during an outage) into the
   * queue, ahead of anything new. Nothing is committed before
   * {@linkcode start}, so the caller can first take the loaded transitions
   * into account.
   *
   * @returns the spooled transitions that were loaded, oldest first.
   * @throws {Deno.errors.PermissionDenied} when the spool cannot be read.
   */
  async open(): Promise<Transition[]> {
    const spool = this.#spool;
    if (!spool) return [];
    const { transitions: loaded, bytes } = await spool.read();
    if (loaded.length > 0) {
      const path = spool.path;
      log.info("spool: replaying {count} transitions from an earlier outage", {
        count: loaded.length,
        path,
      });
      this.#queue = [...loaded, ...this.#queue];
      for (const t of loaded) this.#count(t.streamerId, 1);
      this.stats.queueDepth = this.#queue.length;
      this.#started = false; // until start(): the caller first takes them into account
      // Keep the file: its content stays valid until the queue drains.
      await spool.resume(loaded.length, bytes);
    }
    return loaded;
  }

  /** Starts committing (what {@linkcode open} loaded, then every enqueued transition). */
  start(): void {
    this.#started = true;
    this.#kick();
  }

  /**
   * Queues a transition; it is committed as soon as the database allows.
   * While the database is down it is also appended to the spool (fsynced
   * within ~5 ms). A streamer already holding its cap of pending transitions
   * has its last two collapsed into this one (`details.collapsed`).
   *
   * @throws {Error} after {@linkcode close}.
   */
  enqueue(t: Transition): void {
    if (this.#closed) throw new Error("status writer is closed");
    const next = this.#collapse(t);
    this.#queue.push(next);
    this.#count(next.streamerId, 1);
    if (this.#queue.length >= (this.#opts.maxQueue ?? 100_000) && !this.stats.spoolCompacted) {
      log.error(
        "{count} transitions waiting to be written: each streamer now keeps only its net " +
          "transition until the queue has drained",
        { count: this.#queue.length },
      );
      this.#compactToNet("the write queue reached its bound");
      this.#spool?.markDirty();
    }
    this.stats.queueDepth = this.#queue.length;
    if (this.#spool?.active) this.#spool.buffer(next);
    this.#kick();
  }

  get #normalCap(): number {
    return Math.max(2, this.#opts.maxPendingPerStreamer ?? 16);
  }

  #count(streamerId: number, delta: number): void {
    const n = (this.#perStreamer.get(streamerId) ?? 0) + delta;
    if (n > 0) this.#perStreamer.set(streamerId, n);
    else this.#perStreamer.delete(streamerId);
  }

  /**
   * Applies the per-streamer cap to a new transition. Pending transitions of
   * one streamer alternate, so two consecutive ones are a flip and back:
   * removing the last two and appending `t` keeps the net state, the newest
   * time and livestream, and the first transitions of the burst.
   *
   * @returns what to append: `t`, marked when something collapsed.
   */
  #collapse(t: Transition): Transition {
    const id = t.streamerId;
    // During an outage the spool (and its bound) keeps everything instead.
    if (this.#spool?.active && !this.stats.spoolCompacted) return t;
    if ((this.#perStreamer.get(id) ?? 0) < this.#cap) return t;
    const because = this.stats.spoolCompacted
      ? this.#capWhy
      : `more than ${this.#cap} transitions of this streamer waited for one commit`;
    // The last pending ones of this streamer, never the batch in flight.
    const r = collapseLastTwo(this.#queue, this.#inflight, t, because);
    if (!r) return t;
    const dropped = r.removed;
    this.#count(id, -dropped.length);
    this.#spool?.markDirty(); // the file still holds them
    this.stats.collapsedTotal += dropped.length;
    this.#notifyCollapsed(dropped);
    if (this.#limit.allow("collapsed")) {
      log.warn(
        "streamer {id}: {count} pending transitions collapsed into the newest ({why}); " +
          "the history row carries details.collapsed",
        {
          id,
          count: dropped.length,
          why: this.stats.spoolCompacted ? this.#capWhy : `more than ${this.#cap} pending`,
        },
      );
    }
    return r.next;
  }

  #notifyCollapsed(dropped: readonly Transition[]): void {
    try {
      this.#opts.onCollapsed?.(dropped);
    } catch (e) {
      log.error("onCollapsed hook failed: {error}", { error: String(e) });
    }
  }

  /**
   * Age of the oldest uncommitted transition, ms since it was observed
   * (0 when the queue is empty).
   */
  lagMs(): number {
    const t = this.#queue[0];
    return t ? Math.max(0, Date.now() - t.observedAt) : 0;
  }

  /** Number of transitions not yet committed. */
  get depth(): number {
    return this.#queue.length;
  }

  /**
   * Resolves when the queue is empty or after `timeoutMs`.
   *
   * @returns true when everything was committed.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.#queue.length === 0 && !this.#loop) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drained = new Promise<boolean>((resolve) => this.#drained.push(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    this.#kick();
    this.#wake?.(); // retry now instead of at the end of the backoff
    try {
      return await Promise.race([drained, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Flushes (bounded by `timeoutMs`) and stops. What could not be committed
   * stays in the spool for the next start.
   *
   * @returns true when the queue was fully committed.
   */
  async close(timeoutMs: number): Promise<boolean> {
    const ok = await this.flush(timeoutMs);
    const spool = this.#spool;
    if (!ok && spool && !spool.active) {
      // Not yet spooled (the database was slow, not down): persist before exit.
      spool.start();
    }
    // The spool left for the next start holds exactly the queue.
    if (!ok && spool?.active && spool.needsRewrite) spool.rewrite();
    else spool?.flush();
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#wake?.();
    spool?.dispose();
    return ok;
  }

  /** Once the queue is empty: truncate the spool and wake `flush()` callers. */
  #afterProgress(): void {
    if (this.#queue.length > 0) return;
    this.#cap = this.#normalCap;
    this.stats.spoolCompacted = false;
    this.#spool?.stop();
    const waiters = this.#drained;
    this.#drained = [];
    for (const w of waiters) w();
  }

  /** Reports results to the `onCommit` hook; a throwing hook cannot disturb the writer. */
  #report(result: CommitResult): void {
    this.stats.committedTotal += result.committed.length;
    this.stats.rejectedTotal += result.rejected.length;
    try {
      this.#opts.onCommit?.(result);
    } catch (e) {
      log.error("onCommit hook failed: {error}", { error: String(e) });
    }
  }

  /**
   * Commits a batch one transition at a time after the batch as a whole was
   * refused as invalid data. Transitions refused again are dropped and
   * reported as rejected.
   *
   * @returns `"outage"` when the database went away meanwhile (retry the
   *   batch: guards make the replay of what did commit a no-op), else done.
   */
  async #isolate(batch: readonly Transition[]): Promise<"done" | "outage"> {
    for (const t of batch) {
      try {
        this.#report(await commitTransitions(this.#sql, [t]));
      } catch (e) {
        if (!isDataError(e)) return "outage";
        this.stats.droppedTotal++;
        log.error("the database refused a transition, dropping it: {error} {transition}", {
          error: String(e),
          transition: { streamerId: t.streamerId, status: t.status, source: t.source },
        });
        this.#report({ committed: [], rejected: [t] });
      }
    }
    return "done";
  }

  /**
   * Cap 2: every streamer's pending (not in flight) transitions collapse to
   * the net one, or, for a run that ends where it started, to its last flip
   * and back (so every collapsed transition is still counted in a row).
   */
  #compactToNet(why = "the outage spool reached SYSTEM_SPOOL_MAX_BYTES"): void {
    this.#cap = 2;
    this.#capWhy = why;
    this.stats.spoolCompacted = true;
    const { kept, dropped } = netPerStreamer(this.#queue.slice(this.#inflight), why);
    const out = this.#queue.slice(0, this.#inflight);
    for (const t of kept) out.push(t);
    this.#queue = out;
    this.#perStreamer.clear();
    for (const t of out) this.#count(t.streamerId, 1);
    this.stats.queueDepth = out.length;
    this.stats.collapsedTotal += dropped.length;
    if (dropped.length) this.#notifyCollapsed(dropped);
  }

  #kick(): void {
    // A running loop picks new transitions up itself; waking it here would
    // turn every enqueue during an outage into a reconnect attempt.
    if (this.#loop || this.#kickScheduled || !this.#started || this.#closed) return;
    // Start after the I/O callbacks of this turn of the event loop: frames
    // that arrived together (several sockets, one read) share one statement
    // instead of the first going alone and the rest waiting for its round
    // trip. postgres.js sends a small statement from setImmediate anyway, so
    // this adds no wait; and each statement costs kickmon its socket write and
    // read (~0.3 ms of the main thread in the write alone under the bench load,
    // issue 15, --cpu-prof), whatever it carries.
    this.#kickScheduled = true;
    setImmediate(() => {
      this.#kickScheduled = false;
      this.#startLoop();
    });
  }

  #startLoop(): void {
    if (this.#loop || !this.#started || this.#closed) return;
    this.#loop = this.#run().catch((e) => {
      // #run handles its errors; this is a last guard against a bug killing the process.
      log.error("status writer loop failed: {error}", { error: String(e) });
    }).finally(() => {
      this.#loop = null;
      if (this.#queue.length > 0 && !this.#closed) this.#kick();
    });
  }

  async #run(): Promise<void> {
    let attempt = 0;
    while (this.#queue.length > 0 && !this.#closed) {
      // While the database is away each retry is a probe of one transition, so
      // that nearly the whole queue stays free for the spool's compaction.
      const max = this.stats.databaseUp ? this.#opts.maxBatch ?? 1000 : 1;
      const batch = this.#queue.slice(0, max);
      this.#inflight = batch.length;
      let results: CommitResult[] | null = null;
      let failure: unknown = null;
      try {
        const rounds = splitRounds(batch);
        const out: CommitResult[] = [];
        if (rounds.length === 1) {
          out.push(await commitTransitions(this.#sql, rounds[0]));
        } else {
          await this.#sql.begin(async (tx) => {
            for (const r of rounds) out.push(await commitTransitions(tx as unknown as Sql, r));
          });
        }
        this.stats.statementsTotal += rounds.length;
        results = out;
      } catch (e) {
        failure = e;
      }
      if (failure !== null && isDataError(failure)) {
        // Bad data (SQLSTATE class 22/23) is not an outage: find the
        // transitions the database refuses, one at a time, drop only those
        // (loudly), and keep the rest of the queue moving.
        if ((await this.#isolate(batch)) === "done") {
          failure = null;
          results = [];
        }
      }
      this.#inflight = 0;
      if (failure === null) {
        for (const t of this.#queue.splice(0, batch.length)) this.#count(t.streamerId, -1);
        if (this.#spool?.active) {
          this.stats.spoolTransitions = Math.max(0, this.stats.spoolTransitions - batch.length);
        }
        this.stats.queueDepth = this.#queue.length;
        if (!this.stats.databaseUp) {
          this.stats.databaseUp = true;
          log.info("database reachable again; committed {count} queued transitions", {
            count: batch.length,
          });
          this.#opts.onDatabaseState?.(true);
        }
        attempt = 0;
        for (const r of results ?? []) this.#report(r);
        this.#afterProgress();
        continue;
      }
      // Anything else (unreachable, restarting, too many connections, a
      // missing table …) is retried with backoff and spooled: never dropped.
      if (this.stats.databaseUp) {
        this.stats.databaseUp = false;
        this.#opts.onDatabaseState?.(false, failure as Error);
        log.error("database unreachable while writing: {error}", { error: String(failure) });
      }
      this.#spool?.start();
      attempt++;
      const base = this.#opts.retryBaseMs ?? 250;
      const cap = this.#opts.retryMaxMs ?? 5000;
      const delay = Math.min(cap, base * 2 ** Math.min(attempt, 10));
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#retryTimer = setTimeout(resolve, delay * (0.5 + Math.random() / 2));
      });
      clearTimeout(this.#retryTimer);
      this.#wake = null;
    }
  }
}
