/**
 * Follows the `streamers` list: LISTEN on the `kickmon_streamers` channel
 * (sent by the trigger in migrations/001) and report each change. postgres.js
 * re-LISTENs after a reconnect, but NOTIFYs sent meanwhile are lost, so every
 * (re)connect is reported too and the caller does a full resync.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { z } from "zod";
import type { Sql } from "./client.ts";

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
