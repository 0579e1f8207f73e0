/**
 * The monitor's view of its database connection: up or down, the last
 * failure (with the server it is about) and, while it is down, a ping every
 * {@linkcode DATABASE_PROBE_MS} so that `/health` says when the next attempt
 * is and turns healthy without waiting for a write. Times are ms since the
 * Unix epoch, durations ms.
 *
 * The status writer keeps its own view (its last write); `/health` combines
 * both (`health.ts`).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { isConnectionError, pingDatabase, type Sql } from "../db/client.ts";
import { describeError } from "../log/errors.ts";
import type { ComponentErrors } from "./health.ts";

const log = getLogger(["kickmon", "monitor"]);

/** How often the database is probed while it is down, ms. */
export const DATABASE_PROBE_MS = 5_000;

/** What {@linkcode DatabaseState.snapshot} returns: up, why not, and the last failure. */
export type DatabaseStateSnapshot =
  & { readonly up: boolean; readonly error: string | undefined }
  & ComponentErrors;

/**
 * Up/down, the last error and the probe while down.
 *
 * @example
 * ```ts
 * const db = new DatabaseState(sql, { host: "localhost", port: 5432 });
 * db.report(false, new Error("connection refused")); // probes every 5 s from now
 * await db.check(2000); // true when the ping answered within 2 s
 * db.stop();
 * ```
 */
export class DatabaseState {
  readonly #sql: Sql;
  readonly #server: { readonly host: string; readonly port: number };
  #up = true;
  #error: string | undefined;
  #lastError: string | null = null;
  #lastErrorAt: number | null = null;
  #probe: ReturnType<typeof setTimeout> | undefined;
  #nextProbeAt: number | null = null;
  #stopped = false;

  /** @param server the configured server, named in every error that does not name it. */
  constructor(sql: Sql, server: { readonly host: string; readonly port: number }) {
    this.#sql = sql;
    this.#server = server;
  }

  /** Whether the database was up at the last report. */
  get up(): boolean {
    return this.#up;
  }

  /** The state for `/health`. */
  snapshot(): DatabaseStateSnapshot {
    return {
      up: this.#up,
      error: this.#error,
      lastError: this.#lastError,
      lastErrorAt: this.#lastErrorAt,
      nextRetryAt: this.#nextProbeAt,
    };
  }

  /**
   * Records the database as reached (`true`) or failing (`false` with the
   * error, which also starts the probe). A second failure while down keeps
   * the first `error` but updates `lastError`.
   */
  report(up: boolean, err?: Error): void {
    if (!up && err) {
      this.#lastError = this.describe(err);
      this.#lastErrorAt = Date.now();
      this.#scheduleProbe();
    }
    if (up === this.#up && (up || this.#error)) return;
    this.#up = up;
    this.#error = up ? undefined : this.#lastError ?? undefined;
  }

  /**
   * A database error with the server it is about (postgres.js names it only sometimes).
   *
   * @example
   * ```ts
   * db.describe(new Error("connection refused")); // "database localhost:5432: connection refused"
   * ```
   */
  describe(err: Error): string {
    const text = describeError(err);
    const { host, port } = this.#server;
    return text.includes(host) ? text : `database ${host}:${port}: ${text}`;
  }

  #scheduleProbe(): void {
    if (this.#probe !== undefined || this.#stopped) return;
    this.#nextProbeAt = Date.now() + DATABASE_PROBE_MS;
    this.#probe = setTimeout(async () => {
      this.#probe = undefined;
      this.#nextProbeAt = null;
      if (this.#stopped) return;
      if (!(await this.check(2000))) this.#scheduleProbe();
    }, DATABASE_PROBE_MS);
  }

  /**
   * Pings the database now and records the result. A database that does not
   * answer within `timeoutMs` (ms) counts as down: postgres.js queues a
   * query while it waits out its reconnect backoff, and a health check must
   * not report the last known state while that lasts.
   *
   * @returns true when the ping answered in time. Never throws.
   */
  async check(timeoutMs = 2000): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), timeoutMs)));
    try {
      const r = await Promise.race([pingDatabase(this.#sql).then(() => "ok" as const), late]);
      if (r === "late") {
        const { host, port } = this.#server;
        this.report(
          false,
          new Error(`database ${host}:${port} did not answer within ${timeoutMs} ms`),
        );
        return false;
      }
      this.report(true);
      return true;
    } catch (e) {
      this.report(false, e as Error);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Pings until the database answers, 250 ms doubling to 5 s between tries;
   * the first failure is logged.
   *
   * @throws {Error} when {@linkcode stop} was called meanwhile, or what the
   *   ping throws when it is not a connection error (e.g. authentication failed).
   */
  async waitUntilReachable(): Promise<void> {
    for (let attempt = 0;; attempt++) {
      if (this.#stopped) throw new Error("stopped while waiting for the database");
      try {
        await pingDatabase(this.#sql);
        this.report(true);
        return;
      } catch (e) {
        if (!isConnectionError(e)) throw e;
        this.report(false, e as Error);
        if (attempt === 0) {
          log.error("database unreachable at start, retrying: {error}", {
            error: this.describe(e as Error),
          });
        }
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
      }
    }
  }

  /** Ends the probe and any {@linkcode waitUntilReachable} (at its next try). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#probe);
  }
}
