/**
 * A LogTape sink that a failing destination cannot stall, spin or bloat.
 *
 * LogTape's `getStreamSink` chains every line onto the previous write's
 * promise. Once a write fails (stdout is a pipe whose reader exited:
 * `kickmon start | head -1`), every later line is chained onto a rejected
 * promise, each rejection is unhandled, kickmon's unhandled-rejection
 * handler logs it, which rejects again: 100 % of a core, megabytes per
 * second, and shutdown (which awaits the chain) never finishes.
 *
 * {@linkcode GuardedSink} instead:
 *
 * - keeps at most `maxQueueBytes` of formatted lines waiting while a write is
 *   in flight (a reader that stopped reading, a slow disk); lines beyond that
 *   are dropped and counted, never buffered without bound;
 * - on a write that fails for good (broken pipe, closed descriptor) drops
 *   every later line at the cost of a counter increment;
 * - on a write that may succeed later (`ENOSPC` on a full disk, `EIO`)
 *   drops lines for `retryAfterMs`, then tries again and first writes how
 *   many lines were lost and why;
 * - never rejects, never throws, and tells `onFailure` once per failure;
 * - `flush(timeoutMs)` waits for the queue at most that long, so a shutdown
 *   is never held by a destination that does not drain.
 *
 * @module
 */
import type { LogRecord, Sink } from "@logtape/logtape";

/** What a sink writes to: `Deno.stdout`, `Deno.stderr` or a `Deno.FsFile`. */
export interface WriteTarget {
  /** Writes some of `p`; resolves with the number of bytes written. */
  write(p: Uint8Array): Promise<number>;
}

/** One failure of a {@linkcode GuardedSink}'s destination. */
export interface SinkFailure {
  /** The destination's name (`stdout`, `stderr`, a file path). */
  readonly name: string;
  /** What the write threw. */
  readonly error: Error;
  /** True when no later write is attempted (broken pipe, closed descriptor). */
  readonly permanent: boolean;
}

/** Options of {@linkcode GuardedSink}. */
export interface GuardedSinkOptions {
  /** The destination's name for messages, e.g. `stdout` or the log file's path. */
  readonly name: string;
  /** Turns a record into one line, newline included. */
  readonly formatter: (record: LogRecord) => string;
  /** Most bytes waiting for the destination; later lines are dropped. Default 1 MiB. */
  readonly maxQueueBytes?: number;
  /** After a failure that may heal (full disk), ms before writing again. Default 30 000. */
  readonly retryAfterMs?: number;
  /** Told once per failure; must not throw (a throw is ignored). */
  readonly onFailure?: (failure: SinkFailure) => void;
  /** Called when the sink is disposed, after the bounded flush (e.g. close a file). */
  readonly onDispose?: () => void;
  /** ms that disposing waits for queued lines. Default 2000. */
  readonly disposeTimeoutMs?: number;
  /**
   * Disposing (LogTape's `reset`, a reconfiguration) only flushes: the sink
   * keeps its state and can be configured again. For stdout and stderr,
   * whose failure must be remembered across reconfigurations.
   */
  readonly keepOpen?: boolean;
}

/** Counters of a {@linkcode GuardedSink}. */
export interface GuardedSinkStats {
  /** Lines written. */
  written: number;
  /** Lines dropped (queue full, destination failing or gone). */
  dropped: number;
  /** `ok`, `paused` (failing, retried later) or `broken` (gone for good). */
  state: "ok" | "paused" | "broken";
  /** The last write error's message, or null. */
  lastError: string | null;
}

/** Error classes after which a destination never accepts a write again. */
function isPermanent(e: unknown): boolean {
  return e instanceof Deno.errors.BrokenPipe || e instanceof Deno.errors.BadResource ||
    e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.NotConnected ||
    (e instanceof Error && /EPIPE|EBADF/.test((e as { code?: string }).code ?? ""));
}

/**
 * A bounded, failure-proof LogTape sink over a {@linkcode WriteTarget}.
 *
 * @example
 * ```ts
 * const out = new GuardedSink(Deno.stdout, {
 *   name: "stdout",
 *   formatter: (r) => `${r.message.join("")}\n`,
 *   onFailure: (f) => console.error(`log output to ${f.name} failed: ${f.error.message}`),
 * });
 * await configure({ sinks: { main: out.sink }, loggers: [{ category: [], sinks: ["main"] }] });
 * ```
 */
export class GuardedSink {
  /** Counters; read them for metrics or a status line. */
  readonly stats: GuardedSinkStats = { written: 0, dropped: 0, state: "ok", lastError: null };
  /** The function to hand to LogTape's `configure` (also async-disposable). */
  readonly sink: Sink & AsyncDisposable;
  readonly #target: WriteTarget;
  readonly #opts: GuardedSinkOptions;
  readonly #encoder = new TextEncoder();
  readonly #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  #writing: Promise<void> | null = null;
  #pausedUntil = 0;
  /** Lines dropped since the last note about them was written. */
  #unreported = 0;
  #disposed = false;

  /**
   * @param target where the lines go.
   * @param opts see {@linkcode GuardedSinkOptions}.
   */
  constructor(target: WriteTarget, opts: GuardedSinkOptions) {
    this.#target = target;
    this.#opts = opts;
    const sink = ((record: LogRecord) => this.#accept(record)) as Sink & AsyncDisposable;
    sink[Symbol.asyncDispose] = async () => {
      if (opts.keepOpen) await this.flush(opts.disposeTimeoutMs ?? 2000);
      else await this.dispose();
    };
    this.sink = sink;
  }

  /**
   * Waits until every queued line is written, the destination failed, or
   * `timeoutMs` (ms) passed.
   *
   * @returns true when nothing is left in the queue. Never rejects.
   */
  async flush(timeoutMs: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    try {
      while (this.#writing) {
        const r = await Promise.race([this.#writing.then(() => "done"), late.then(() => "late")]);
        if (r === "late") break;
      }
    } finally {
      clearTimeout(timer);
    }
    return this.#writing === null && this.#queue.length === 0;
  }

  /**
   * Flushes for at most `disposeTimeoutMs`, then stops accepting lines and
   * runs `onDispose`. Never rejects.
   */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    await this.flush(this.#opts.disposeTimeoutMs ?? 2000);
    this.#disposed = true;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    try {
      this.#opts.onDispose?.();
    } catch { /* closing a destination that is gone */ }
  }

  #accept(record: LogRecord): void {
    if (this.#disposed || this.stats.state === "broken") {
      this.stats.dropped++;
      return;
    }
    if (this.stats.state === "paused") {
      if (Date.now() < this.#pausedUntil) {
        this.#drop();
        return;
      }
      this.stats.state = "ok";
      this.#enqueue(this.#opts.formatter(this.#droppedNote()));
    }
    let line: string;
    try {
      line = this.#opts.formatter(record);
    } catch (e) {
      line = `log record could not be formatted: ${e instanceof Error ? e.message : e}\n`;
    }
    this.#enqueue(line);
  }

  #enqueue(line: string): void {
    const bytes = this.#encoder.encode(line);
    const max = this.#opts.maxQueueBytes ?? 1 << 20;
    if (this.#queuedBytes + bytes.length > max) {
      this.#drop();
      return;
    }
    this.#queue.push(bytes);
    this.#queuedBytes += bytes.length;
    this.#writing ??= this.#pump();
  }

  #drop(): void {
    this.stats.dropped++;
    this.#unreported++;
  }

  #droppedNote(): LogRecord {
    const n = this.#unreported;
    this.#unreported = 0;
    const text = `${n} log lines were dropped while writing to ${this.#opts.name} failed: ${
      this.stats.lastError ?? "queue full"
    }`;
    return {
      category: ["kickmon", "log"],
      level: "warning",
      message: [text],
      rawMessage: text,
      properties: { dropped: n },
      timestamp: Date.now(),
    };
  }

  async #pump(): Promise<void> {
    // Let #enqueue store this promise before the loop can end and clear it.
    await null;
    try {
      while (this.#queue.length > 0 && this.stats.state === "ok") {
        // Coalesce queued lines into one write of up to 64 KiB.
        let size = 0;
        let n = 0;
        while (n < this.#queue.length && (n === 0 || size + this.#queue[n].length <= 65_536)) {
          size += this.#queue[n++].length;
        }
        const parts = this.#queue.splice(0, n);
        this.#queuedBytes -= size;
        const chunk = n === 1 ? parts[0] : concat(parts, size);
        try {
          for (let off = 0; off < chunk.length;) {
            off += await this.#target.write(chunk.subarray(off));
          }
          this.stats.written += n;
        } catch (e) {
          this.#fail(e, n);
        }
      }
    } finally {
      // Synchronously after the loop's last look at the queue: a line queued
      // after that look finds no pump and starts one, so none is left behind.
      this.#writing = null;
    }
  }

  #fail(e: unknown, lost: number): void {
    const error = e instanceof Error ? e : new Error(String(e));
    const permanent = isPermanent(e);
    this.stats.lastError = error.message;
    this.stats.state = permanent ? "broken" : "paused";
    this.#pausedUntil = Date.now() + (this.#opts.retryAfterMs ?? 30_000);
    const queued = this.#queue.length;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.stats.dropped += lost + queued;
    this.#unreported += lost + queued;
    try {
      this.#opts.onFailure?.({ name: this.#opts.name, error, permanent });
    } catch { /* a reporter that fails has nothing to add */ }
  }
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
