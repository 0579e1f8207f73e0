/**
 * The bench's streamer list: `n` rows of the other system's `streamers`
 * (`{prefix}{i}`, `kick_user_id` 1000000 + i, offline) and their channel ids
 * (4000000 + user id) in kickmon's schema, as `kickmon streamers add` would
 * leave them. One statement. With `{ channelIds: false }` no channel id is
 * known (kickmon must learn each from the official API, as for a streamer
 * added by username or user id only).
 *
 * @module
 */
import type postgres from "postgres";

/**
 * Inserts the rows.
 *
 * @returns each row's id and index i (1-based), in insertion order.
 * @throws {postgres.PostgresError} when the statement fails.
 *
 * @example
 * ```ts
 * const rows = await seedStreamers(sql, "bench_", 10_000);
 * const unknown = await seedStreamers(sql, "rec_", 10_000, { channelIds: false });
 * ```
 */
export async function seedStreamers(
  sql: postgres.Sql,
  prefix: string,
  n: number,
  opts: { readonly channelIds?: boolean } = {},
): Promise<{ id: number; i: number }[]> {
  const known = opts.channelIds ?? true;
  return await sql<{ id: number; i: number }[]>`
    WITH s AS (
      INSERT INTO streamers (username, kick_user_id, status)
      SELECT ${prefix} || g, (1000000 + g)::text, 'offline' FROM generate_series(1, ${n}) g
      RETURNING id, username, kick_user_id
    ), k AS (
      INSERT INTO kickmon.streamer_state
        (streamer_id, source_username, source_kick_user_id, kick_channel_id)
      SELECT id, username, kick_user_id,
             CASE WHEN ${known}::boolean THEN 4000000 + kick_user_id::bigint END FROM s
    )
    SELECT id, (kick_user_id::int - 1000000) AS i FROM s`;
}
