/**
 * Commits status transitions: `UPDATE streamers` (the specification's
 * columns only) + `INSERT status_events` + kickmon's own state +
 * `pg_notify('kickmon_status', …)` in one call of
 * `kickmon.commit_transitions`, with group commit and a durable spool for
 * database outages.
 *
 * - **Group commit**: when idle, a transition is written at once (one
 *   statement, no timer). While a write is in flight, new transitions
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
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Transition } from "../core/types.ts";
import { LogRateLimiter } from "../log/logging.ts";
import { isDataError, type Sql, toDatabaseError } from "./client.ts";

const log = getLogger(["kickmon", "db", "writer"]);

/** A transition the database accepted. */
export interface CommittedTransition {
  readonly transition: Transition;
  readonly eventId: number;
  readonly previousStatus: string;
}

/** Result of one {@linkcode commitTransitions} call. */
export interface CommitResult {
  readonly committed: CommittedTransition[];
  /** Transitions the guards refused: duplicate, older than the stored observation, unknown or inactive streamer. */
  readonly rejected: Transition[];
}

function detailsOf(t: Transition): string {
  return JSON.stringify({
    source: t.source,
    event: t.event,
    ...(t.livestreamId !== undefined ? { livestream_id: t.livestreamId } : {}),
    ...(t.extra ?? {}),
  });
}

/**
 * Commits transitions in one statement. Each streamer may appear at most once
 * per call (callers split longer runs into rounds; see {@linkcode splitRounds}).
 *
 * @returns which transitions were committed (in input order) and which the guards refused.
 * @throws {DatabaseError} when the statement fails (`connection` true for outages).
 *
 * @example
 * ```ts
 * const { committed } = await commitTransitions(sql, [transition]);
 * ```
 */
export async function commitTransitions(
  sql: Sql,
  batch: readonly Transition[],
): Promise<CommitResult> {
  if (batch.length === 0) return { committed: [], rejected: [] };
  const ids = batch.map((t) => t.streamerId);
  const statuses = batch.map((t) => t.status);
  const observed = batch.map((t) => new Date(t.observedAt).toISOString());
  const eventTimes = batch.map((t) => new Date(t.eventTime).toISOString());
  const details = batch.map(detailsOf);
  const livestreams = batch.map((t) => t.livestreamId ?? null);
  let rows: { ord: string; event_id: string; previous_status: string }[];
  try {
    // kickmon.commit_transitions (migrations/kickmon_001_state.sql): the
    // guarded UPDATE of streamers, the status_events rows, kickmon's state and
    // the NOTIFY, in one round trip.
    rows = await sql`
      SELECT ord, event_id, previous_status FROM kickmon.commit_transitions(
        ${ids}::int[], ${statuses}::text[], ${observed}::timestamptz[],
        ${eventTimes}::timestamptz[], ${details}::text[]::jsonb[], ${livestreams}::bigint[])`;
  } catch (e) {
    throw toDatabaseError(e, "committing status transitions");
  }
  const committed: CommittedTransition[] = [];
  const done = new Set<number>();
  for (const r of rows) {
    const i = Number(r.ord) - 1;
    done.add(i);
    committed.push({
      transition: batch[i],
      eventId: Number(r.event_id),
      previousStatus: r.previous_status,
    });
  }
  const rejected = batch.filter((_, i) => !done.has(i));
  return { committed, rejected };
}

/**
 * Splits a queue into rounds in which each streamer appears at most once,
 * keeping every streamer's transitions in order (round k holds each
 * streamer's k-th transition).
 *
 * @example
 * ```ts
 * splitRounds([a1, b1, a2]); // [[a1, b1], [a2]]
 * ```
 */
export function splitRounds(queue: readonly Transition[]): Transition[][] {
  const rounds: Transition[][] = [];
  const seen = new Map<number, number>();
  for (const t of queue) {
    const k = seen.get(t.streamerId) ?? 0;
    seen.set(t.streamerId, k + 1);
    (rounds[k] ??= []).push(t);
  }
  return rounds;
}

/** Options for {@linkcode StatusWriter}. */
export interface StatusWriterOptions {
  /** Spool file path (JSON lines). Null disables durability (tests of the writer alone). */
  readonly spoolPath: string | null;
  /** Spool size bound, bytes. Beyond it, transitions coalesce per streamer in memory. */
  readonly spoolMaxBytes?: number;
  /** Largest number of transitions per statement. Default 1000. */
  readonly maxBatch?: number;
  /** Retry backoff while the database is unreachable: base and cap, ms. Default 250 / 5000. */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /** Called after each successful commit with what was committed and refused. */
  readonly onCommit?: (result: CommitResult) => void;
  /** Called when the database goes down (`false`) or comes back (`true`). */
  readonly onDatabaseState?: (up: boolean, error?: Error) => void;
}

/** Counters exposed as metrics. */
export interface WriterStats {
  /** Transitions waiting (in memory). */
  queueDepth: number;
  /** Bytes in the spool file. */
  spoolBytes: number;
  committedTotal: number;
  rejectedTotal: number;
  /** Transitions merged away because the spool hit its bound. */
  coalescedTotal: number;
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
  #spool: Deno.FsFile | null = null;
  #spooling = false;
  /** Spool lines waiting for the next append + fsync (one per few ms, not per event). */
  #spoolBuffer: Transition[] = [];
  #spoolTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | null = null;
  #drained: Array<() => void> = [];
  readonly #limit = new LogRateLimiter(3, 60_000);
  readonly stats: WriterStats = {
    queueDepth: 0,
    spoolBytes: 0,
    committedTotal: 0,
    rejectedTotal: 0,
    coalescedTotal: 0,
    droppedTotal: 0,
    statementsTotal: 0,
    databaseUp: true,
  };

  constructor(sql: Sql, opts: StatusWriterOptions) {
    this.#sql = sql;
    this.#opts = opts;
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
    const path = this.#opts.spoolPath;
    if (!path) return [];
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const loaded: Transition[] = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        loaded.push(JSON.parse(line) as Transition);
      } catch {
        log.warn("spool: skipping a torn line (crash while appending)", { path });
      }
    }
    if (loaded.length > 0) {
      log.info("spool: replaying {count} transitions from an earlier outage", {
        count: loaded.length,
        path,
      });
      this.#queue = [...loaded, ...this.#queue];
      this.stats.queueDepth = this.#queue.length;
      this.#started = false; // until start(): the caller first takes them into account
      // Keep the file: its content stays valid until the queue drains.
      this.#spool = await Deno.open(path, { append: true, create: true });
      this.#spooling = true;
      this.stats.spoolBytes = new TextEncoder().encode(text).length;
    }
    return loaded;
  }

  /** Starts committing (what {@linkcode open} loaded, then every enqueued transition). */
  start(): void {
    this.#started = true;
    this.#kick();
  }

  /** Queues a transition; it is committed as soon as the database allows. */
  enqueue(t: Transition): void {
    if (this.#closed) throw new Error("status writer is closed");
    if (this.#spooling) {
      if (this.stats.spoolBytes >= (this.#opts.spoolMaxBytes ?? 64 * 1024 * 1024)) {
        this.#coalesce(t);
        return;
      }
      this.#bufferSpool(t);
    }
    this.#queue.push(t);
    this.stats.queueDepth = this.#queue.length;
    this.#kick();
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
    if (!ok && this.#opts.spoolPath && !this.#spooling) {
      // Not yet spooled (the database was slow, not down): persist before exit.
      this.#startSpooling();
    }
    this.#flushSpool();
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#wake?.();
    this.#spool?.close();
    this.#spool = null;
    return ok;
  }

  /** Once the queue is empty: truncate the spool and wake `flush()` callers. */
  #afterProgress(): void {
    if (this.#queue.length > 0) return;
    this.#stopSpooling();
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

  #coalesce(t: Transition): void {
    // Spool full: keep only the latest pending transition per streamer in
    // memory, never touching the batch whose statement is in flight.
    const i = this.#queue.findLastIndex((q) => q.streamerId === t.streamerId);
    if (i >= this.#inflight && i === this.#queue.length - 1) {
      const replaced = this.#queue[i];
      this.#queue[i] = t;
      this.#report({ committed: [], rejected: [replaced] });
    } else {
      this.#queue.push(t);
    }
    this.stats.coalescedTotal++;
    this.stats.queueDepth = this.#queue.length;
    if (this.#limit.allow("spool-full")) {
      log.error(
        "spool full ({bytes} bytes): transitions coalesce per streamer until the database returns",
        { bytes: this.stats.spoolBytes },
      );
    }
  }

  #bufferSpool(t: Transition): void {
    this.#spoolBuffer.push(t);
    // One append + fsync for everything that arrives within a few ms, so a
    // burst during an outage does not block the event loop once per event.
    this.#spoolTimer ??= setTimeout(() => this.#flushSpool(), 5);
  }

  #flushSpool(): void {
    clearTimeout(this.#spoolTimer);
    this.#spoolTimer = undefined;
    if (this.#spoolBuffer.length === 0) return;
    const ts = this.#spoolBuffer;
    this.#spoolBuffer = [];
    this.#appendSpool(ts);
  }

  #appendSpool(ts: readonly Transition[]): void {
    if (!this.#spool || ts.length === 0) return;
    // receivedMono is a performance.now() of this process: meaningless after a restart.
    const lines = ts.map(({ receivedMono: _m, ...rest }) => JSON.stringify(rest));
    const data = new TextEncoder().encode(lines.join("\n") + "\n");
    let off = 0;
    while (off < data.length) off += this.#spool.writeSync(data.subarray(off));
    this.#spool.syncDataSync();
    this.stats.spoolBytes += data.length;
  }

  #startSpooling(): void {
    const path = this.#opts.spoolPath;
    if (!path || this.#spooling) return;
    try {
      this.#spool = Deno.openSync(path, { write: true, create: true, truncate: true });
      this.stats.spoolBytes = 0;
      this.#spooling = true;
      this.#spoolBuffer = [];
      this.#appendSpool(this.#queue);
      log.warn("database unreachable: spooling {count} transitions to {path}", {
        count: this.#queue.length,
        path,
      });
    } catch (e) {
      log.error("cannot write spool {path}: {error}; transitions are kept in memory only", {
        path,
        error: String(e),
      });
    }
  }

  #stopSpooling(): void {
    if (!this.#spooling) return;
    this.#spooling = false;
    clearTimeout(this.#spoolTimer);
    this.#spoolTimer = undefined;
    this.#spoolBuffer = [];
    try {
      this.#spool?.close();
    } catch { /* already closed */ }
    this.#spool = null;
    if (this.#opts.spoolPath) {
      try {
        Deno.truncateSync(this.#opts.spoolPath, 0);
      } catch { /* gone */ }
    }
    this.stats.spoolBytes = 0;
  }

  #kick(): void {
    // A running loop picks new transitions up itself; waking it here would
    // turn every enqueue during an outage into a reconnect attempt.
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
      const max = this.#opts.maxBatch ?? 1000;
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
        this.#queue.splice(0, batch.length);
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
      this.#startSpooling();
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
