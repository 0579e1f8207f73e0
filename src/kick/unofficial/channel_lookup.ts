/**
 * The unofficial, Cloudflare-fronted `kick.com/api/v2/channels/{slug}`
 * (docs/kick-protocol.md §2, §5): the only place that gives the Pusher channel id
 * of a streamer who is offline. Kick does not support it and Cloudflare may
 * block it at any time, so kickmon asks it only with
 * `KICK_UNOFFICIAL_CHANNEL_LOOKUP=true` and expects `blocked`.
 *
 * It goes through the official client's request loop (`official/request.ts`:
 * timeout, 4 MiB cap, `onRequest`, Cloudflare detection, `KickApiError`
 * kinds) without a token and outside the official API's request budget.
 *
 * @module
 */

import { z } from "zod";
import type { ApiRequester } from "../official/request.ts";

/** Default base URL of the unofficial API. */
export const DEFAULT_UNOFFICIAL_API_URL = "https://kick.com/api/v2";

/**
 * Raw `kick.com/api/v2/channels/{slug}` (no full capture exists; §8 — only these keys are relied on).
 *
 * @example
 * ```ts
 * UnofficialChannelWire.parse({ id: 668, user_id: 676, slug: "xqc", followers_count: 1 }).id; // 668
 * ```
 */
export const UnofficialChannelWire = z.object({
  id: z.number().int(),
  user_id: z.number().int(),
  slug: z.string(),
});

/** The useful part of `kick.com/api/v2/channels/{slug}`. */
export interface UnofficialChannel {
  /** The Pusher channel id (`id`, §2). */
  readonly channelId: number;
  /** The broadcaster user id (`user_id`). */
  readonly userId: number;
  /** Channel slug. */
  readonly slug: string;
}

/**
 * Looks up channels on the unofficial API.
 *
 * @example
 * ```ts
 * const lookup = new UnofficialChannelLookup(requester, "https://kick.com/api/v2");
 * const { channelId } = await lookup.getChannel("bossmanjack");
 * ```
 */
export class UnofficialChannelLookup {
  readonly #requester: ApiRequester;
  readonly #base: string;

  /**
   * Creates a lookup; no request is made until {@linkcode UnofficialChannelLookup.getChannel}.
   *
   * @param requester The API client's request loop (shared timeout, hooks, close).
   * @param baseUrl e.g. `https://kick.com/api/v2` (the default).
   * @throws {TypeError} when `baseUrl` is not an absolute URL.
   */
  constructor(requester: ApiRequester, baseUrl: string = DEFAULT_UNOFFICIAL_API_URL) {
    this.#requester = requester;
    this.#base = new URL(baseUrl).href.replace(/\/+$/, "");
  }

  /**
   * `GET {baseUrl}/channels/{slug}` without auth (§2): the only
   * place that gives a channel id for an offline streamer. It sits behind
   * Cloudflare and is unsupported by Kick (§5), so expect `blocked`.
   * Not counted against the official API budget.
   *
   * @param slug Channel slug (URL-encoded here).
   * @returns The channel id, user id and slug.
   * @throws {KickApiError} `blocked` (403 JSON or an HTML "Just a moment..."
   *   page; `retryAfterMs` is a back-off hint), `not_found` for an unknown
   *   slug, `malformed`, `timeout`, `network`, …
   * @example
   * ```ts
   * const { channelId } = await lookup.getChannel("bossmanjack");
   * ```
   */
  async getChannel(slug: string): Promise<UnofficialChannel> {
    const body = await this.#requester.request({
      method: "GET",
      url: new URL(`${this.#base}/channels/${encodeURIComponent(slug)}`),
      endpoint: "GET unofficial /channels/{slug}",
      auth: false,
      budget: false,
      schema: UnofficialChannelWire,
    });
    return { channelId: body.id, userId: body.user_id, slug: body.slug };
  }
}
