/**
 * Every SQL statement about the `streamers` list (reading it, writing resolved
 * Kick ids back, the CLI's add/remove). Status changes are written by
 * `status_writer.ts`, not here.
 *
 * @module
 */
import type { StreamerRecord, StreamerStatus } from "../core/types.ts";
import { type Sql, toDatabaseError } from "./client.ts";

interface StreamerRow {
  id: number;
  username: string | null;
  kick_user_id: string | null;
  kick_channel_id: string | null;
  status: StreamerStatus;
  is_active: boolean;
  status_observed_at: Date | null;
}

const num = (v: string | number | null): number | null => v === null ? null : Number(v);

/** The driver makes a new string per row; share the three literals instead. */
function internStatus(s: StreamerStatus): StreamerStatus {
  switch (s) {
    case "online":
      return "online";
    case "offline":
      return "offline";
    case "unknown":
      return "unknown";
    default:
      return s;
  }
}

function toRecord(r: StreamerRow): StreamerRecord {
  return {
    id: r.id,
    username: r.username,
    kickUserId: num(r.kick_user_id),
    kickChannelId: num(r.kick_channel_id),
    status: internStatus(r.status),
    isActive: r.is_active,
    statusObservedAt: r.status_observed_at ? r.status_observed_at.getTime() : null,
  };
}

/**
 * Reads every streamer (active or not), ordered by id.
 *
 * @throws {DatabaseError} when the query fails.
 *
 * @example
 * ```ts
 * const all = await listStreamers(sql);
 * ```
 */
export async function listStreamers(sql: Sql): Promise<StreamerRecord[]> {
  try {
    const rows = await sql<StreamerRow[]>`
      SELECT id, username, kick_user_id, kick_channel_id, status, is_active, status_observed_at
      FROM streamers ORDER BY id`;
    return rows.map(toRecord);
  } catch (e) {
    throw toDatabaseError(e, "listing streamers");
  }
}

/**
 * For each active streamer whose latest `status_events` row names a Kick
 * livestream (`details.livestream_id`, Pusher rows) and agrees with
 * `streamers.status`: that status and livestream id. Lets a restarted monitor
 * infer a stream boundary from the first frame it sees (see the core's
 * `StatusTracker.rememberLivestreams`). One index probe per streamer
 * (`status_events_streamer_time_idx`).
 *
 * @returns streamer id → `{ status, livestreamId }`.
 * @throws {DatabaseError} when the query fails.
 *
 * @example
 * ```ts
 * tracker.rememberLivestreams(await lastLivestreams(sql));
 * ```
 */
export async function lastLivestreams(
  sql: Sql,
): Promise<Map<number, { status: "online" | "offline"; livestreamId: number }>> {
  try {
    const rows = await sql<{ id: number; status: "online" | "offline"; livestream_id: string }[]>`
      SELECT s.id, s.status, e.details->>'livestream_id' AS livestream_id
      FROM streamers s
      CROSS JOIN LATERAL (
        SELECT event_type, details FROM status_events
        WHERE streamer_id = s.id
        ORDER BY "timestamp" DESC, id DESC
        LIMIT 1
      ) e
      WHERE s.is_active AND s.status IN ('online', 'offline') AND e.event_type = s.status
        AND jsonb_typeof(e.details->'livestream_id') = 'number'`;
    return new Map(
      rows.map((r) => [r.id, { status: r.status, livestreamId: Number(r.livestream_id) }]),
    );
  } catch (e) {
    throw toDatabaseError(e, "reading the last livestream of each streamer");
  }
}

/**
 * Reads the streamers with these ids; absent ids (deleted rows) are missing from the result.
 *
 * @throws {DatabaseError} when the query fails.
 *
 * @example
 * ```ts
 * const [row] = await getStreamers(sql, [7]);
 * ```
 */
export async function getStreamers(sql: Sql, ids: readonly number[]): Promise<StreamerRecord[]> {
  if (ids.length === 0) return [];
  try {
    const rows = await sql<StreamerRow[]>`
      SELECT id, username, kick_user_id, kick_channel_id, status, is_active, status_observed_at
      FROM streamers WHERE id = ANY(${ids as number[]}::int[]) ORDER BY id`;
    return rows.map(toRecord);
  } catch (e) {
    throw toDatabaseError(e, "reading streamers");
  }
}

/** Ids learned for one streamer; only the fields given are written. */
export interface IdentityUpdate {
  readonly streamerId: number;
  readonly username?: string;
  readonly kickUserId?: number;
  readonly kickChannelId?: number;
  /** Why resolution failed (null clears a previous error). */
  readonly resolveError?: string | null;
}

/**
 * Writes resolved Kick ids back to a row. Never overwrites a non-NULL id with
 * a different one (the other system owns the row; a conflict is reported).
 *
 * @returns true when the row changed.
 * @throws {DatabaseError} on failure (e.g. `23505` when another row already has that id).
 *
 * @example
 * ```ts
 * await writeIdentity(sql, { streamerId: 7, kickChannelId: 2515504 });
 * ```
 */
export async function writeIdentity(sql: Sql, u: IdentityUpdate): Promise<boolean> {
  try {
    const rows = await sql`
      UPDATE streamers SET
        username = COALESCE(username, ${u.username ?? null}::varchar),
        kick_user_id = COALESCE(kick_user_id, ${u.kickUserId ?? null}::bigint),
        kick_channel_id = COALESCE(kick_channel_id, ${u.kickChannelId ?? null}::bigint),
        resolve_error = CASE WHEN ${u.resolveError === undefined}::boolean THEN resolve_error
                             ELSE ${u.resolveError ?? null}::text END
      WHERE id = ${u.streamerId}
        AND (   (username IS NULL AND ${u.username ?? null}::varchar IS NOT NULL)
             OR (kick_user_id IS NULL AND ${u.kickUserId ?? null}::bigint IS NOT NULL)
             OR (kick_channel_id IS NULL AND ${u.kickChannelId ?? null}::bigint IS NOT NULL)
             OR (${u.resolveError !== undefined}::boolean
                 AND resolve_error IS DISTINCT FROM ${u.resolveError ?? null}::text))
      RETURNING id`;
    return rows.length > 0;
  } catch (e) {
    throw toDatabaseError(e, `writing resolved ids for streamer ${u.streamerId}`);
  }
}

/** A streamer as `kickmon streamers list` and the HTTP API show it. */
export interface StreamerView {
  readonly id: number;
  readonly username: string | null;
  readonly displayName: string | null;
  readonly kickUserId: number | null;
  readonly kickChannelId: number | null;
  readonly status: StreamerStatus;
  readonly isActive: boolean;
  readonly lastStatusUpdate: string | null;
  readonly lastSeenOnline: string | null;
  readonly resolveError: string | null;
}

/**
 * Reads the list for display, ordered by username.
 *
 * @throws {DatabaseError} when the query fails.
 *
 * @example
 * ```ts
 * for (const s of await listStreamerViews(sql)) console.log(s.username, s.status);
 * ```
 */
export async function listStreamerViews(
  sql: Sql,
  filter: { username?: string } = {},
): Promise<StreamerView[]> {
  try {
    const rows = await sql<
      {
        id: number;
        username: string | null;
        display_name: string | null;
        kick_user_id: string | null;
        kick_channel_id: string | null;
        status: StreamerStatus;
        is_active: boolean;
        last_status_update: Date | null;
        last_seen_online: Date | null;
        resolve_error: string | null;
      }[]
    >`
      SELECT id, username, display_name, kick_user_id, kick_channel_id, status, is_active,
             last_status_update, last_seen_online, resolve_error
      FROM streamers
      WHERE ${filter.username ?? null}::text IS NULL OR lower(username) = lower(${
      filter.username ?? null
    }::text)
      ORDER BY lower(username) NULLS LAST, id`;
    return rows.map((r) => ({
      id: r.id,
      username: r.username,
      displayName: r.display_name,
      kickUserId: num(r.kick_user_id),
      kickChannelId: num(r.kick_channel_id),
      status: r.status,
      isActive: r.is_active,
      lastStatusUpdate: r.last_status_update?.toISOString() ?? null,
      lastSeenOnline: r.last_seen_online?.toISOString() ?? null,
      resolveError: r.resolve_error,
    }));
  } catch (e) {
    throw toDatabaseError(e, "listing streamers");
  }
}

/**
 * Inserts a streamer (as `kickmon streamers add` does after resolving it).
 *
 * @returns the new row's id.
 * @throws {DatabaseError} `23505` when the username or ids already exist.
 *
 * @example
 * ```ts
 * const id = await insertStreamer(sql, { username: "bossmanjack", kickUserId: 2570626 });
 * ```
 */
export async function insertStreamer(
  sql: Sql,
  s: { username?: string | null; kickUserId?: number | null; kickChannelId?: number | null },
): Promise<number> {
  try {
    const rows = await sql<{ id: number }[]>`
      INSERT INTO streamers (username, kick_user_id, kick_channel_id)
      VALUES (${s.username ?? null}, ${s.kickUserId ?? null}, ${s.kickChannelId ?? null})
      RETURNING id`;
    return rows[0].id;
  } catch (e) {
    throw toDatabaseError(e, "adding streamer");
  }
}

/**
 * Deletes a streamer by username (case-insensitive); its history goes with it.
 *
 * @returns true when a row was deleted.
 * @throws {DatabaseError} when the statement fails.
 *
 * @example
 * ```ts
 * await deleteStreamer(sql, "bossmanjack");
 * ```
 */
export async function deleteStreamer(sql: Sql, username: string): Promise<boolean> {
  try {
    const rows = await sql`DELETE FROM streamers WHERE lower(username) = lower(${username})
      RETURNING id`;
    return rows.length > 0;
  } catch (e) {
    throw toDatabaseError(e, "removing streamer");
  }
}

/**
 * Number of rows in `streamers` (active or not).
 *
 * @throws {DatabaseError} when the query fails.
 *
 * @example
 * ```ts
 * if (await countStreamers(sql) > 0) console.log("not empty");
 * ```
 */
export async function countStreamers(sql: Sql): Promise<number> {
  try {
    const [{ n }] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM streamers`;
    return n;
  } catch (e) {
    throw toDatabaseError(e, "counting streamers");
  }
}
