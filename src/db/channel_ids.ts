/**
 * The operator-provided Pusher channel id (`kickmon streamers set-channel-id`,
 * issue 13 item 4): the last of kickmon's channel-id sources, for a streamer
 * whose id nothing else gives (v1 `/livestreams` gone, the unofficial lookup
 * off or blocked). Stored in `kickmon.streamer_state.kick_channel_id` with
 * `kick_channel_id_source = 'operator'` (migrations/kickmon_003_channel_id_source.sql);
 * kickmon never replaces a channel id it holds with one it learned
 * (`writeIdentity`). Each write also sends `NOTIFY kickmon_streamers` for the
 * row, so a kickmon that LISTENs (list trigger installed) re-reads it at once.
 *
 * The channel id is Kick's channel id (`channel.{id}` on Pusher), not the
 * broadcaster user id (docs/kick-protocol.md §2, §10.6).
 *
 * @module
 */
import { type Sql, toDatabaseError } from "./client.ts";

/** What {@linkcode setOperatorChannelId} changed. */
export interface ChannelIdChange {
  /** `streamers.id` of the row. */
  readonly streamerId: number;
  /** The channel id held before (null when none). */
  readonly previous: number | null;
  /** Who set the previous one: `operator`, or null (learned by kickmon). */
  readonly previousSource: string | null;
  /** The channel id now (null after a clear). */
  readonly channelId: number | null;
}

/**
 * Sets (or, with `channelId` null, clears) the operator-provided channel id
 * of the streamer listed as `username` (case-insensitive; a row without a
 * username matches the username kickmon resolved for it). Learned ids that
 * belong to what the row said before (`source_username`/`source_kick_user_id`
 * differ) are dropped in the same statement, as the list sync would.
 *
 * @param channelId a positive integer, or null to clear.
 * @returns the change, or null when no streamer is listed as `username`.
 * @throws {DatabaseError} `23505` when another streamer already has that channel id;
 *   `42501` without privilege on `kickmon.streamer_state`; `42703` before
 *   `kickmon db migrate` added `kick_channel_id_source`.
 *
 * @example
 * ```ts
 * const c = await setOperatorChannelId(sql, "bossmanjack", 2515504);
 * console.log(c?.previous, "->", c?.channelId);
 * await setOperatorChannelId(sql, "bossmanjack", null); // --clear
 * ```
 */
export async function setOperatorChannelId(
  sql: Sql,
  username: string,
  channelId: number | null,
): Promise<ChannelIdChange | null> {
  try {
    return await sql.begin(async (tx) => {
      const t = tx as unknown as Sql;
      const [row] = await t<
        { id: number; previous: string | null; previous_source: string | null }[]
      >`
        SELECT s.id, k.kick_channel_id::text AS previous,
               k.kick_channel_id_source AS previous_source
        FROM streamers s LEFT JOIN kickmon.streamer_state k ON k.streamer_id = s.id
        WHERE lower(s.username::text) = lower(${username})
           OR (s.username IS NULL AND lower(k.username) = lower(${username}))
        ORDER BY s.id LIMIT 1
        FOR UPDATE OF s`;
      if (!row) return null;
      await t`
        INSERT INTO kickmon.streamer_state AS k
          (streamer_id, source_username, source_kick_user_id, kick_channel_id,
           kick_channel_id_source)
        SELECT s.id, s.username::text, s.kick_user_id::text, ${channelId}::bigint,
               ${channelId === null ? null : "operator"}::text
        FROM streamers s WHERE s.id = ${row.id}
        ON CONFLICT (streamer_id) DO UPDATE SET
          kick_channel_id = EXCLUDED.kick_channel_id,
          kick_channel_id_source = EXCLUDED.kick_channel_id_source,
          username = CASE WHEN k.source_username IS NOT DISTINCT FROM EXCLUDED.source_username
                           AND k.source_kick_user_id IS NOT DISTINCT FROM EXCLUDED.source_kick_user_id
                          THEN k.username END,
          kick_user_id = CASE WHEN k.source_username IS NOT DISTINCT FROM EXCLUDED.source_username
                               AND k.source_kick_user_id IS NOT DISTINCT FROM EXCLUDED.source_kick_user_id
                              THEN k.kick_user_id END,
          source_username = EXCLUDED.source_username,
          source_kick_user_id = EXCLUDED.source_kick_user_id,
          updated_at = now()`;
      await t`SELECT pg_notify('kickmon_streamers',
                json_build_object('op', 'UPDATE', 'id', ${row.id}::int)::text)`;
      return {
        streamerId: row.id,
        previous: row.previous === null ? null : Number(row.previous),
        previousSource: row.previous_source,
        channelId,
      };
    });
  } catch (e) {
    throw toDatabaseError(e, `setting the channel id of ${username}`);
  }
}

/**
 * The operator-provided channel ids, by `streamers.id`.
 *
 * @throws {DatabaseError} when the query fails.
 *
 * @example
 * ```ts
 * const given = await operatorChannelIds(sql);
 * if (given.get(7) !== learned) console.warn("the operator's id disagrees");
 * ```
 */
export async function operatorChannelIds(sql: Sql): Promise<Map<number, number>> {
  try {
    const rows = await sql<{ streamer_id: number; kick_channel_id: string }[]>`
      SELECT streamer_id, kick_channel_id::text AS kick_channel_id
      FROM kickmon.streamer_state
      WHERE kick_channel_id_source = 'operator' AND kick_channel_id IS NOT NULL`;
    return new Map(rows.map((r) => [r.streamer_id, Number(r.kick_channel_id)]));
  } catch (e) {
    throw toDatabaseError(e, "reading operator-provided channel ids");
  }
}
