/**
 * The monitor's decision core: given the streamer list and a stream of
 * {@linkcode Observation}s from any source, decide which are transitions.
 * Knows nothing about sockets or SQL; the service feeds it records from the
 * database and hands its transitions to the status writer.
 *
 * Rules:
 * - an observation for a streamer not in the list (or inactive) is refused;
 * - an observation equal to the believed status is a duplicate (no write);
 * - a reconciliation result older than the newest observation of that
 *   streamer is stale (an API response for a request sent at T0 loses
 *   against a Pusher event received after T0); the database re-checks the
 *   same rule in the UPDATE itself;
 * - ids carried by a payload that the row lacks are reported for write-back;
 * - a Pusher frame naming a livestream newer than the one the core last saw
 *   reveals frames lost in between (a frame in flight when its socket died is
 *   never re-sent, docs/kick-protocol.md §1.4): a `StreamerIsLive` for a new
 *   livestream while the old one is believed live means the old one ended,
 *   and a `StopStreamBroadcast` for a livestream never seen starting means it
 *   started. Those transitions are inferred and committed first, marked
 *   `details.inferred`. Livestream ids only ever grow (docs/kick-protocol.md §3.1, §3.2, §10.3:
 *   5274636 in 2023, 74489327 in 2025), so an older id infers nothing.
 *
 * @module
 */
import type { Observation, StreamerRecord, StreamerStatus, Transition } from "./types.ts";

/** Ids a payload taught kickmon about a streamer whose row lacks them. */
export interface LearnedIdentity {
  readonly streamerId: number;
  readonly kickChannelId?: number;
  readonly kickUserId?: number;
}

/** What {@linkcode StatusTracker.observe} decided. */
export type Decision =
  | {
    readonly kind: "transition";
    readonly transition: Transition;
    /**
     * Transitions the observation proves were missed, to commit before
     * `transition`, oldest first (see the module rules). Usually absent.
     */
    readonly inferred?: readonly Transition[];
    readonly learned?: LearnedIdentity;
  }
  | { readonly kind: "duplicate"; readonly streamerId: number; readonly learned?: LearnedIdentity }
  | { readonly kind: "stale"; readonly streamerId: number }
  | { readonly kind: "unknown_streamer" }
  | { readonly kind: "inactive"; readonly streamerId: number };

interface Entry {
  /** The row as last read from the database (its status fields may be older than below). */
  record: StreamerRecord;
  /** Last committed status: the row's, or a commit of ours since it was read. */
  status: StreamerStatus;
  /** `status_observed_at` of the last committed status, ms since epoch, or null. */
  statusObservedAt: number | null;
  /** Last decided status (may be ahead of the database while writes are pending). */
  belief: StreamerStatus;
  /** Newest observation time seen for this streamer, ms since epoch. */
  lastObservedAt: number;
  /** Transitions decided but not yet committed or refused by the database. */
  pending: number;
  /**
   * Kick's livestream id that the belief is about (the live stream, or the
   * one that ended), from the last Pusher frame; null when unknown or when the
   * belief came from a source that names none.
   */
  livestreamId: number | null;
}

/** Counts of active streamers by believed status. */
export interface StatusCounts {
  online: number;
  offline: number;
  unknown: number;
  inactive: number;
}

/**
 * In-memory view of the list plus the decision rules above.
 *
 * @example
 * ```ts
 * const tracker = new StatusTracker();
 * tracker.replaceAll([{ id: 1, username: "a", kickUserId: 10, kickChannelId: 668,
 *   status: "offline", isActive: true, statusObservedAt: null }]);
 * const d = tracker.observe({ source: "pusher", key: { kind: "channel_id", channelId: 668 },
 *   status: "online", observedAt: Date.now(), event: "App\\Events\\StreamerIsLive" });
 * if (d.kind === "transition") writer.enqueue(d.transition);
 * ```
 */
export class StatusTracker {
  readonly #byId = new Map<number, Entry>();
  readonly #byChannel = new Map<number, number>();
  readonly #byUser = new Map<number, number>();

  /**
   * Replaces the whole list (a full resync). Entries with writes in flight
   * keep their believed status.
   *
   * @returns true when a streamer was added or removed or its ids or
   *   `is_active` changed (status changes alone do not count).
   */
  replaceAll(records: readonly StreamerRecord[]): boolean {
    const keep = new Set(records.map((r) => r.id));
    let changed = false;
    for (const id of [...this.#byId.keys()]) {
      if (!keep.has(id)) {
        this.remove(id);
        changed = true;
      }
    }
    for (const r of records) changed = this.upsert(r) || changed;
    return changed;
  }

  /**
   * Adds or refreshes one streamer from its database row.
   *
   * @returns true when it is new or its ids or `is_active` changed.
   */
  upsert(record: StreamerRecord): boolean {
    const old = this.#byId.get(record.id);
    const o = old?.record;
    const changed = !o || o.username !== record.username || o.kickUserId !== record.kickUserId ||
      o.kickChannelId !== record.kickChannelId || o.isActive !== record.isActive;
    if (old) this.#unindex(old.record);
    const entry: Entry = old ?? {
      record,
      status: record.status,
      statusObservedAt: record.statusObservedAt,
      belief: record.status,
      lastObservedAt: record.statusObservedAt ?? 0,
      pending: 0,
      livestreamId: null,
    };
    entry.record = record;
    entry.status = record.status;
    entry.statusObservedAt = record.statusObservedAt;
    if (entry.pending === 0) entry.belief = record.status;
    entry.lastObservedAt = Math.max(entry.lastObservedAt, record.statusObservedAt ?? 0);
    this.#byId.set(record.id, entry);
    if (record.kickChannelId !== null) this.#byChannel.set(record.kickChannelId, record.id);
    if (record.kickUserId !== null) this.#byUser.set(record.kickUserId, record.id);
    return changed;
  }

  /** Forgets a streamer (its row was deleted). */
  remove(id: number): void {
    const e = this.#byId.get(id);
    if (!e) return;
    this.#unindex(e.record);
    this.#byId.delete(id);
  }

  #unindex(r: StreamerRecord): void {
    if (r.kickChannelId !== null && this.#byChannel.get(r.kickChannelId) === r.id) {
      this.#byChannel.delete(r.kickChannelId);
    }
    if (r.kickUserId !== null && this.#byUser.get(r.kickUserId) === r.id) {
      this.#byUser.delete(r.kickUserId);
    }
  }

  /**
   * The streamer an observation is about, if it is in the list. The record is
   * the row as last read (no copy is made): its `status`/`statusObservedAt`
   * may predate commits made since; {@linkcode get} has the current ones.
   */
  find(obs: Pick<Observation, "key">): StreamerRecord | undefined {
    const id = obs.key.kind === "channel_id"
      ? this.#byChannel.get(obs.key.channelId)
      : this.#byUser.get(obs.key.userId);
    return id === undefined ? undefined : this.#byId.get(id)?.record;
  }

  /** Decides what an observation means. Updates beliefs for transitions. */
  observe(obs: Observation): Decision {
    const rec = this.find(obs);
    if (!rec) return { kind: "unknown_streamer" };
    const e = this.#byId.get(rec.id)!;
    if (!rec.isActive) return { kind: "inactive", streamerId: rec.id };
    const learned = this.#learn(rec, obs);
    if (obs.source === "reconcile" && obs.observedAt < e.lastObservedAt) {
      return { kind: "stale", streamerId: rec.id };
    }
    e.lastObservedAt = Math.max(e.lastObservedAt, obs.observedAt);
    const inferred = this.#inferMissed(e, obs);
    if (e.belief === obs.status) {
      if (obs.livestreamId !== undefined && e.livestreamId === null) {
        e.livestreamId = obs.livestreamId;
      }
      return { kind: "duplicate", streamerId: rec.id, learned };
    }
    const transition = transitionOf(rec.id, e.belief, obs);
    e.belief = obs.status;
    e.livestreamId = obs.livestreamId ?? null;
    e.pending++;
    return inferred.length
      ? { kind: "transition", transition, inferred, learned }
      : { kind: "transition", transition, learned };
  }

  /**
   * The transitions a Pusher frame for a newer livestream proves were missed
   * (module rules), applied to the belief. Empty when the frame names no
   * livestream, the core knows none, or the frame's is not newer.
   */
  #inferMissed(e: Entry, obs: Observation): Transition[] {
    const seen = e.livestreamId;
    const next = obs.livestreamId;
    if (next === undefined || seen === null || next <= seen) return [];
    const out: Transition[] = [];
    const infer = (status: "online" | "offline", livestreamId: number, why: string) => {
      out.push(transitionOf(e.record.id, e.belief, obs, status, livestreamId, why));
      e.belief = status;
      e.pending++;
    };
    if (e.belief === "online") {
      infer("offline", seen, `livestream ${next} began while ${seen} was believed live`);
    }
    if (obs.status === "offline" && e.belief === "offline") {
      infer("online", next, `livestream ${next} ended without a start seen`);
    }
    return out;
  }

  #learn(rec: StreamerRecord, obs: Observation): LearnedIdentity | undefined {
    const ch = obs.channelId ?? (obs.key.kind === "channel_id" ? obs.key.channelId : undefined);
    const user = obs.broadcasterUserId ??
      (obs.key.kind === "broadcaster_user_id" ? obs.key.userId : undefined);
    const newCh = rec.kickChannelId === null && ch !== undefined && !this.#byChannel.has(ch)
      ? ch
      : undefined;
    const newUser = rec.kickUserId === null && user !== undefined && !this.#byUser.has(user)
      ? user
      : undefined;
    if (newCh === undefined && newUser === undefined) return undefined;
    return { streamerId: rec.id, kickChannelId: newCh, kickUserId: newUser };
  }

  /**
   * Reports the database's verdict on a decided transition, so the belief
   * follows what was really committed.
   *
   * @param committed true when the row changed; false when the guards refused it.
   * @returns true when the caller should re-read the row (refused: the belief may be wrong).
   */
  settle(t: Transition, committed: boolean): boolean {
    const e = this.#byId.get(t.streamerId);
    if (!e) return false;
    e.pending = Math.max(0, e.pending - 1);
    if (committed) {
      // Kept in the entry, not in a new record object: this runs once per commit.
      e.status = t.status;
      e.statusObservedAt = t.observedAt;
      return false;
    }
    return true;
  }

  /**
   * Takes a transition decided by an earlier run (replayed from the spool) as
   * the current belief, so that the next observation is compared with it and
   * not with a row the replay has not reached yet.
   */
  assumePending(t: Transition): void {
    const e = this.#byId.get(t.streamerId);
    if (!e) return;
    e.belief = t.status;
    e.livestreamId = t.livestreamId ?? null;
    e.pending++; // settled when the replay commits or is refused, like any transition
    e.lastObservedAt = Math.max(e.lastObservedAt, t.observedAt);
  }

  /**
   * Takes the livestream each streamer's belief is about from history (the
   * database's last Pusher row, after a restart), so that the first frame for
   * a newer livestream can still infer what was missed. Only fills streamers
   * that know none yet, have nothing pending and whose belief is the same
   * status.
   *
   * @param last streamer id → the status and livestream id of its last row.
   * @returns how many streamers took one.
   */
  rememberLivestreams(
    last: ReadonlyMap<number, { status: StreamerStatus; livestreamId: number }>,
  ): number {
    let n = 0;
    for (const [id, l] of last) {
      const e = this.#byId.get(id);
      if (!e || e.livestreamId !== null || e.pending > 0 || e.belief !== l.status) continue;
      e.livestreamId = l.livestreamId;
      n++;
    }
    return n;
  }

  /** Pusher channel ids of every active streamer that has one. */
  channelIds(): number[] {
    const out: number[] = [];
    for (const e of this.#byId.values()) {
      if (e.record.isActive && e.record.kickChannelId !== null) out.push(e.record.kickChannelId);
    }
    return out;
  }

  /** Every active streamer's record (copies) with its believed status. */
  active(): Array<StreamerRecord & { belief: StreamerStatus }> {
    const out: Array<StreamerRecord & { belief: StreamerStatus }> = [];
    for (const e of this.#byId.values()) if (e.record.isActive) out.push(view(e));
    return out;
  }

  /**
   * Calls `fn` with every active streamer's record, without copying (the
   * record is the row as last read; see {@linkcode find}). For passes over the
   * whole list that only need ids: {@linkcode active} copies every record.
   *
   * @example
   * ```ts
   * const userIds: number[] = [];
   * tracker.forEachActive((r) => { if (r.kickUserId !== null) userIds.push(r.kickUserId); });
   * ```
   */
  forEachActive(fn: (record: StreamerRecord) => void): void {
    for (const e of this.#byId.values()) if (e.record.isActive) fn(e.record);
  }

  /** Every record (active or not) with the believed status as `status`: a snapshot of the list. */
  records(): StreamerRecord[] {
    const out: StreamerRecord[] = [];
    for (const e of this.#byId.values()) {
      out.push({ ...e.record, status: e.belief, statusObservedAt: e.statusObservedAt });
    }
    return out;
  }

  /** One streamer's record (a copy, with the last committed status) and belief. */
  get(id: number): (StreamerRecord & { belief: StreamerStatus }) | undefined {
    const e = this.#byId.get(id);
    return e ? view(e) : undefined;
  }

  /** Counts by believed status (active streamers) plus inactive ones. */
  counts(): StatusCounts {
    const c: StatusCounts = { online: 0, offline: 0, unknown: 0, inactive: 0 };
    for (const e of this.#byId.values()) {
      if (!e.record.isActive) c.inactive++;
      else c[e.belief]++;
    }
    return c;
  }

  /** Number of streamers known (active or not). */
  get size(): number {
    return this.#byId.size;
  }
}

/**
 * A transition for streamer `streamerId` from `previousStatus`, built from an
 * observation; `status`, `livestreamId` and `inferred` override it for a
 * transition the observation implies rather than states.
 */
function transitionOf(
  streamerId: number,
  previousStatus: StreamerStatus,
  obs: Observation,
  status: "online" | "offline" = obs.status,
  livestreamId: number | undefined = obs.livestreamId,
  inferred?: string,
): Transition {
  const trusted = plausibleEventTime(obs.eventTime, obs.observedAt);
  const extra = inferred === undefined ? obs.extra : { inferred: true, inferred_because: inferred };
  return {
    streamerId,
    status,
    previousStatus,
    observedAt: obs.observedAt,
    eventTime: trusted ?? obs.observedAt,
    source: obs.source,
    event: obs.event,
    livestreamId,
    extra: trusted === undefined && obs.eventTime !== undefined
      ? { ...extra, event_time_untrusted: untrustedText(obs.eventTime) }
      : extra,
    receivedMono: inferred === undefined ? obs.receivedMono : undefined,
  };
}

function untrustedText(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

/** Kick launched in December 2022: an event time before 2022 is not Kick's. ms since epoch. */
export const KICK_EPOCH_MS = Date.UTC(2022, 0, 1);
/** How far in the future (after receipt) an event time may lie, ms (5 min of clock skew). */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;

/**
 * Kick's time for an event when it is plausible: not before
 * {@linkcode KICK_EPOCH_MS}, not more than {@linkcode MAX_FUTURE_SKEW_MS}
 * after `observedAt`. An implausible one (year 9999, 1970, 0100) is not
 * stored as `status_events.timestamp`; the receipt time is, and the
 * original goes into `details.event_time_untrusted`.
 *
 * @param eventTime ms since epoch, or undefined.
 * @param observedAt ms since epoch.
 * @returns `eventTime`, or undefined when absent or implausible.
 *
 * @example
 * ```ts
 * plausibleEventTime(Date.UTC(9999, 0, 1), Date.now()); // undefined
 * ```
 */
export function plausibleEventTime(
  eventTime: number | undefined,
  observedAt: number,
): number | undefined {
  if (eventTime === undefined || !Number.isFinite(eventTime)) return undefined;
  if (eventTime < KICK_EPOCH_MS || eventTime > observedAt + MAX_FUTURE_SKEW_MS) return undefined;
  return eventTime;
}

function view(e: Entry): StreamerRecord & { belief: StreamerStatus } {
  return { ...e.record, status: e.status, statusObservedAt: e.statusObservedAt, belief: e.belief };
}
