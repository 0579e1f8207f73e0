/**
 * Convergence against Kick's official API, the source of truth:
 *
 * - **Reconciliation**: at start, after every Pusher reconnect, and every
 *   `MONITORING_RECONCILE_INTERVAL` seconds, fetch `stream.is_live` for every
 *   active streamer with a broadcaster user id (`GET /channels`, batches of
 *   50) and feed each answer to the core as an observation with
 *   `source = "reconcile"` and `observedAt` = when the request was sent, so a
 *   response can never undo an event received after it left.
 * - **Identity resolution**: a row with only `username` gets `kick_user_id`
 *   (`GET /channels?slug=`); a row with only `kick_user_id` gets `username`;
 *   `kick_channel_id` is learned from `GET /livestreams` the first time the
 *   streamer is live (the core writes it back), or, behind
 *   `KICK_UNOFFICIAL_CHANNEL_LOOKUP`, from `kick.com/api/v2/channels/{slug}`.
 *
 * Sources: docs/kick-protocol.md §2 (ids), §4.4–4.5 (endpoints), §6.1–6.2.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { StreamerRecord } from "../core/types.ts";
import { writeIdentity } from "../db/streamers_repo.ts";
import type { ApiChannel, KickApi } from "../kick/official/api.ts";
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
      const channels = await this.#api.getChannels({ broadcasterUserIds: [...byUser.keys()] });
      checked = channels.length;
      // Live streamers whose Pusher channel id is unknown: learn it officially.
      const needChannel = channels.filter((c) =>
        c.isLive && byUser.get(c.broadcasterUserId)?.kickChannelId === null
      ).map((c) => c.broadcasterUserId);
      const channelIds = new Map<number, number>();
      if (needChannel.length) {
        try {
          for (const l of await this.#api.getLivestreams(needChannel)) {
            channelIds.set(l.broadcasterUserId, l.channelId);
          }
        } catch (e) {
          this.#warn("livestreams", e);
        }
      }
      for (const c of channels) transitions += this.#apply(c, sentAt, channelIds) ? 1 : 0;
      const answered = new Set<number>();
      for (const c of channels) answered.add(c.broadcasterUserId);
      const missing = [...byUser.keys()].filter((id) => !answered.has(id));
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

  #apply(c: ApiChannel, sentAt: number, channelIds: Map<number, number>): boolean {
    const d = this.#monitor.observe({
      source: "reconcile",
      key: { kind: "broadcaster_user_id", userId: c.broadcasterUserId },
      status: c.isLive ? "online" : "offline",
      observedAt: sentAt,
      eventTime: c.isLive ? c.startTime ?? sentAt : sentAt,
      event: "GET /channels",
      channelId: channelIds.get(c.broadcasterUserId),
      broadcasterUserId: c.broadcasterUserId,
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
