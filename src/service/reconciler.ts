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
 *   once every `GONE_REPROBE_MS` to notice its return; the same holds for
 *   `/users/livestreams`. The channel-id sources after the database are
 *   `channel_id_sources.ts`.
 *
 * Sources: docs/kick-protocol.md §2 (ids), §4.4–4.5 (endpoints), §6.1–6.2.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { StreamerRecord } from "../core/types.ts";
import { writeIdentity } from "../db/streamers_repo.ts";
import { type KickApi, MAX_IDS_PER_REQUEST } from "../kick/official/api.ts";
import { KickApiError } from "../kick/official/api_error.ts";
import { explainNotCapable } from "../config/capability.ts";
import { LogRateLimiter } from "../log/logging.ts";
import { ChannelIdSources, isGone, mayAsk } from "./channel_id_sources.ts";
import { NotLeaderError } from "./leader_gate.ts";
import type { Monitor } from "./monitor.ts";

const log = getLogger(["kickmon", "reconcile"]);

/** Why a reconciliation pass ran (`leader`: this instance just took over, issue 14). */
export type ReconcileReason =
  | "start"
  | "reconnect"
  | "interval"
  | "list_changed"
  | "manual"
  | "leader";

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
  /** When the pass ended, ms since the Unix epoch. */
  readonly at: number;
  /** Streamers the official API answered for. */
  readonly checked: number;
  /** Active streamers with a broadcaster user id the pass asked about. */
  readonly wanted: number;
  /** Transitions written. */
  readonly transitions: number;
  /** How long the pass took, ms. */
  readonly durationMs: number;
  readonly error?: string;
}

export {
  GONE_REPROBE_MS,
  UNOFFICIAL_RETRY_MAX_MS,
  unofficialRetryDelayMs,
} from "./channel_id_sources.ts";

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
  readonly #limit = new LogRateLimiter(3, 60_000);
  /** Where channel ids come from after the database: v1 `/livestreams`, the unofficial lookup. */
  readonly #sources: ChannelIdSources;
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
    this.#sources = new ChannelIdSources(api, {
      sql: monitor.sql,
      intervalMs: opts.intervalMs,
      unofficialChannelLookup: opts.unofficialChannelLookup,
      write: (s, u, label) => this.#write(s, u, label),
      warn: (what, e) => this.#warn(what, e),
    });
  }

  /**
   * Runs the first pass and schedules the rest.
   *
   * @param reason why the first pass runs (`leader` after a takeover).
   */
  start(reason: ReconcileReason = "start"): void {
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
    this.run(reason);
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
    let wanted = 0;
    const t0 = performance.now();
    const report = (e?: unknown) =>
      this.#report({ reason, checked, wanted, transitions, durationMs: performance.now() - t0 }, e);
    try {
      await this.#resolveIdentities();
      const byUser = new Map<number, StreamerRecord>();
      m.tracker.forEachActive((s) => {
        if (s.kickUserId !== null) byUser.set(s.kickUserId, s);
      });
      wanted = byUser.size;
      if (byUser.size === 0) {
        report();
        return;
      }
      const sentAt = Date.now();
      const ids = [...byUser.keys()];
      // The batch endpoint with the largest batch that answers: /users/livestreams
      // (100 ids) beats /channels (50) only above one /channels batch, and only for
      // ids /channels has confirmed (it lists live streamers only, so it cannot
      // tell an offline streamer from an unknown id).
      const confirmed = ids.filter((id) => this.#confirmed.has(id));
      let viaUsers = ids.length > MAX_IDS_PER_REQUEST && mayAsk(this.#api, "GET /users/livestreams")
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
          if (!isGone(this.#api, "GET /users/livestreams")) this.#warn("users/livestreams", e);
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
      const channelIds = await this.#sources.fromLivestreams(
        liveRows.filter((s) => s.kickChannelId === null).map((s) => s.kickUserId!),
        await this.#sources.toVerify(liveRows.filter((s) => s.kickChannelId !== null)),
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
      report();
    } catch (e) {
      if (this.#stopped) {
        // Shutting down: the closed client ended the pass; nothing failed.
        log.debug("reconcile ({reason}) ended by shutdown", { reason });
        return;
      }
      // Stood down during the pass (the API is leaderOnly): the new leader reconciles.
      if (e instanceof NotLeaderError) return;
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
      report(e);
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
    if (this.#opts.unofficialChannelLookup) await this.#sources.lookUpUnofficial(noChannel);
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
    if (e instanceof NotLeaderError) return;
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

  /**
   * Records a pass: `last`, the duration histogram and coverage gauge, the
   * `reconciled (…)` line (with its duration), and a warning when the pass took
   * longer than the interval, so a list too large for the request budget is
   * never slow in silence.
   */
  #report(r: Omit<ReconcileReport, "at" | "error">, e?: unknown): void {
    const m = this.#monitor.metrics;
    const seconds = Math.round(r.durationMs / 100) / 10;
    this.last = {
      ...r,
      at: Date.now(),
      error: e ? (e instanceof Error ? e.message : String(e)) : undefined,
    };
    m.reconcilePassSeconds.observe({ reason: r.reason }, r.durationMs / 1000);
    if (e) return;
    m.reconcileCoverage.set(r.wanted ? r.checked / r.wanted : 1);
    if (r.transitions > 0 || r.reason !== "interval") {
      log.info("reconciled ({reason}): {checked} checked, {transitions} corrected in {seconds} s", {
        reason: r.reason,
        checked: r.checked,
        wanted: r.wanted,
        transitions: r.transitions,
        seconds,
      });
    }
    if (r.durationMs > this.#opts.intervalMs) {
      m.reconcileOverruns.inc();
      if (this.#limit.allow("overrun")) {
        log.warn(
          "reconciliation pass ({reason}) over {wanted} streamers took {seconds} s, longer than " +
            "MONITORING_RECONCILE_INTERVAL ({interval} s): passes now run back to back and a " +
            "streamer without a channel id can wait two passes to be seen live; the request " +
            "budget sets this (KICK_API_MAX_REQUESTS_PER_MINUTE)",
          {
            reason: r.reason,
            wanted: r.wanted,
            seconds,
            interval: this.#opts.intervalMs / 1000,
          },
        );
      }
    }
  }
}
