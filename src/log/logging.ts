/**
 * Structured logging for kickmon on LogTape: one JSON object per line on
 * stdout (journald keeps them; `journalctl -u kickmon -o cat`), or plain text.
 * Line shapes, value rendering and the syslog priority prefix under systemd
 * are in `format.ts`; the bounded, failure-proof sink is in `sink.ts`.
 *
 * Every line passes through a redaction step that replaces registered secret
 * values (client secret, database password, access tokens) with
 * `[REDACTED]`, so a secret that slips into an error message from a library
 * still never reaches the log.
 *
 * Modules log through `getLogger(["kickmon", <area>])` from LogTape directly.
 *
 * @module
 */
import { configure, type LogRecord, reset, type Sink } from "@logtape/logtape";
import { createFormatter, stdoutIsJournal } from "./format.ts";
import { GuardedSink, type GuardedSinkStats, type SinkFailure } from "./sink.ts";

const secrets = new Set<string>();

/**
 * Registers a value that must never appear in a log line. Values shorter
 * than 3 characters are ignored (they would redact ordinary text).
 *
 * @example
 * ```ts
 * registerSecret(config.kick.clientSecret);
 * ```
 */
export function registerSecret(value: string | undefined | null): void {
  if (value && value.length >= 3) {
    secrets.add(value);
    const enc = encodeURIComponent(value);
    if (enc !== value) secrets.add(enc);
  }
}

/**
 * Replaces every registered secret in `text` with `[REDACTED]`.
 *
 * @example
 * ```ts
 * registerSecret("hunter2");
 * redactSecrets("password hunter2"); // "password [REDACTED]"
 * ```
 */
export function redactSecrets(text: string): string {
  let out = text;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join("[REDACTED]");
  }
  return out;
}

/** Where log lines go. */
export type LogDestination =
  | { readonly kind: "stdout" }
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "none" };

/** Options for {@linkcode setupLogging}. */
export interface LoggingOptions {
  readonly level: "trace" | "debug" | "info" | "warning" | "error" | "fatal";
  /** JSON lines (true) or plain text (false). */
  readonly json: boolean;
  /** Default stdout. The live view sends logs to a file or nowhere. */
  readonly destination?: LogDestination;
}

/**
 * The stdout sink, one per process: its failure (a closed pipe) is
 * remembered across reconfigurations (SIGHUP re-reads the log level).
 */
let stdoutSink: GuardedSink | null = null;
/** The sink in use by the current configuration (for {@linkcode logOutputStats}). */
let current: GuardedSink | null = null;
/** Lines dropped by sinks of earlier configurations (file sinks are replaced). */
let droppedBefore = 0;

/** Tells stderr, without ever blocking on it, that stdout stopped taking log lines. */
function reportOnStderr(f: SinkFailure): void {
  const what = f.permanent
    ? "log lines are dropped from now on"
    : "log lines are dropped for 30 s, then writing is tried again";
  const line = `kickmon: log output to ${f.name} failed (${f.error.message}); ${what}\n`;
  Deno.stderr.write(new TextEncoder().encode(line)).catch(() => {});
}

/**
 * Configures LogTape for the whole process (idempotent: a second call
 * replaces the first configuration).
 *
 * Lines go through a {@linkcode GuardedSink}: a destination that fails
 * (stdout closed by `| head -1`, a full disk under the live view's log file)
 * or stops draining costs a counter increment per line, never CPU, memory
 * or a stalled shutdown. A failing stdout is reported once on stderr.
 *
 * @throws {Deno.errors.PermissionDenied} when a log file cannot be opened.
 * @throws {Deno.errors.NotCapable} when this build may not write the log file.
 *
 * @example
 * ```ts
 * await setupLogging({ level: "info", json: true });
 * getLogger(["kickmon"]).info("started");
 * ```
 */
export async function setupLogging(options: LoggingOptions): Promise<void> {
  const dest = options.destination ?? { kind: "stdout" };
  // Priority prefixes only where journald reads them: stdout under systemd.
  const journal = dest.kind === "stdout" && stdoutIsJournal();
  const base = createFormatter({ json: options.json, journal });
  const formatter = (record: LogRecord): string => redactSecrets(base(record));
  if (current && current !== stdoutSink) droppedBefore += current.stats.dropped;
  let sink: Sink;
  if (dest.kind === "none") {
    current = null;
    sink = () => {};
  } else if (dest.kind === "file") {
    const file = await Deno.open(dest.path, { append: true, create: true, mode: 0o640 });
    current = new GuardedSink(file, {
      name: dest.path,
      formatter: (r) => formatter(r),
      onDispose: () => file.close(),
    });
    sink = current.sink;
  } else {
    stdoutSink ??= new GuardedSink(Deno.stdout, {
      name: "stdout",
      formatter: (r) => stdoutFormatter(r),
      onFailure: reportOnStderr,
      keepOpen: true,
    });
    stdoutFormatter = formatter;
    current = stdoutSink;
    sink = current.sink;
  }
  await configure({
    reset: true,
    sinks: { main: sink },
    loggers: [
      { category: ["kickmon"], lowestLevel: options.level, sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
}

/** The formatter of the current stdout configuration (the sink outlives configurations). */
let stdoutFormatter: (record: LogRecord) => string = (r) => `${r.message.join("")}\n`;

/**
 * Counters of the log output in use: lines written, dropped (destination
 * failing or not draining), its state and last error. `dropped` includes
 * lines dropped by earlier log files of this process.
 *
 * @example
 * ```ts
 * const { dropped, state } = logOutputStats();
 * ```
 */
export function logOutputStats(): GuardedSinkStats {
  const s = current?.stats ?? { written: 0, dropped: 0, state: "ok", lastError: null };
  const extra = droppedBefore +
    (stdoutSink && stdoutSink !== current ? stdoutSink.stats.dropped : 0);
  return { ...s, dropped: s.dropped + extra };
}

/**
 * Flushes and tears down logging (call before exit so buffered lines land).
 *
 * @example
 * ```ts
 * await shutdownLogging();
 * ```
 */
export async function shutdownLogging(): Promise<void> {
  await reset();
}

/**
 * A rate limiter for repetitive log lines (malformed frames, outages):
 * returns true at most `perWindow` times per key per `windowMs`.
 *
 * @example
 * ```ts
 * const limit = new LogRateLimiter(5, 60_000);
 * if (limit.allow("malformed:schema")) log.warn("malformed frame");
 * ```
 */
export class LogRateLimiter {
  readonly #counts = new Map<string, { start: number; n: number; suppressed: number }>();
  /**
   * @param perWindow lines allowed per key per window.
   * @param windowMs window length, ms.
   */
  constructor(readonly perWindow: number, readonly windowMs: number) {}

  /** True when a line for `key` may be logged now. */
  allow(key: string, now = Date.now()): boolean {
    const c = this.#counts.get(key);
    if (!c || now - c.start >= this.windowMs) {
      this.#counts.set(key, { start: now, n: 1, suppressed: 0 });
      return true;
    }
    if (c.n < this.perWindow) {
      c.n++;
      return true;
    }
    c.suppressed++;
    return false;
  }

  /** How many lines for `key` were suppressed in the current window. */
  suppressed(key: string): number {
    return this.#counts.get(key)?.suppressed ?? 0;
  }
}
