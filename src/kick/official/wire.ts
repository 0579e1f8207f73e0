/**
 * Raw wire schemas (zod) of Kick's official API answers (docs/kick-protocol.md
 * §4.3–§4.8), kept apart from the typed results of `api.ts`. Unknown keys are
 * ignored; fields kickmon does not need are optional so that a harmless
 * change upstream is not "malformed". Each schema names the captured fixture
 * in `tests/fixtures/` it was checked against, where one exists.
 *
 * @module
 */

import { z } from "zod";

/**
 * Raw `data[]` element of `GET /channels` (§4.4, fixture `api-channels-1.json`).
 *
 * @example
 * ```ts
 * const live = ChannelWire.parse(row).stream.is_live;
 * ```
 */
export const ChannelWire = z.object({
  broadcaster_user_id: z.number().int(),
  slug: z.string(),
  stream_title: z.string().nullish(),
  stream: z.object({
    is_live: z.boolean(),
    start_time: z.string().nullish(),
  }),
});

/**
 * Raw `data[]` element of `GET /livestreams` (§4.5, fixture `api-livestreams-1.json`).
 *
 * @example
 * ```ts
 * const { channel_id } = LivestreamWire.parse(row);
 * ```
 */
export const LivestreamWire = z.object({
  broadcaster_user_id: z.number().int(),
  channel_id: z.number().int(),
  slug: z.string().nullish(),
  started_at: z.string().nullish(),
  stream_title: z.string().nullish(),
});

/**
 * Raw `data[]` element of the undocumented `GET /users/livestreams` (§10.5):
 * v2-shaped, no channel id; `id` is the livestream's UUID (not Pusher's
 * numeric livestream id). No captured fixture; shape from third-party clients.
 *
 * @example
 * ```ts
 * const userId = UserLivestreamWire.parse(row).broadcaster_user.id;
 * ```
 */
export const UserLivestreamWire = z.object({
  id: z.union([z.string(), z.number()]).nullish(),
  broadcaster_user: z.object({ id: z.number().int(), username: z.string().nullish() }),
  channel: z.object({ slug: z.string().nullish() }).nullish(),
  started_at: z.string().nullish(),
  title: z.string().nullish(),
});

/**
 * Raw `data[]` element of `GET /events/subscriptions` (§4.7).
 *
 * @example
 * ```ts
 * const subs = envelope(z.array(EventSubscriptionWire)).parse(JSON.parse(text)).data;
 * ```
 */
export const EventSubscriptionWire = z.object({
  id: z.string(),
  app_id: z.string().nullish(),
  broadcaster_user_id: z.number().int(),
  event: z.string(),
  version: z.number().int(),
  method: z.string().nullish(),
  created_at: z.string().nullish(),
  updated_at: z.string().nullish(),
});

/**
 * Raw `data[]` element of `POST /events/subscriptions` (§4.7).
 *
 * @example
 * ```ts
 * const [item] = envelope(z.array(CreatedSubscriptionWire)).parse(JSON.parse(text)).data;
 * ```
 */
export const CreatedSubscriptionWire = z.object({
  error: z.string().nullish(),
  name: z.string(),
  subscription_id: z.string().nullish(),
  version: z.number().int(),
});

/**
 * Raw `data` of `GET /public-key` (§4.8, fixture `api-public-key-1.json`).
 *
 * @example
 * ```ts
 * const pem = envelope(PublicKeyWire).parse(JSON.parse(text)).data.public_key;
 * ```
 */
export const PublicKeyWire = z.object({ public_key: z.string().includes("BEGIN PUBLIC KEY") });

/**
 * Schema of the success envelope `{"data": …, "message": …}` (§4.3) around `data`.
 *
 * @example
 * ```ts
 * envelope(z.array(ChannelWire)).parse({ data: [], message: "OK" });
 * ```
 */
export function envelope<T extends z.ZodType>(
  data: T,
): z.ZodObject<{ data: T; message: z.ZodOptional<z.ZodNullable<z.ZodString>> }> {
  return z.object({ data, message: z.string().nullish() });
}

/**
 * A list answer whose elements are validated one by one (`KickApi` skips the
 * malformed ones instead of failing the batch). `data: null` counts as empty.
 *
 * @example
 * ```ts
 * const rows = ListEnvelopeWire.parse({ data: null }).data ?? []; // []
 * ```
 */
export const ListEnvelopeWire = z.object({
  data: z.array(z.unknown()).nullable(),
  message: z.string().nullish(),
});
