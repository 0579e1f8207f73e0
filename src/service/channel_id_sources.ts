/**
 * Where a streamer's Pusher channel id comes from once the database has
 * none (docs/kick-protocol.md §2, §4.5, §10.6; issue 13 item 4). In order: the database
 * (an id kickmon learned or the operator gave, `kickmon streamers
 * set-channel-id`, `db/channel_ids.ts`), Pusher payloads (the core learns
 * the id an observation carries), then the two sources here, used by the
 * reconciler:
 *
 * - v1 `GET /livestreams` for a live streamer, while it answers: when the
 *   capability record (`kick/official/capabilities.ts`) says `gone`, it is
 *   asked again only every {@linkcode GONE_REPROBE_MS}, and the live
 *   streamers left without an id are reported at WARN at most hourly, with
 *   the remedy. While it answers, an operator-provided id is held against it
 *   once per streamer and process; a contradiction is logged at WARN and the
 *   operator's id kept.
 * - the unofficial `kick.com/api/v2/channels/{slug}` behind
 *   `KICK_UNOFFICIAL_CHANNEL_LOOKUP`, retried per streamer after a failure
 *   ({@linkcode unofficialRetryDelayMs}).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { StreamerRecord } from "../core/types.ts";
import { operatorChannelIds } from "../db/channel_ids.ts";
import type { Sql } from "../db/client.ts";
import type { KickApi } from "../kick/official/api.ts";
import { KickApiError } from "../kick/official/api_error.ts";
import { LogRateLimiter } from "../log/logging.ts";
import { NotLeaderError } from "./leader_gate.ts";

const log = getLogger(["kickmon", "reconcile"]);

/**
 * How long an endpoint found `gone` (404/410) is left alone before it is
 * asked once more, ms (1 h).
 */
export const GONE_REPROBE_MS = 3600_000;

/**
 * Whether `endpoint` may be asked now: always, unless it was found `gone`
 * less than {@linkcode GONE_REPROBE_MS} ago.
 *
 * @param endpoint an endpoint label, e.g. `GET /livestreams`.
 * @param now ms since the Unix epoch.
 * @example
 * ```ts
 * if (mayAsk(api, "GET /livestreams")) await api.getLivestreams(ids);
 * ```
 */
export function mayAsk(api: KickApi, endpoint: string, now = Date.now()): boolean {
  const cap = api.capabilities.get(endpoint);
  return cap.state !== "gone" || now - (cap.checkedAt ?? 0) >= GONE_REPROBE_MS;
}

/**
 * Whether `endpoint` was last found `gone` (404/410).
 *
 * @example
 * ```ts
 * if (!isGone(api, "GET /livestreams")) console.warn("v1 /livestreams failed");
 * ```
 */
export function isGone(api: KickApi, endpoint: string): boolean {
  return api.capabilities.get(endpoint).state === "gone";
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

/** What {@linkcode ChannelIdSources} needs from the reconciler. */
export interface ChannelIdSourcesOptions {
  /** The monitor's database client (operator-provided ids). */
  readonly sql: Sql;
  /** The reconciliation interval, ms (the first unofficial retry delay). */
  readonly intervalMs: number;
  /** `KICK_UNOFFICIAL_CHANNEL_LOOKUP`. */
  readonly unofficialChannelLookup?: boolean;
  /** Records ids learned for a streamer (`writeIdentity` and a reload); never throws. */
  readonly write: (
    s: StreamerRecord,
    u: { kickUserId?: number; kickChannelId?: number },
    label: string,
  ) => Promise<void>;
  /** Logs a failure at a bounded rate. */
  readonly warn: (what: string, e: unknown) => void;
}

/**
 * The channel-id sources after the database (see the module doc).
 *
 * @example
 * ```ts
 * const sources = new ChannelIdSources(api, { sql, intervalMs: 60_000, write, warn });
 * const ids = await sources.fromLivestreams([2570626]);
 * ```
 */
export class ChannelIdSources {
  readonly #api: KickApi;
  readonly #opts: ChannelIdSourcesOptions;
  /** Per streamer: unofficial lookups failed so far, and when the next is due (ms since epoch). */
  readonly #unofficial = new Map<number, { failures: number; dueAt: number }>();
  readonly #limit = new LogRateLimiter(3, 60_000);
  /** At most one "live without a channel id" warning an hour. */
  readonly #noChannelLimit = new LogRateLimiter(1, 3600_000);
  /** Row ids whose operator-provided channel id was held against v1 `/livestreams`. */
  readonly #verified = new Set<number>();

  /**
   * @param api the client (its capability record says what answers).
   * @param opts See {@linkcode ChannelIdSourcesOptions}.
   */
  constructor(api: KickApi, opts: ChannelIdSourcesOptions) {
    this.#api = api;
    this.#opts = opts;
  }

  /**
   * Channel ids of live streamers that have none, from v1 `/livestreams`
   * while it answers (§4.5), and `verify`'s operator-provided ids held
   * against it (a contradiction is logged at WARN; the operator's id is
   * kept). When it is gone, says once an hour what is left.
   *
   * @param userIds broadcaster user ids of live streamers without a channel id.
   * @param verify live streamers whose operator-provided channel id to check ({@linkcode ChannelIdSources.toVerify}).
   * @returns broadcaster user id → channel id (for `userIds` only).
   * @example
   * ```ts
   * const ids = await sources.fromLivestreams([2570626], await sources.toVerify(liveWithId));
   * ```
   */
  async fromLivestreams(
    userIds: number[],
    verify: StreamerRecord[] = [],
  ): Promise<Map<number, number>> {
    const channelIds = new Map<number, number>();
    if (!userIds.length && !verify.length) return channelIds;
    if (mayAsk(this.#api, "GET /livestreams")) {
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
        if (!isGone(this.#api, "GET /livestreams")) this.#opts.warn("livestreams", e);
      }
    }
    const left = userIds.filter((id) => !channelIds.has(id));
    if (
      left.length && isGone(this.#api, "GET /livestreams") && this.#noChannelLimit.allow("left")
    ) {
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
   *
   * @example
   * ```ts
   * const verify = await sources.toVerify(live.filter((s) => s.kickChannelId !== null));
   * ```
   */
  async toVerify(withChannel: StreamerRecord[]): Promise<StreamerRecord[]> {
    const candidates = withChannel.filter((s) => !this.#verified.has(s.id));
    if (!candidates.length || !mayAsk(this.#api, "GET /livestreams")) return [];
    try {
      const given = await operatorChannelIds(this.#opts.sql);
      for (const s of candidates) if (given.get(s.id) !== s.kickChannelId) this.#verified.add(s.id);
      return candidates.filter((s) => given.get(s.id) === s.kickChannelId);
    } catch (e) {
      this.#opts.warn("reading operator-provided channel ids", e);
      return [];
    }
  }

  /**
   * Asks the unofficial lookup for each streamer of `noChannel` that still
   * has no channel id and whose retry is due; at most one request a call
   * while Cloudflare blocks.
   *
   * @example
   * ```ts
   * if (unofficialChannelLookup) await sources.lookUpUnofficial(withoutChannel);
   * ```
   */
  async lookUpUnofficial(noChannel: readonly StreamerRecord[]): Promise<void> {
    for (const s of noChannel) {
      if (s.kickChannelId !== null || s.username === null) continue;
      const past = this.#unofficial.get(s.id);
      if (past && Date.now() < past.dueAt) continue;
      try {
        const u = await this.#api.getUnofficialChannel(s.username);
        this.#unofficial.delete(s.id);
        await this.#opts.write(s, { kickChannelId: u.channelId, kickUserId: u.userId }, s.username);
      } catch (e) {
        if (e instanceof NotLeaderError) throw e; // stood down: the pass ends quietly
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
