/**
 * The statement that commits one round of status transitions:
 * `kickmon.commit_transitions` (migrations/commit_transitions.sql) does the
 * guarded `UPDATE streamers`, the `status_events` rows, kickmon's own state
 * and the `pg_notify('kickmon_status', …)` in one round trip. Also how a
 * queue is split into rounds (one transition per streamer each).
 *
 * The queue, group commit and spool around it are in `status_writer.ts`.
 *
 * @module
 */
import type { Transition } from "../core/types.ts";
import { type Sql, toDatabaseError } from "./client.ts";

/** A transition the database accepted. */
export interface CommittedTransition {
  readonly transition: Transition;
  readonly eventId: number;
  readonly previousStatus: string;
}

/** Result of one {@linkcode commitTransitions} call. */
export interface CommitResult {
  readonly committed: CommittedTransition[];
  /** Transitions the guards refused: duplicate, older than the stored observation, unknown or inactive streamer. */
  readonly rejected: Transition[];
}

function detailsOf(t: Transition): string {
  return JSON.stringify({
    source: t.source,
    event: t.event,
    ...(t.livestreamId !== undefined ? { livestream_id: t.livestreamId } : {}),
    ...(t.extra ?? {}),
  });
}

/**
 * Commits transitions in one statement. Each streamer may appear at most once
 * per call (callers split longer runs into rounds; see {@linkcode splitRounds}).
 *
 * @returns which transitions were committed (in input order) and which the guards refused.
 * @throws {DatabaseError} when the statement fails (`connection` true for outages).
 *
 * @example
 * ```ts
 * const { committed } = await commitTransitions(sql, [transition]);
 * ```
 */
export async function commitTransitions(
  sql: Sql,
  batch: readonly Transition[],
): Promise<CommitResult> {
  if (batch.length === 0) return { committed: [], rejected: [] };
  const ids = batch.map((t) => t.streamerId);
  const statuses = batch.map((t) => t.status);
  const observed = batch.map((t) => new Date(t.observedAt).toISOString());
  const eventTimes = batch.map((t) => new Date(t.eventTime).toISOString());
  const details = batch.map(detailsOf);
  const livestreams = batch.map((t) => t.livestreamId ?? null);
  let rows: { ord: string; event_id: string; previous_status: string }[];
  try {
    // kickmon.commit_transitions (migrations/commit_transitions.sql): the
    // guarded UPDATE of streamers, the status_events rows, kickmon's state and
    // the NOTIFY, in one round trip.
    rows = await sql`
      SELECT ord, event_id, previous_status FROM kickmon.commit_transitions(
        ${ids}::int[], ${statuses}::text[], ${observed}::timestamptz[],
        ${eventTimes}::timestamptz[], ${details}::text[]::jsonb[], ${livestreams}::bigint[])`;
  } catch (e) {
    throw toDatabaseError(e, "committing status transitions");
  }
  const committed: CommittedTransition[] = [];
  const done = new Set<number>();
  for (const r of rows) {
    const i = Number(r.ord) - 1;
    done.add(i);
    committed.push({
      transition: batch[i],
      eventId: Number(r.event_id),
      previousStatus: r.previous_status,
    });
  }
  const rejected = batch.filter((_, i) => !done.has(i));
  return { committed, rejected };
}

/**
 * Splits a queue into rounds in which each streamer appears at most once,
 * keeping every streamer's transitions in order (round k holds each
 * streamer's k-th transition).
 *
 * @example
 * ```ts
 * splitRounds([a1, b1, a2]); // [[a1, b1], [a2]]
 * ```
 */
export function splitRounds(queue: readonly Transition[]): Transition[][] {
  const rounds: Transition[][] = [];
  const seen = new Map<number, number>();
  for (const t of queue) {
    const k = seen.get(t.streamerId) ?? 0;
    seen.set(t.streamerId, k + 1);
    (rounds[k] ??= []).push(t);
  }
  return rounds;
}
