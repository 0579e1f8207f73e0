/**
 * Every SQL statement about the `streamers` list (reading it, writing resolved
 * Kick ids back, the CLI's add/remove). Status changes are written by
 * `status_writer.ts`, not here.
 *
 * Over the ~500-line mark and kept whole on purpose: it is one concept, the
 * SQL of one table and kickmon's state beside it, and splitting it would
 * scatter the one row shape (`StreamerRow`) every statement shares.
 *
 * @module
 */
import type { StreamerRecord, StreamerStatus } from "../core/types.ts";
import { type Sql, toDatabaseError } from "./client.ts";

/** A `streamers` row joined with kickmon's state for it (`k_*`: kickmon.streamer_state). */
interface StreamerRow {
  id: number;
  username: string | null;
  kick_user_id: string | null;
  status: StreamerStatus;
  is_active: boolean;
  k_username: string | null;
  k_user_id: string | null;
  k_channel_id: string | null;
  k_observed_at: Date | null;
  k_source_username: string | null;
  k_source_user_id: string | null;
  k_exists: boolean;
}

const num = (v: string | number | null): number | null => v === null ? null : Number(v);

/**
 * The one place that says what a valid `kick_user_id` is: 1–15 decimal
 * digits, blanks around allowed (Kick's ids are far below 2^53, so they stay
 * exact as JavaScript numbers). The SQL twin is {@linkcode USER_ID_PATTERN}.
 */
const USER_ID = /^\s*[0-9]{1,15}\s*$/;
/** {@linkcode USER_ID} as a PostgreSQL regular expression. */
export const USER_ID_PATTERN = "^\\s*[0-9]{1,15}\\s*$";

/**
 * Reads a `streamers.kick_user_id` (text in the specification's schema).
 *
 * @returns the id; `null` when blank (kickmon resolves it from the username);
 *   `"invalid"` when it is not a Kick user id (the row is skipped).
 *
 * @example
 * ```ts
 * parseKickUserId(" 2570626 "); // 2570626
 * parseKickUserId("");          // null
 * parseKickUserId("abc");       // "invalid"
 * ```
 */
export function parseKickUserId(raw: string | null): number | null | "invalid" {
  if (raw === null || raw.trim() === "") return null;
  return USER_ID.test(raw) ? Number(raw) : "invalid";
}

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

/**
 * A stored observation time in the future (a clock that ran ahead) is not
 * trusted: it would make every later observation look older and freeze the
 * streamer. The SQL guard does the same (kickmon.commit_transitions).
 */
function observedAtOrNull(d: Date | null): number | null {
  if (!d) return null;
  const t = d.getTime();
  return t > Date.now() + 5 * 60_000 ? null : t;
}

const blankToNull = (v: string | null): string | null => v === null || v.trim() === "" ? null : v;

function toRecord(r: StreamerRow): StreamerRecord {
  // What kickmon learned counts only while the row still names the streamer it was learned for.
  const fresh = r.k_exists && r.k_source_username === r.username &&
    r.k_source_user_id === r.kick_user_id;
  const parsed = parseKickUserId(r.kick_user_id);
  return {
    id: r.id,
    username: blankToNull(r.username) ?? (fresh ? r.k_username : null),
    kickUserId: parsed === "invalid" ? null : parsed ?? (fresh ? num(r.k_user_id) : null),
    kickChannelId: parsed === "invalid" || !fresh ? null : num(r.k_channel_id),
    status: internStatus(r.status),
    isActive: r.is_active && parsed !== "invalid",
    statusObservedAt: observedAtOrNull(r.k_observed_at),
    listed: { username: r.username, kickUserId: r.kick_user_id },
  };
}

/**
 * Reads every streamer (active or not), ordered by id, each with what kickmon
 * knows about it. Rows whose `kick_user_id` is not a Kick user id come back
 * inactive (skipped; {@linkcode syncStreamerState} records why).
 *
 * @param ids only these rows (absent ids, i.e. deleted rows, are missing from the result).
 * @throws {DatabaseError} when the query fails.
 *
 * @example
 * ```ts
 * const all = await listStreamers(sql);
 * const [row] = await listStreamers(sql, [7]);
 * ```
 */
export async function listStreamers(
  sql: Sql,
  ids?: readonly number[],
): Promise<StreamerRecord[]> {
  if (ids?.length === 0) return [];
  try {
    const rows = await sql<StreamerRow[]>`
      SELECT s.id, s.username::text AS username, s.kick_user_id::text AS kick_user_id,
             s.status::text AS status, s.is_active IS TRUE AS is_active,
             k.username AS k_username, k.kick_user_id AS k_user_id,
             k.kick_channel_id AS k_channel_id, k.status_observed_at AS k_observed_at,
             k.source_username AS k_source_username, k.source_kick_user_id AS k_source_user_id,
             k.streamer_id IS NOT NULL AS k_exists
      FROM streamers s LEFT JOIN kickmon.streamer_state k ON k.streamer_id = s.id
      WHERE ${ids === undefined}::boolean OR s.id = ANY(${(ids ?? []) as number[]}::int[])
      ORDER BY s.id`;
    return rows.map(toRecord);
  } catch (e) {
    throw toDatabaseError(e, "listing streamers");
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
export function getStreamers(sql: Sql, ids: readonly number[]): Promise<StreamerRecord[]> {
  return listStreamers(sql, ids);
}

/**
 * Brings kickmon's state in line with the list, in one statement: drops the
 * state of deleted rows; forgets what was learned for a row whose `username`
 * or `kick_user_id` the other system changed (it is resolved again); records
 * why a row whose `kick_user_id` is not a Kick user id is skipped. Cheap when
 * nothing changed (no row is written).
 *
 * @returns how many state rows were removed, reset or marked.
 * @throws {DatabaseError} when the statement fails.
 *
 * @example
 * ```ts
 * await syncStreamerState(sql);
 * ```
 */
export async function syncStreamerState(sql: Sql): Promise<number> {
  try {
    const [r] = await sql<{ n: number }[]>`
      WITH cur AS (
        SELECT id, username::text AS username, kick_user_id::text AS kick_user_id,
               CASE WHEN kick_user_id IS NOT NULL AND btrim(kick_user_id::text) <> ''
                         AND kick_user_id::text !~ ${USER_ID_PATTERN}
                    THEN format('kick_user_id %L is not a Kick user id: row skipped',
                                left(kick_user_id::text, 100)) END AS bad
        FROM streamers
      ), gone AS (
        DELETE FROM kickmon.streamer_state k
        WHERE NOT EXISTS (SELECT 1 FROM cur WHERE cur.id = k.streamer_id)
        RETURNING 1
      ), reset AS (
        UPDATE kickmon.streamer_state k SET
          source_username = c.username, source_kick_user_id = c.kick_user_id,
          username = NULL, kick_user_id = NULL, kick_channel_id = NULL,
          last_livestream_id = NULL, last_livestream_status = NULL,
          resolve_error = c.bad, updated_at = now()
        FROM cur c
        WHERE c.id = k.streamer_id
          AND (k.source_username IS DISTINCT FROM c.username
               OR k.source_kick_user_id IS DISTINCT FROM c.kick_user_id
               OR (c.bad IS NOT NULL AND k.resolve_error IS DISTINCT FROM c.bad))
        RETURNING 1
      ), added AS (
        INSERT INTO kickmon.streamer_state (streamer_id, source_username, source_kick_user_id,
                                            resolve_error)
        SELECT c.id, c.username, c.kick_user_id, c.bad FROM cur c
        WHERE c.bad IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM kickmon.streamer_state k WHERE k.streamer_id = c.id)
        ON CONFLICT (streamer_id) DO NOTHING
        RETURNING 1
      )
      SELECT ((SELECT count(*) FROM gone) + (SELECT count(*) FROM reset) +
              (SELECT count(*) FROM added))::int AS n`;
    return r.n;
  } catch (e) {
    throw toDatabaseError(e, "syncing kickmon's streamer state");
  }
}

/**
 * A cheap fingerprint of the list columns kickmon follows (`id`, `username`,
 * `kick_user_id`, `is_active`): row count and an order-independent sum of
 * per-column hashes (a NULL counts as blank, which kickmon treats alike).
 * Any insert, delete or change of those columns changes it; status writes do
 * not. One sequential scan, no row leaves the server; about half the cost of
 * hashing each row's text.
 *
 * @returns e.g. `"10000:-123456789012"`.
 * @throws {DatabaseError} when the query fails.
 *
 * @example
 * ```ts
 * if ((await listFingerprint(sql)) !== last) await monitor.resync();
 * ```
 */
export async function listFingerprint(sql: Sql): Promise<string> {
  try {
    const [r] = await sql<{ f: string }[]>`
      SELECT count(*) || ':' || coalesce(sum(
               hashint4(id)::bigint * 3
               + hashtext(coalesce(username::text, ''))::bigint * 5
               + hashtext(coalesce(kick_user_id::text, ''))::bigint * 7
               + (is_active IS TRUE)::int), 0) AS f
      FROM streamers`;
    return r.f;
  } catch (e) {
    throw toDatabaseError(e, "checking the streamer list for changes");
  }
}

/**
 * Resets observation times that lie more than 5 minutes in the future (by
 * the database's clock) to now: kickmon's clock, or an earlier one, ran
 * ahead, and such a time would refuse every later transition.
 *
 * @returns how many were corrected.
 * @throws {DatabaseError} when the statement fails.
 *
 * @example
 * ```ts
 * const n = await correctFutureObservations(sql);
 * ```
 */
export async function correctFutureObservations(sql: Sql): Promise<number> {
  try {
    const r = await sql`
      UPDATE kickmon.streamer_state SET status_observed_at = now(), updated_at = now()
      WHERE status_observed_at > now() + interval '5 minutes'`;
    return r.count;
  } catch (e) {
    throw toDatabaseError(e, "correcting future observation times");
  }
}

/**
 * For each active streamer whose last transition written by kickmon named a
 * Kick livestream (Pusher rows) and agrees with `streamers.status`: that
 * status and livestream id (kept in kickmon's schema). Lets a restarted
 * monitor infer a stream boundary from the first frame it sees (see the
 * core's `StatusTracker.rememberLivestreams`).
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
      SELECT s.id, s.status::text AS status, k.last_livestream_id AS livestream_id
      FROM streamers s JOIN kickmon.streamer_state k ON k.streamer_id = s.id
      WHERE s.is_active AND s.status IN ('online', 'offline')
        AND k.last_livestream_id IS NOT NULL AND k.last_livestream_status = s.status`;
    return new Map(
      rows.map((r) => [r.id, { status: r.status, livestreamId: Number(r.livestream_id) }]),
    );
  } catch (e) {
    throw toDatabaseError(e, "reading the last livestream of each streamer");
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
  /**
   * The row's `username` / `kick_user_id` the ids were learned for
   * (`StreamerRecord.listed`). When the row no longer says that, nothing is
   * written: the ids belong to the streamer the row named before.
   */
  readonly listed?: StreamerRecord["listed"];
}

/**
 * Records ids kickmon learned for a row in kickmon's schema. Never
 * overwrites a learned id with a different one; the other system's row is
 * not touched.
 *
 * @returns true when something changed.
 * @throws {DatabaseError} on failure (e.g. `23505` when another streamer already has that channel id).
 *
 * @example
 * ```ts
 * await writeIdentity(sql, { streamerId: 7, kickChannelId: 2515504 });
 * ```
 */
export async function writeIdentity(sql: Sql, u: IdentityUpdate): Promise<boolean> {
  const checkListed = u.listed !== undefined;
  try {
    const rows = await sql`
      INSERT INTO kickmon.streamer_state AS k
        (streamer_id, source_username, source_kick_user_id, username, kick_user_id,
         kick_channel_id, resolve_error)
      SELECT s.id, s.username::text, s.kick_user_id::text, ${u.username ?? null}::text,
             ${u.kickUserId ?? null}::bigint, ${u.kickChannelId ?? null}::bigint,
             ${u.resolveError ?? null}::text
      FROM streamers s
      WHERE s.id = ${u.streamerId}
        AND (NOT ${checkListed}::boolean
             OR (s.username::text IS NOT DISTINCT FROM ${u.listed?.username ?? null}::text
                 AND s.kick_user_id::text IS NOT DISTINCT FROM ${
      u.listed?.kickUserId ?? null
    }::text))
      ON CONFLICT (streamer_id) DO UPDATE SET
        username = COALESCE(k.username, EXCLUDED.username),
        kick_user_id = COALESCE(k.kick_user_id, EXCLUDED.kick_user_id),
        kick_channel_id = COALESCE(k.kick_channel_id, EXCLUDED.kick_channel_id),
        resolve_error = CASE WHEN ${u.resolveError === undefined}::boolean THEN k.resolve_error
                             ELSE EXCLUDED.resolve_error END,
        updated_at = now()
      WHERE k.source_username IS NOT DISTINCT FROM EXCLUDED.source_username
        AND k.source_kick_user_id IS NOT DISTINCT FROM EXCLUDED.source_kick_user_id
        AND (   (k.username IS NULL AND EXCLUDED.username IS NOT NULL)
             OR (k.kick_user_id IS NULL AND EXCLUDED.kick_user_id IS NOT NULL)
             OR (k.kick_channel_id IS NULL AND EXCLUDED.kick_channel_id IS NOT NULL)
             OR (${u.resolveError !== undefined}::boolean
                 AND k.resolve_error IS DISTINCT FROM EXCLUDED.resolve_error))
      RETURNING streamer_id`;
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
 * Reads the list for display, ordered by username. `resolveError` says why a
 * row is not monitored or not fully resolved (an invalid `kick_user_id`, a
 * failed lookup).
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
      (StreamerRow & {
        display_name: string | null;
        last_status_update: Date | null;
        last_seen_online: Date | null;
        resolve_error: string | null;
      })[]
    >`
      SELECT s.id, s.username::text AS username, s.kick_user_id::text AS kick_user_id,
             s.status::text AS status, s.is_active IS TRUE AS is_active,
             s.display_name::text AS display_name, s.last_status_update, s.last_seen_online,
             k.username AS k_username, k.kick_user_id AS k_user_id,
             k.kick_channel_id AS k_channel_id, k.status_observed_at AS k_observed_at,
             k.source_username AS k_source_username, k.source_kick_user_id AS k_source_user_id,
             k.streamer_id IS NOT NULL AS k_exists, k.resolve_error
      FROM streamers s LEFT JOIN kickmon.streamer_state k ON k.streamer_id = s.id
      WHERE ${filter.username ?? null}::text IS NULL
         OR lower(s.username) = lower(${filter.username ?? null}::text)
      ORDER BY lower(s.username) NULLS LAST, s.id`;
    return rows.map((r) => {
      const rec = toRecord(r);
      const invalid = parseKickUserId(r.kick_user_id) === "invalid";
      return {
        id: r.id,
        username: rec.username,
        displayName: r.display_name,
        kickUserId: rec.kickUserId,
        kickChannelId: rec.kickChannelId,
        status: r.status,
        isActive: r.is_active,
        lastStatusUpdate: r.last_status_update?.toISOString() ?? null,
        lastSeenOnline: r.last_seen_online?.toISOString() ?? null,
        resolveError: invalid
          ? `kick_user_id '${r.kick_user_id?.slice(0, 100)}' is not a Kick user id: row skipped`
          : r.resolve_error,
      };
    });
  } catch (e) {
    throw toDatabaseError(e, "listing streamers");
  }
}

/**
 * Inserts a streamer (as `kickmon streamers add` does after resolving it):
 * the `streamers` row, and the channel id, when known, in kickmon's schema;
 * one transaction.
 *
 * @returns the new row's id.
 * @throws {DatabaseError} `23505` when the username or ids already exist; `42501` without INSERT privilege.
 *
 * @example
 * ```ts
 * const id = await insertStreamer(sql, { username: "bossmanjack", kickUserId: 2570626 });
 * ```
 */
export async function insertStreamer(
  sql: Sql,
  s: {
    username?: string | null;
    kickUserId?: number | string | null;
    kickChannelId?: number | null;
    status?: string;
  },
): Promise<number> {
  try {
    return await sql.begin(async (tx) => {
      const [r] = await (tx as unknown as Sql)<{ id: number; username: string; kick: string }[]>`
        INSERT INTO streamers (username, kick_user_id, status)
        VALUES (${s.username ?? null}, ${s.kickUserId?.toString() ?? null},
                ${s.status ?? "unknown"})
        RETURNING id, username::text AS username, kick_user_id::text AS kick`;
      if (s.kickChannelId != null) {
        await (tx as unknown as Sql)`
          INSERT INTO kickmon.streamer_state
            (streamer_id, source_username, source_kick_user_id, kick_channel_id)
          VALUES (${r.id}, ${r.username}, ${r.kick}, ${s.kickChannelId})`;
      }
      return r.id;
    });
  } catch (e) {
    throw toDatabaseError(e, "adding streamer");
  }
}

/**
 * Deletes streamers with their history and kickmon's state for them, in one
 * transaction (the specification's `status_events` foreign key has no
 * ON DELETE CASCADE).
 *
 * @param which the rows: by username (case-insensitive) or by ids.
 * @returns how many `streamers` rows were deleted.
 * @throws {DatabaseError} when a statement fails (`42501` without DELETE privilege).
 *
 * @example
 * ```ts
 * await deleteStreamers(sql, { username: "bossmanjack" });
 * await deleteStreamers(sql, { ids: [7, 8] });
 * ```
 */
export async function deleteStreamers(
  sql: Sql,
  which: { username: string } | { ids: readonly number[] },
): Promise<number> {
  try {
    return await sql.begin(async (tx) => {
      const t = tx as unknown as Sql;
      const ids = "ids" in which ? [...which.ids] : (await t<{ id: number }[]>`
        SELECT id FROM streamers WHERE lower(username) = lower(${which.username})`)
        .map((r) => r.id);
      if (ids.length === 0) return 0;
      await t`DELETE FROM status_events WHERE streamer_id = ANY(${ids}::int[])`;
      await t`DELETE FROM kickmon.streamer_state WHERE streamer_id = ANY(${ids}::int[])`;
      return (await t`DELETE FROM streamers WHERE id = ANY(${ids}::int[])`).count;
    });
  } catch (e) {
    throw toDatabaseError(e, "removing streamers");
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
