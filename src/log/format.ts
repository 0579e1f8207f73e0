/**
 * How kickmon's log lines look: for journald and for people.
 *
 * - Messages render their values as text: `http://127.0.0.1:8080/health`,
 *   `SIGTERM: shutting down`, an empty value as nothing, an error as its
 *   message with its causes, a list as `a, b`. (LogTape's own formatters
 *   quote every string value: `http://"127.0.0.1":8080`.)
 * - JSON lines keep LogTape's shape (`@timestamp`, `level`, `message`,
 *   `logger`, then the properties, flattened); an `Error` property becomes
 *   its text instead of `{}`.
 * - Plain text is `2025-01-02 03:04:05.678 +00 [INF] kickmon.cli: message`.
 * - Under systemd (stdout is the journal stream named by `JOURNAL_STREAM`,
 *   sd-daemon(3)), each line starts with its syslog priority, `<3>` error …
 *   `<7>` debug, so that journald records it and `journalctl -p warning`
 *   filters on it; plain lines then drop their timestamp (journald stamps
 *   every line itself).
 *
 * @module
 */
import type { LogLevel, LogRecord } from "@logtape/logtape";
import { describeError } from "./errors.ts";

/**
 * A value inside a message, as text: strings as they are, errors with their
 * causes, arrays joined with `, `, dates in ISO 8601, other objects as JSON.
 *
 * @example
 * ```ts
 * renderValue("127.0.0.1"); // "127.0.0.1"
 * renderValue(["A", "B"]); // "A, B"
 * renderValue(new Error("x", { cause: new Error("y") })); // "x: y"
 * ```
 */
export function renderValue(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === undefined || v === null) return "";
  if (v instanceof Error) return describeError(v);
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(renderValue).join(", ");
  if (typeof v === "object") {
    try {
      return JSON.stringify(v);
    } catch {
      return String(v);
    }
  }
  return String(v);
}

/**
 * The message of a record with its values rendered by {@linkcode renderValue}.
 *
 * @example
 * ```ts
 * // log.info("{reason}: shutting down", { reason: "SIGTERM" }) renders as
 * // "SIGTERM: shutting down"
 * ```
 */
export function renderMessage(record: LogRecord): string {
  const m = record.message;
  let out = "";
  for (let i = 0; i < m.length; i++) out += i % 2 === 0 ? String(m[i]) : renderValue(m[i]);
  return out;
}

/** syslog priorities (sd-daemon(3) `SD_*`) of LogTape's levels. */
export const JOURNAL_PRIORITY: Readonly<Record<LogLevel, number>> = {
  fatal: 2, // SD_CRIT
  error: 3, // SD_ERR
  warning: 4, // SD_WARNING
  info: 6, // SD_INFO
  debug: 7, // SD_DEBUG
  trace: 7,
};

const LEVEL_ABBR: Readonly<Record<LogLevel, string>> = {
  trace: "TRC",
  debug: "DBG",
  info: "INF",
  warning: "WRN",
  error: "ERR",
  fatal: "FTL",
};

/** The fields every JSON line starts with; a property of the same name cannot replace them. */
const JSON_FIELDS = new Set(["@timestamp", "level", "message", "logger"]);

/**
 * Property values as JSON can carry them (an `Error` as its text); a
 * property named like a line field (`message`, …) is kept as `message_`.
 */
function jsonProperties(props: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) {
    out[JSON_FIELDS.has(k) ? `${k}_` : k] = v instanceof Error ? describeError(v) : v;
  }
  return out;
}

/** `2025-01-02 03:04:05.678 +00` in UTC. */
function timestamp(ms: number): string {
  return `${new Date(ms).toISOString().replace("T", " ").replace("Z", "")} +00`;
}

/** Options of {@linkcode createFormatter}. */
export interface FormatterOptions {
  /** JSON lines (true) or plain text (false). */
  readonly json: boolean;
  /** Prefix each line with `<priority>` and drop plain text's timestamp (journald). */
  readonly journal: boolean;
}

/**
 * A formatter for LogTape sinks: one line per record, newline included.
 *
 * @example
 * ```ts
 * const f = createFormatter({ json: false, journal: true });
 * // log.warn("disk {d} full", { d: "/var" }) → "<4>[WRN] kickmon.x: disk /var full\n"
 * ```
 */
export function createFormatter(opts: FormatterOptions): (record: LogRecord) => string {
  return (r) => {
    const prefix = opts.journal ? `<${JOURNAL_PRIORITY[r.level]}>` : "";
    const message = renderMessage(r);
    const logger = r.category.join(".");
    if (opts.json) {
      return prefix + JSON.stringify({
        "@timestamp": new Date(r.timestamp).toISOString(),
        level: r.level === "warning" ? "WARN" : r.level.toUpperCase(),
        message,
        logger,
        ...jsonProperties(r.properties),
      }) + "\n";
    }
    // A multi-line message (a stack) keeps its priority on every line under journald.
    const text = opts.journal ? message.replaceAll("\n", `\n${prefix}`) : message;
    const stamp = opts.journal ? "" : `${timestamp(r.timestamp)} `;
    return `${prefix}${stamp}[${LEVEL_ABBR[r.level]}] ${logger}: ${text}\n`;
  };
}

/**
 * Whether stdout is systemd's journal stream. `JOURNAL_STREAM` (`dev:inode`)
 * is set by systemd for a unit whose output goes to the journal; when
 * `/dev/stdout` may be examined (from source), it must also name stdout's
 * device and inode, so that a process that inherited the variable but has
 * its stdout redirected elsewhere writes no priority prefixes. The compiled
 * binary may not read `/dev/stdout` and trusts the variable.
 *
 * @param env the value of `JOURNAL_STREAM` (default: read it; unset or not
 *   granted gives false).
 *
 * @example
 * ```ts
 * const journal = stdoutIsJournal();
 * ```
 */
export function stdoutIsJournal(env: string | undefined = readJournalStream()): boolean {
  const m = env?.match(/^(\d+):(\d+)$/);
  if (!m) return false;
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync("/dev/stdout");
  } catch {
    return true; // cannot look: systemd's variable is the best information there is
  }
  return st.dev === Number(m[1]) && st.ino === Number(m[2]);
}

function readJournalStream(): string | undefined {
  try {
    return Deno.env.get("JOURNAL_STREAM");
  } catch {
    return undefined; // not granted: behave as outside systemd
  }
}
