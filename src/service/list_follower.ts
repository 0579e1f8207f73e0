/**
 * Following the `streamers` table, which another system owns: LISTEN on the
 * list trigger's channel when it is installed, else polling a cheap summary
 * (`MONITORING_LIST_FOLLOW`, `db/listener.ts`); full resyncs (at start,
 * after every re-LISTEN, on SIGHUP, on a poll that saw a change, and the
 * monitor's periodic safety net) and coalesced re-reads of single rows.
 * Every change lands in the tracker; the monitor hears of it through
 * `onChanged` (it then saves the snapshot, resubscribes Pusher channels and
 * tells its plugins).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { StatusTracker } from "../core/tracker.ts";
import type { StreamerRecord } from "../core/types.ts";
import type { Sql } from "../db/client.ts";
import { inspectDatabase } from "../db/inspect.ts";
import { listenStreamerChanges, pollStreamerList } from "../db/listener.ts";
import { getStreamers, listStreamers, syncStreamerState } from "../db/streamers_repo.ts";
import { LogRateLimiter } from "../log/logging.ts";

const log = getLogger(["kickmon", "monitor"]);

/** Single-row re-reads arriving within this many ms go out as one query. */
const RELOAD_COALESCE_MS = 50;

/** Options for {@linkcode ListFollower}. */
export interface ListFollowerOptions {
  readonly sql: Sql;
  /** Where the list lives in memory. */
  readonly tracker: StatusTracker;
  /** `MONITORING_LIST_FOLLOW`: `trigger`, `poll`, or `auto` (LISTEN when the trigger is installed). */
  readonly follow: "trigger" | "poll" | "auto";
  /** The application schema holding `streamers` (`DATABASE_SCHEMA`). */
  readonly schema: string;
  /** `MONITORING_LIST_POLL_INTERVAL`, ms. */
  readonly pollIntervalMs: number;
  /** After the tracker's list changed (a resync or a re-read that changed something). */
  readonly onChanged: () => void;
  /** A resync reached the database (`true`) or failed (`false`, with the error). */
  readonly onDatabaseState: (up: boolean, error?: Error) => void;
  /** A database error as the logs show it (with the server it is about). */
  readonly describeDbError: (error: Error) => string;
}

/**
 * Keeps the tracker's list in line with the `streamers` table.
 *
 * @example
 * ```ts
 * const follower = new ListFollower({ sql, tracker, follow: "auto", schema: "public",
 *   pollIntervalMs: 1000, onChanged: () => {}, onDatabaseState: () => {},
 *   describeDbError: String });
 * await follower.follow(); // "trigger" or "poll"
 * await follower.resync();
 * follower.halt();
 * await follower.close();
 * ```
 */
export class ListFollower {
  readonly #opts: ListFollowerOptions;
  #mode: "trigger" | "poll" | null = null;
  #stopListening: (() => Promise<void>) | null = null;
  #resyncing: Promise<void> | null = null;
  #resyncAgain = false;
  readonly #reloadIds = new Set<number>();
  #reloadTimer: ReturnType<typeof setTimeout> | undefined;
  /** True once the list came from the database or a snapshot (never save an empty guess). */
  #loaded = false;
  #halted = false;
  readonly #logLimit = new LogRateLimiter(5, 60_000);

  constructor(opts: ListFollowerOptions) {
    this.#opts = opts;
  }

  /** How list changes are followed, once {@linkcode follow} ran (null before). */
  get mode(): "trigger" | "poll" | null {
    return this.#mode;
  }

  /** Whether the list came from the database or a snapshot. */
  get loaded(): boolean {
    return this.#loaded;
  }

  /** Records that the tracker holds a list taken from a snapshot. */
  markLoaded(): void {
    this.#loaded = true;
  }

  /**
   * Starts following: LISTEN when the list trigger is installed (or
   * `follow` is `trigger`), else polling every `pollIntervalMs`. Does not
   * read the list: call {@linkcode resync} next.
   *
   * @returns the mode chosen.
   * @throws {DatabaseError} when the inspection or the LISTEN fails.
   */
  async follow(): Promise<"trigger" | "poll"> {
    const { sql, follow, schema, pollIntervalMs } = this.#opts;
    const trigger = follow === "trigger" ||
      (follow === "auto" && (await inspectDatabase(sql, schema)).listTrigger);
    this.#mode = trigger ? "trigger" : "poll";
    if (trigger) {
      let firstListen = true;
      const stop = await listenStreamerChanges(sql, {
        // Coalesced: a bulk INSERT arrives as one NOTIFY per row; re-read them
        // together, not row by row.
        onChange: (c) => this.queueReload(c.id),
        // postgres.js calls onListen after every (re)LISTEN, the first time before
        // `listenStreamerChanges` resolves: that one is covered by the resync the
        // monitor runs next (reading the list twice at start doubled the start-up garbage).
        onListen: () => {
          if (firstListen) firstListen = false;
          else this.resync();
        },
      });
      firstListen = false;
      this.#stopListening = stop;
    } else {
      const stop = pollStreamerList(sql, pollIntervalMs, () => this.resync());
      this.#stopListening = () => Promise.resolve(stop());
    }
    log.info("following the streamer list by {how}", {
      how: trigger
        ? "LISTEN (list trigger installed)"
        : `polling every ${pollIntervalMs} ms (no list trigger; ` +
          "'kickmon db migrate --install-trigger' to LISTEN instead)",
    });
    return this.#mode;
  }

  /**
   * Re-reads the whole list into the tracker. Concurrent calls coalesce
   * into one extra pass. Never rejects: a failure is logged and reported
   * through `onDatabaseState(false, error)`.
   */
  resync(): Promise<void> {
    if (this.#resyncing) {
      this.#resyncAgain = true;
      return this.#resyncing;
    }
    const { sql, tracker } = this.#opts;
    this.#resyncing = (async () => {
      do {
        this.#resyncAgain = false;
        try {
          // Drop what was learned for rows the other system changed or deleted first.
          await syncStreamerState(sql);
          const rows = await listStreamers(sql);
          const changed = tracker.replaceAll(rows) || !this.#loaded;
          this.#loaded = true;
          this.#opts.onDatabaseState(true);
          // The periodic safety-net resync usually finds nothing new.
          if (changed) this.#opts.onChanged();
        } catch (e) {
          this.#opts.onDatabaseState(false, e as Error);
          log.warn("streamer list resync failed (will retry): {error}", {
            error: this.#opts.describeDbError(e as Error),
          });
        }
      } while (this.#resyncAgain && !this.#halted);
    })().finally(() => (this.#resyncing = null));
    return this.#resyncing;
  }

  /** Re-reads one streamer soon (coalesced with others within {@linkcode RELOAD_COALESCE_MS}). */
  queueReload(id: number): void {
    this.#reloadIds.add(id);
    this.#reloadTimer ??= setTimeout(() => {
      this.#reloadTimer = undefined;
      const ids = [...this.#reloadIds];
      this.#reloadIds.clear();
      if (!this.#halted) this.reload(ids);
    }, RELOAD_COALESCE_MS);
  }

  /**
   * Re-reads these rows now; ids with no row any more (deleted) are
   * forgotten. Never rejects: a failure is logged (at a bounded rate) and
   * left to the next resync.
   */
  reload(ids: number[]): void {
    const { sql, tracker } = this.#opts;
    getStreamers(sql, ids).then((rows: StreamerRecord[]) => {
      const found = new Set(rows.map((r) => r.id));
      let changed = false;
      for (const r of rows) changed = tracker.upsert(r) || changed;
      for (const id of ids) {
        if (!found.has(id) && tracker.get(id)) {
          tracker.remove(id);
          changed = true;
        }
      }
      if (!changed) return; // e.g. a re-read after a refused write: statuses only
      this.#opts.onChanged();
    }).catch((e) => {
      // During an outage every refused write asks for a reload: log a few, not each.
      if (this.#logLimit.allow("reload")) {
        log.warn("reloading streamers {ids} failed; the next resync fixes it: {error}", {
          ids: ids.slice(0, 20),
          error: String(e),
        });
      }
    });
  }

  /** No more re-reads: a pending one is dropped, a running resync does not go again. */
  halt(): void {
    this.#halted = true;
    clearTimeout(this.#reloadTimer);
  }

  /** Ends the LISTEN or the polling. Never throws (the database may be gone). */
  async close(): Promise<void> {
    try {
      await this.#stopListening?.();
    } catch { /* database gone */ }
  }
}
