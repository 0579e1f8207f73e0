/**
 * Follows the `streamers` list, one of two ways:
 *
 * - **trigger** ({@linkcode listenStreamerChanges}): LISTEN on the
 *   `kickmon_streamers` channel (sent by the optional trigger of
 *   migrations/list_trigger.sql) and report each change. postgres.js
 *   re-LISTENs after a reconnect, but NOTIFYs sent meanwhile are lost, so
 *   every (re)connect is reported too and the caller does a full resync.
 * - **poll** ({@linkcode pollStreamerList}): for a table kickmon may not put
 *   a trigger on, compare a fingerprint of the followed columns every
 *   interval and report when it changed.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { z } from "zod";
import type { Sql } from "./client.ts";
import { listFingerprint } from "./streamers_repo.ts";

const log = getLogger(["kickmon", "db", "listener"]);

/** NOTIFY channel of the streamer-list trigger. */
export const STREAMERS_CHANNEL = "kickmon_streamers";
/** NOTIFY channel kickmon sends each committed transition on. */
export const STATUS_CHANNEL = "kickmon_status";

const payloadSchema = z.object({
  op: z.enum(["INSERT", "UPDATE", "DELETE"]),
  id: z.number().int(),
});

/** One change to the list, from the trigger's payload. */
export type StreamerChange = z.infer<typeof payloadSchema>;

/** Handlers for {@linkcode listenStreamerChanges}. */
export interface StreamerChangeHandlers {
  /** A row was inserted, updated (a followed column) or deleted. */
  readonly onChange: (change: StreamerChange) => void;
  /** The LISTEN connection was (re)established: changes may have been missed. */
  readonly onListen: () => void;
}

/**
 * Starts listening. Resolves once the first LISTEN is in place.
 *
 * @returns a function that stops listening.
 * @throws {DatabaseError} when the first LISTEN cannot be set up.
 *
 * @example
 * ```ts
 * const stop = await listenStreamerChanges(sql, {
 *   onChange: (c) => console.log(c.op, c.id),
 *   onListen: () => console.log("resync"),
 * });
 * await stop();
 * ```
 */
export async function listenStreamerChanges(
  sql: Sql,
  handlers: StreamerChangeHandlers,
): Promise<() => Promise<void>> {
  const sub = await sql.listen(STREAMERS_CHANNEL, (payload) => {
    let parsed: StreamerChange;
    try {
      parsed = payloadSchema.parse(JSON.parse(payload));
    } catch {
      log.warn("ignoring malformed {channel} payload {payload}", {
        channel: STREAMERS_CHANNEL,
        payload: payload.slice(0, 200),
      });
      return;
    }
    handlers.onChange(parsed);
  }, () => handlers.onListen());
  return () => sub.unlisten();
}

/**
 * Polls the list: every `intervalMs` (ms) one fingerprint query
 * ({@linkcode listFingerprint}: count and hash of the followed columns,
 * computed on the server); `onChanged` runs when it differs from the last
 * one seen. The first poll only records the fingerprint (the caller has just
 * read the list). A failed poll is logged at most once per outage and
 * retried at the next tick; the first poll that answers after one reports a
 * change whenever the list moved meanwhile. Polls never overlap.
 *
 * @returns a function that stops polling.
 *
 * @example
 * ```ts
 * const stop = pollStreamerList(sql, 1000, () => monitor.resync());
 * stop();
 * ```
 */
export function pollStreamerList(
  sql: Sql,
  intervalMs: number,
  onChanged: () => void,
): () => void {
  let last: string | null = null;
  let failing = false;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async () => {
    try {
      const f = await listFingerprint(sql);
      if (failing) log.info("streamer list poll answers again");
      failing = false;
      if (last !== null && f !== last && !stopped) onChanged();
      last = f;
    } catch (e) {
      if (!failing) {
        log.warn("streamer list poll failed (retrying every {ms} ms): {error}", {
          ms: intervalMs,
          error: String(e),
        });
      }
      failing = true;
    }
    if (!stopped) timer = setTimeout(tick, intervalMs);
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
