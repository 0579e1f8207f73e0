/**
 * Convergence against Kick's official API, the source of truth:
 *
 * - **Reconciliation**: at start, after every Pusher reconnect, and every
 *   `MONITORING_RECONCILE_INTERVAL` seconds, fetch `stream.is_live` for every
 *   active streamer with a broadcaster user id (`GET /channels`, batches of
 *   50) and feed each answer to the core as an observation with
 *   `source = "reconcile"` and `observedAt` = when the request was sent, so a
 *   response can never undo an event received after it left. With more than
 *   one `/channels` batch of streamers, those `/channels` has already
 *   answered for are asked through the undocumented `GET /users/livestreams`
 *   instead (100 ids a request, live rows only: half the requests), while it
 *   answers; a failure falls back to `/channels` in the same pass.
 * - **Identity resolution**: a row with only `username` gets `kick_user_id`
 *   (`GET /channels?slug=`); a row with only `kick_user_id` gets `username`.
 *   `kick_channel_id` comes, in order, from the database (including an
 *   operator-provided one, `kickmon streamers set-channel-id`), Pusher
 *   payloads (the core learns the id an observation carries), v1
 *   `GET /livestreams` the first time the streamer is live (while it
 *   answers), and, behind `KICK_UNOFFICIAL_CHANNEL_LOOKUP`,
 *   `kick.com/api/v2/channels/{slug}`.
 * - **The API move**: what an endpoint does is read from
 *   `KickApi.capabilities` (`kick/official/capabilities.ts`), never assumed.
 *   While v1 `/livestreams` is `gone` (404/410) it is not called, except
 *   once every {@linkcode GONE_REPROBE_MS} to notice its return; the same
 *   holds for `/users/livestreams`. Live streamers left without a channel id
 *   are reported at WARN at most hourly, with the remedy.
 *
 * Sources: docs/kick-protocol.md §2 (ids), §4.4–4.5 (endpoints), §6.1–6.2.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { StreamerRecord } from "../core/types.ts";
import { operatorChannelIds } from "../db/channel_ids.ts";
import { writeIdentity } from "../db/streamers_repo.ts";
import { type KickApi, MAX_IDS_PER_REQUEST } from "../kick/official/api.ts";
import { KickApiError } from "../kick/official/api_error.ts";
import { explainNotCapable } from "../config/capability.ts";
import { LogRateLimiter } from "../log/logging.ts";
import type { Monitor } from "./monitor.ts";

const log = getLogger(["kickmon", "reconcile"]);

/** Why a reconciliation pass ran. */
export type ReconcileReason = "start" | "reconnect" | "interval" | "list_changed" | "manual";

/** Options for {@linkcode Reconciler}. */
export interface ReconcilerOptions {
  /** Period between passes, ms. */
  readonly intervalMs: number;
  /** Wait after a reconnect before reconciling (coalesces several shards), ms. Default 500. */
  readonly reconnectDebounceMs?: number;
  /** Also use the unofficial kick.com/api/v2 lookup for channel ids. */
  readonly unofficialChannelLookup?: boolean;
}

/** What the last pass did (for the live view and logs). */
export interface ReconcileReport {
  readonly reason: ReconcileReason;
  readonly at: number;
  readonly checked: number;
  readonly transitions: number;
  readonly error?: string;
}

/**
 * How long an endpoint found `gone` (404/410) is left alone before it is
 * asked once more, ms (1 h).
 */
export const GONE_REPROBE_MS = 3600_000;

/** Longest wait between unofficial lookups of one streamer, ms (6 h). */
export const UNOFFICIAL_RETRY_MAX_MS = 6 * 3600_000;

/**
 * Wait before the next unofficial channel lookup of a streamer after
 * `failures` failed ones (kick.com/api/v2 sits behind Cloudflare, which blocks
 * for a while and then lets through): one reconciliation interval, doubling
 * per failure, capped at {@linkcode UNOFFICIAL_RETRY_MAX_MS}.
 *
 * @param failures failed lookups so far (≥ 1).
 * @param intervalMs the reconciliation interval, ms.
 * @returns ms.
 *
 * @example
 * ```ts
 * unofficialRetryDelayMs(3, 60_000); // 240000
 * ```
 */
export function unofficialRetryDelayMs(failures: number, intervalMs: number): number {
  return Math.min(UNOFFICIAL_RETRY_MAX_MS, intervalMs * 2 ** Math.min(30, failures - 1));
}

/**
 * Runs reconciliation and identity resolution for one monitor.
 *
 * @example
 * ```ts
 * const r = new Reconciler(monitor, api, { intervalMs: 60_000 });
 * r.start(); // the official-API plugin does this in its own start()
 * // … later:
 * await r.stop();
 * ```
 */
export class Reconciler {
  readonly name = "reconciler";
  readonly #monitor: Monitor;
  readonly #api: KickApi;
  readonly #opts: ReconcilerOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #debounce: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | null = null;
  /** Unsubscribes the monitor hooks taken in {@linkcode start}. */
  #unhook: Array<() => void> = [];
  #again: ReconcileReason | null = null;
  #stopped = false;
  #pauseUntil = 0;
  #failures = 0;
  /** Row id → the broadcaster user id a successful pass covered (a new row, or one whose id changed, triggers a pass at once). */
  #reconciled = new Map<number, number>();
  /** Per streamer: unofficial lookups failed so far, and when the next is due (ms since epoch). */
  readonly #unofficial = new Map<number, { failures: number; dueAt: number }>();
  readonly #limit = new LogRateLimiter(3, 60_000);
  /** At most one "live without a channel id" warning an hour. */
  readonly #noChannelLimit = new LogRateLimiter(1, 3600_000);
  /** Row ids whose operator-provided channel id was held against v1 `/livestreams`. */
  readonly #verified = new Set<number>();
  /** Broadcaster user ids `/channels` has answered for (known to exist). */
  readonly #confirmed = new Set<number>();
  /** The last completed pass. */
  last: ReconcileReport | null = null;
  #lastTickAt = 0;

  /**
   * When the next interval pass runs, ms since the Unix epoch (later while a
   * rate limit or Cloudflare block pauses passes); null before `start()`.
   */
  get nextPassAt(): number | null {
    if (this.#timer === undefined || this.#stopped) return null;
    return Math.max(this.#lastTickAt + this.#opts.intervalMs, this.#pauseUntil);
  }

  constructor(monitor: Monitor, api: KickApi, opts: ReconcilerOptions) {
    this.#monitor = monitor;
    this.#api = api;
    this.#opts = opts;
  }

  /** Runs the first pass and schedules the rest. */
  start(): void {
    this.#unhook.push(
      this.#monitor.onReconnect(() => {
        clearTimeout(this.#debounce);
        this.#debounce = setTimeout(
          () => this.run("reconnect"),
          this.#opts.reconnectDebounceMs ?? 500,
        );
      }),
      this.#monitor.onListChanged(() => {
        if (this.#needsPass()) this.run("list_changed");
      }),
    );
    this.#lastTickAt = Date.now();
    this.#timer = setInterval(() => {
      this.#lastTickAt = Date.now();
      this.run("interval");
    }, this.#opts.intervalMs);
    this.run("start");
  }

  stop(): Promise<void> {
    this.#stopped = true;
    for (const off of this.#unhook.splice(0)) off();
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
    return this.#running ?? Promise.resolve();
  }

  #needsPass(): boolean {
    // Runs on every list change: iterate without copying the list.
    let needed = false;
    this.#monitor.tracker.forEachActive((s) => {
      if (
        !needed &&
        (s.kickUserId === null || s.username === null ||
          this.#reconciled.get(s.id) !== s.kickUserId)
      ) {
        needed = true;
      }
    });
    return needed;
  }

  /**
   * Runs a pass now (or right after the one in flight).
   *
   * @returns a promise that settles when the pass (and any queued one) is done; never rejects.
   */
  run(reason: ReconcileReason): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running) {
      this.#again = reason;
      return this.#running;
    }
    this.#running = (async () => {
      let r: ReconcileReason | null = reason;
      while (r && !this.#stopped) {
        this.#again = null;
        await this.#pass(r);
        r = this.#again;
      }
    })().finally(() => (this.#running = null));
    return this.#running;
  }

  async #pass(reason: ReconcileReason): Promise<void> {
    const m = this.#monitor;
    if (Date.now() < this.#pauseUntil && reason === "interval") return;
    let transitions = 0;
    let checked = 0;
    try {
      await this.#resolveIdentities();
      const byUser = new Map<number, StreamerRecord>();
      m.tracker.forEachActive((s) => {
        if (s.kickUserId !== null) byUser.set(s.kickUserId, s);
      });
      if (byUser.size === 0) {
        this.#report(reason, 0, 0);
        return;
      }
      const sentAt = Date.now();
      const ids = [...byUser.keys()];
      // The batch endpoint with the largest batch that answers: /users/livestreams
      // (100 ids) beats /channels (50) only above one /channels batch, and only for
      // ids /channels has confirmed (it lists live streamers only, so it cannot
      // tell an offline streamer from an unknown id).
      const confirmed = ids.filter((id) => this.#confirmed.has(id));
      let viaUsers = ids.length > MAX_IDS_PER_REQUEST && this.#usable("GET /users/livestreams")
        ? confirmed
        : [];
      const live = new Map<number, number | undefined>(); // user id → stream start, ms
      if (viaUsers.length) {
        try {
          for (const l of await this.#api.getUsersLivestreams(viaUsers)) {
            live.set(l.broadcasterUserId, l.startedAt);
          }
        } catch (e) {
          if (e instanceof KickApiError && e.kind === "closed") throw e;
          if (!this.#gone("GET /users/livestreams")) this.#warn("users/livestreams", e);
          viaUsers = [];
          live.clear();
        }
      }
      const inUsers = new Set(viaUsers);
      const channels = await this.#api.getChannels({
        broadcasterUserIds: ids.filter((id) => !inUsers.has(id)),
      });
      checked = channels.length + viaUsers.length;
      const answers: { userId: number; isLive: boolean; startTime?: number; event: string }[] = [
        ...channels.map((c) => ({
          userId: c.broadcasterUserId,
          isLive: c.isLive,
          startTime: c.startTime,
          event: "GET /channels",
        })),
        ...viaUsers.map((id) => ({
          userId: id,
          isLive: live.has(id),
          startTime: live.get(id),
          event: "GET /users/livestreams",
        })),
      ];
      for (const c of channels) this.#confirmed.add(c.broadcasterUserId);
      const liveRows = answers.filter((a) => a.isLive).map((a) => byUser.get(a.userId)!);
      const channelIds = await this.#learnChannelIds(
        liveRows.filter((s) => s.kickChannelId === null).map((s) => s.kickUserId!),
        await this.#toVerify(liveRows.filter((s) => s.kickChannelId !== null)),
      );
      for (const a of answers) transitions += this.#apply(a, sentAt, channelIds) ? 1 : 0;
      const answered = new Set<number>();
      for (const c of channels) answered.add(c.broadcasterUserId);
      const missing = ids.filter((id) => !answered.has(id) && !inUsers.has(id));
      if (missing.length && this.#limit.allow("missing")) {
        log.warn("official API returned no channel for broadcaster user ids {ids}", {
          ids: missing.slice(0, 20),
        });
      }
      for (const s of byUser.values()) this.#reconciled.set(s.id, s.kickUserId!);
      this.#failures = 0;
      m.metrics.reconciliations.inc({ outcome: "ok" });
      this.#report(reason, checked, transitions);
    } catch (e) {
      m.metrics.reconciliations.inc({ outcome: "error" });
      this.#failures++;
      if (e instanceof KickApiError && e.retryAfterMs) {
        // Back off exponentially (2 s, 4 s, … ) up to the client's hint
        // (Retry-After, or ~5 min for a Cloudflare block): one block should
        // not silence reconciliation for minutes, a persistent one should.
        const pause = Math.min(e.retryAfterMs, 2000 * 2 ** (this.#failures - 1));
        this.#pauseUntil = Date.now() + pause;
      }
      this.#warn(`reconcile (${reason})`, e);
      this.#report(reason, checked, transitions, e);
    }
  }

  /**
   * Whether an endpoint may be asked now: always, unless it was found `gone`
   * less than {@linkcode GONE_REPROBE_MS} ago.
   */
  #usable(endpoint: string): boolean {
    const cap = this.#api.capabilities.get(endpoint);
    return cap.state !== "gone" || Date.now() - (cap.checkedAt ?? 0) >= GONE_REPROBE_MS;
  }

  #gone(endpoint: string): boolean {
    return this.#api.capabilities.get(endpoint).state === "gone";
  }

  /**
   * Channel ids of live streamers that have none, from v1 `/livestreams`
   * while it answers (§4.5). When it is gone, says once an hour what is left.
   *
   * @returns broadcaster user id → channel id.
   */
  async #learnChannelIds(
    userIds: number[],
    verify: StreamerRecord[] = [],
  ): Promise<Map<number, number>> {
    const channelIds = new Map<number, number>();
    if (!userIds.length && !verify.length) return channelIds;
    if (this.#usable("GET /livestreams")) {
      try {
        const ask = [...userIds, ...verify.map((s) => s.kickUserId!)];
        const given = new Map(verify.map((s) => [s.kickUserId!, s]));
        for (const l of await this.#api.getLivestreams(ask)) {
          const s = given.get(l.broadcasterUserId);
          if (!s) {
            channelIds.set(l.broadcasterUserId, l.channelId);
            continue;
          }
          this.#verified.add(s.id);
          if (l.channelId !== s.kickChannelId) {
            log.warn(
              "the operator-provided channel id {given} of streamer {username} (id {id}) " +
                "disagrees with v1 /livestreams ({reported}); kept {given}: correct it with " +
                "'kickmon streamers set-channel-id {username} {reported}' if Kick is right",
              { given: s.kickChannelId, reported: l.channelId, username: s.username, id: s.id },
            );
          }
        }
      } catch (e) {
        // A 404/410 is logged once by the capability record, not per pass.
        if (!this.#gone("GET /livestreams")) this.#warn("livestreams", e);
      }
    }
    const left = userIds.filter((id) => !channelIds.has(id));
    if (left.length && this.#gone("GET /livestreams") && this.#noChannelLimit.allow("left")) {
      log.warn(
        "{count} live streamers have no Pusher channel id and v1 /livestreams is gone " +
          "(user ids {ids}): they are watched by reconciliation only; {remedy}",
        {
          count: left.length,
          ids: left.slice(0, 20),
          remedy: this.#opts.unofficialChannelLookup
            ? "the unofficial lookup keeps trying, or set one with " +
              "'kickmon streamers set-channel-id <username> <channel_id>'"
            : "set one with 'kickmon streamers set-channel-id <username> <channel_id>' " +
              "or enable KICK_UNOFFICIAL_CHANNEL_LOOKUP=true",
        },
      );
    }
    return channelIds;
  }

  /**
   * The live streamers whose channel id the operator gave and v1
   * `/livestreams` has not been asked about yet (once per streamer and
   * process, only while v1 answers).
   */
  async #toVerify(withChannel: StreamerRecord[]): Promise<StreamerRecord[]> {
    const candidates = withChannel.filter((s) => !this.#verified.has(s.id));
    if (!candidates.length || !this.#usable("GET /livestreams")) return [];
    try {
      const given = await operatorChannelIds(this.#monitor.sql);
      for (const s of candidates) if (given.get(s.id) !== s.kickChannelId) this.#verified.add(s.id);
      return candidates.filter((s) => given.get(s.id) === s.kickChannelId);
    } catch (e) {
      this.#warn("reading operator-provided channel ids", e);
      return [];
    }
  }

  #apply(
    a: { userId: number; isLive: boolean; startTime?: number; event: string },
    sentAt: number,
    channelIds: Map<number, number>,
  ): boolean {
    const d = this.#monitor.observe({
      source: "reconcile",
      key: { kind: "broadcaster_user_id", userId: a.userId },
      status: a.isLive ? "online" : "offline",
      observedAt: sentAt,
      eventTime: a.isLive ? a.startTime ?? sentAt : sentAt,
      event: a.event,
      channelId: channelIds.get(a.userId),
      broadcasterUserId: a.userId,
      receivedMono: performance.now(),
    });
    return d.kind === "transition";
  }

  async #resolveIdentities(): Promise<void> {
    const m = this.#monitor;
    const bySlug: StreamerRecord[] = [];
    const byId: StreamerRecord[] = [];
    const noChannel: StreamerRecord[] = [];
    m.tracker.forEachActive((s) => {
      if (s.kickUserId === null && s.username !== null) bySlug.push(s);
      if (s.username === null && s.kickUserId !== null) byId.push(s);
      if (s.kickChannelId === null) noChannel.push(s);
    });
    if (bySlug.length) {
      const found = await this.#api.getChannels({ slugs: bySlug.map((s) => s.username!) });
      const map = new Map(found.map((c) => [c.slug.toLowerCase(), c]));
      for (const s of bySlug) {
        const c = map.get(s.username!.toLowerCase());
        await this.#write(
          s,
          c
            ? { kickUserId: c.broadcasterUserId, resolveError: null }
            : { resolveError: `no Kick channel with slug '${s.username}'` },
          s.username!,
        );
      }
    }
    if (byId.length) {
      const found = await this.#api.getChannels({
        broadcasterUserIds: byId.map((s) => s.kickUserId!),
      });
      const map = new Map(found.map((c) => [c.broadcasterUserId, c]));
      for (const s of byId) {
        const c = map.get(s.kickUserId!);
        await this.#write(
          s,
          c
            ? { username: c.slug, resolveError: null }
            : { resolveError: `no Kick channel for broadcaster user id ${s.kickUserId}` },
          String(
            s.kickUserId,
          ),
        );
      }
    }
    if (this.#opts.unofficialChannelLookup) {
      for (const s of noChannel) {
        if (s.kickChannelId !== null || s.username === null) continue;
        const past = this.#unofficial.get(s.id);
        if (past && Date.now() < past.dueAt) continue;
        try {
          const u = await this.#api.getUnofficialChannel(s.username);
          this.#unofficial.delete(s.id);
          await this.#write(s, { kickChannelId: u.channelId, kickUserId: u.userId }, s.username);
        } catch (e) {
          const failures = (past?.failures ?? 0) + 1;
          const delayMs = unofficialRetryDelayMs(failures, this.#opts.intervalMs);
          this.#unofficial.set(s.id, { failures, dueAt: Date.now() + delayMs });
          const kind = e instanceof KickApiError ? e.kind : "error";
          if (this.#limit.allow(`unofficial:${kind}`)) {
            log.warn(
              "unofficial lookup of {username} failed (attempt {failures}, next in {next} s): {error}",
              {
                username: s.username,
                failures,
                next: Math.round(delayMs / 1000),
                error: e instanceof Error ? e.message : String(e),
                kind,
              },
            );
          }
          // Blocked by Cloudflare: the others would be too. At most one request per pass.
          if (kind === "blocked") break;
        }
      }
    }
  }

  async #write(
    s: StreamerRecord,
    u: {
      kickUserId?: number;
      username?: string;
      kickChannelId?: number;
      resolveError?: string | null;
    },
    label: string,
  ): Promise<void> {
    try {
      const id = s.id;
      const changed = await writeIdentity(this.#monitor.sql, {
        streamerId: id,
        listed: s.listed,
        ...u,
      });
      if (changed) {
        // Learned ids live in kickmon's schema, which no list trigger or poll watches.
        this.#monitor.refreshStreamer(id);
        if (u.resolveError) {
          log.warn("streamer {label} (id {id}) cannot be resolved: {why}", {
            label,
            id,
            why: u.resolveError,
          });
        } else {
          log.info("resolved streamer {label} (id {id}): {ids}", { label, id, ids: u });
        }
      }
    } catch (e) {
      log.warn("writing resolved ids for streamer {id} failed: {error}", {
        id: s.id,
        error: String(e),
      });
    }
  }

  #warn(what: string, e: unknown): void {
    const kind = e instanceof KickApiError ? e.kind : "error";
    if (!this.#limit.allow(`${what}:${kind}`)) return;
    const hint = kind === "blocked"
      ? " (Cloudflare blocked the request; backing off)"
      : kind === "rate_limited"
      ? " (rate limited; backing off)"
      : "";
    log.warn("{what} failed: {error}{hint}", {
      what,
      error: explainNotCapable(e, this.#monitor.config) ??
        (e instanceof Error ? e.message : String(e)),
      hint,
      kind,
    });
  }

  #report(reason: ReconcileReason, checked: number, transitions: number, e?: unknown): void {
    this.last = {
      reason,
      at: Date.now(),
      checked,
      transitions,
      error: e ? (e instanceof Error ? e.message : String(e)) : undefined,
    };
    if (!e && (transitions > 0 || reason !== "interval")) {
      log.info("reconciled ({reason}): {checked} checked, {transitions} corrected", {
        reason,
        checked,
        transitions,
      });
    }
  }
}
