/**
 * The status writer's outage spool policy: while PostgreSQL is unreachable
 * every queued transition is appended to the spool file (buffered, one
 * fsynced append per ~5 ms); when the file no longer matches the queue (a
 * collapse, a failed write) or reaches `SYSTEM_SPOOL_MAX_BYTES`, it is
 * rewritten from the queue (at most once a second), collapsing the queue to
 * the net transition per streamer when it is still over half the bound; a
 * failed write (ENOSPC, EIO …) is logged, shown in the stats and retried
 * every second. Sizes are bytes, times ms.
 *
 * The file's I/O is `spool.ts`; the queue it mirrors belongs to the writer
 * (`status_writer.ts`), which this module reaches through
 * {@linkcode OutageSpoolHost}.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Transition } from "../core/types.ts";
import { LogRateLimiter } from "../log/logging.ts";
import type { SpoolFile } from "./spool.ts";

const log = getLogger(["kickmon", "db", "writer"]);

/** The spool's counters, part of the writer's stats (`WriterStats`). */
export interface SpoolStats {
  /** Bytes in the spool file. */
  spoolBytes: number;
  /** Transitions in the queue that the spool file holds (fsynced), while spooling. */
  spoolTransitions: number;
  /** The last spool write error (e.g. ENOSPC), null once a write succeeded again. */
  spoolError: string | null;
  /** Failed spool writes (each retried). */
  spoolWriteErrorsTotal: number;
  /** The spool or queue bound was reached: each streamer keeps only its net transition. */
  spoolCompacted: boolean;
}

/** What the spool needs from the writer that owns the queue. */
export interface OutageSpoolHost {
  /** The queue, oldest first: what a rewrite writes. */
  readonly queue: () => readonly Transition[];
  /** Collapses the queue's pending transitions to the net one per streamer (sets `spoolCompacted`). */
  readonly compactToNet: () => void;
  /** Whether the writer was closed (no more retries are scheduled then). */
  readonly isClosed: () => boolean;
  /** The writer's stats, updated in place. */
  readonly stats: SpoolStats;
}

/**
 * The spool while the database is away.
 *
 * @example
 * ```ts
 * const spool = new OutageSpool(new SpoolFile("./state/spool.jsonl"), 64 * 1024 * 1024, host);
 * spool.start(); // the database went away: the file now holds the queue
 * spool.buffer(transition); // appended and fsynced within ~5 ms
 * spool.stop(); // the queue was committed: the file is emptied
 * ```
 */
export class OutageSpool {
  readonly #file: SpoolFile;
  readonly #maxBytes: number;
  readonly #host: OutageSpoolHost;
  #active = false;
  /** Spool lines waiting for the next append + fsync (one per few ms, not per event). */
  #buffer: Transition[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The spool file does not hold exactly the queue (a failed write, a collapse): rewrite it. */
  #dirty = false;
  /** performance.now() of the last whole rewrite of the spool. */
  #lastRewrite = -Infinity;
  readonly #limit = new LogRateLimiter(3, 60_000);

  /**
   * @param file the spool file.
   * @param maxBytes `SYSTEM_SPOOL_MAX_BYTES`, bytes.
   * @param host the writer owning the queue.
   */
  constructor(file: SpoolFile, maxBytes: number, host: OutageSpoolHost) {
    this.#file = file;
    this.#maxBytes = maxBytes;
    this.#host = host;
  }

  /** The spool file's path. */
  get path(): string {
    return this.#file.path;
  }

  /** Whether transitions are being spooled (the database is away, or a spool is being replayed). */
  get active(): boolean {
    return this.#active;
  }

  /** Reads what an earlier run left (see `SpoolFile.read`). */
  read(): Promise<{ transitions: Transition[]; bytes: number }> {
    return this.#file.read();
  }

  /**
   * Goes on spooling into the file an earlier run left, which holds the
   * `transitions` (`bytes` bytes) now at the head of the queue; its content
   * stays valid until the queue drains.
   *
   * @throws what opening the file throws.
   */
  async resume(transitions: number, bytes: number): Promise<void> {
    this.#host.stats.spoolTransitions = transitions;
    await this.#file.openForAppend();
    this.#active = true;
    this.#host.stats.spoolBytes = bytes;
  }

  /** The file no longer holds exactly the queue (while spooling): the next flush rewrites it. */
  markDirty(): void {
    this.#dirty ||= this.#active;
  }

  /**
   * Whether the file must be rewritten to hold exactly the queue (a
   * collapse or failed write since, over the bound, or no open file).
   */
  get needsRewrite(): boolean {
    return this.#dirty || this.#host.stats.spoolBytes > this.#maxBytes || !this.#file.isOpen;
  }

  /** Buffers one queued transition for the next append. */
  buffer(t: Transition): void {
    this.#buffer.push(t);
    // One append + fsync for everything that arrives within a few ms, so a
    // burst during an outage does not block the event loop once per event.
    this.#timer ??= setTimeout(() => this.flush(), 5);
  }

  /**
   * Appends what is buffered (or rewrites the whole spool when it no longer
   * matches the queue or reached its bound). Never throws: a failed write
   * (ENOSPC, EIO …) is logged, shown in the stats and retried every second;
   * the transitions stay queued in memory meanwhile, bounded by the
   * per-streamer cap.
   */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#active) return;
    const stats = this.#host.stats;
    const open = this.#file.isOpen;
    const stale = this.#dirty || stats.spoolBytes >= this.#maxBytes || !open;
    // A whole rewrite at most once a second (a flood of collapses would
    // otherwise rewrite the file every few ms); appends go on meanwhile.
    const wait = this.#lastRewrite + 1000 - performance.now();
    if (stale && (wait <= 0 || !open)) {
      if (wait <= 0) this.rewrite();
      else this.#timer = setTimeout(() => this.flush(), wait);
      return;
    }
    if (stale) this.#timer = setTimeout(() => this.flush(), wait);
    if (this.#buffer.length === 0 || !open) return;
    const ts = this.#buffer;
    this.#buffer = [];
    try {
      stats.spoolBytes += this.#file.append(ts);
      stats.spoolTransitions += ts.length;
      this.#ok();
    } catch (e) {
      this.#failed(e); // a partly written append: rewrite the whole file next time
    }
  }

  /**
   * Replaces the spool with exactly the queue (written to a temporary file,
   * fsynced, renamed over the old one). When the result is still over half
   * the bound, each streamer's pending transitions first collapse to the net
   * one (cap 2 for the rest of the outage); a spool that holds only net
   * transitions is kept whatever its size, and that is logged. Never throws.
   */
  rewrite(): void {
    this.#lastRewrite = performance.now();
    const max = this.#maxBytes;
    const { stats } = this.#host;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#buffer = [];
    try {
      const bytes = this.#file.rewrite((put) => {
        let bytes = put(this.#host.queue());
        if (bytes >= max / 2 && !stats.spoolCompacted) {
          this.#host.compactToNet();
          bytes = put(this.#host.queue());
          log.error(
            "spool reached SYSTEM_SPOOL_MAX_BYTES ({max} bytes): each streamer now keeps only " +
              "its net transition until the database returns ({count} transitions, {bytes} " +
              "bytes kept)",
            { max, count: this.#host.queue().length, bytes },
          );
        }
        if (bytes > max && this.#limit.allow("spool-over")) {
          log.error(
            "spool holds one net transition per streamer and is still {bytes} bytes, over " +
              "SYSTEM_SPOOL_MAX_BYTES ({max}); kept whole: raise the bound",
            { bytes, max },
          );
        }
        return bytes;
      });
      stats.spoolBytes = bytes;
      stats.spoolTransitions = this.#host.queue().length;
      this.#dirty = false;
      this.#ok();
    } catch (e) {
      this.#failed(e);
    }
  }

  #ok(): void {
    const { stats } = this.#host;
    if (stats.spoolError !== null) {
      log.info("spool writable again ({path})", { path: this.#file.path });
    }
    stats.spoolError = null;
  }

  #failed(e: unknown): void {
    const { stats } = this.#host;
    this.#dirty = true;
    stats.spoolWriteErrorsTotal++;
    const msg = e instanceof Error ? e.message : String(e);
    if (stats.spoolError === null || this.#limit.allow("spool-error")) {
      log.error(
        "cannot write the spool {path}: {error}; {count} transitions are in memory only, " +
          "retrying every second",
        { path: this.#file.path, error: msg, count: this.#host.queue().length },
      );
    }
    stats.spoolError = msg;
    if (!this.#host.isClosed()) {
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.flush(), 1000);
    }
    this.#file.close(); // reopened by the next rewrite
  }

  /** Starts spooling (the database went away): the file is rewritten to hold the queue. */
  start(): void {
    if (this.#active) return;
    this.#active = true;
    this.#host.stats.spoolBytes = 0;
    this.#host.stats.spoolTransitions = 0;
    this.rewrite();
    log.warn("database unreachable: spooling {count} transitions to {path}", {
      count: this.#host.queue().length,
      path: this.#file.path,
    });
  }

  /** Stops spooling (the queue was committed): the file is emptied. */
  stop(): void {
    if (!this.#active) return;
    const { stats } = this.#host;
    this.#active = false;
    this.#dirty = false;
    stats.spoolCompacted = false;
    stats.spoolError = null;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#buffer = [];
    this.#file.truncate();
    stats.spoolBytes = 0;
    stats.spoolTransitions = 0;
  }

  /** On close: no more timers, the file handle closed (its content stays for the next start). */
  dispose(): void {
    clearTimeout(this.#timer);
    this.#file.close();
  }
}
