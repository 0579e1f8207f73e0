/**
 * Structured logging for kickmon on LogTape: one JSON object per line on
 * stdout (journald keeps them; `journalctl -u kickmon -o cat`), or plain text.
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
import {
  configure,
  getJsonLinesFormatter,
  getStreamSink,
  getTextFormatter,
  type LogRecord,
  reset,
  type Sink,
} from "@logtape/logtape";

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
 * Configures LogTape for the whole process (idempotent: a second call
 * replaces the first configuration).
 *
 * @throws {Deno.errors.PermissionDenied} when a log file cannot be opened.
 *
 * @example
 * ```ts
 * await setupLogging({ level: "info", json: true });
 * getLogger(["kickmon"]).info("started");
 * ```
 */
export async function setupLogging(options: LoggingOptions): Promise<void> {
  const dest = options.destination ?? { kind: "stdout" };
  const base = options.json
    ? getJsonLinesFormatter({ categorySeparator: ".", message: "rendered", properties: "flatten" })
    : getTextFormatter({ timestamp: "date-time-tz", category: "." });
  const formatter = (record: LogRecord): string => redactSecrets(base(record));
  let sink: Sink;
  if (dest.kind === "none") {
    sink = () => {};
  } else if (dest.kind === "file") {
    const file = await Deno.open(dest.path, { append: true, create: true, mode: 0o640 });
    sink = getStreamSink(file.writable, { formatter });
  } else {
    sink = getStreamSink(Deno.stdout.writable, { formatter });
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
