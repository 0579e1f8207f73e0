/**
 * The `livestream.status.updated` v1 webhook body (docs/kick-protocol.md §4.8):
 * its wire schema and its reading into an {@linkcode Observation}.
 *
 * @module
 */

import { z } from "zod";
import type { Observation } from "../../core/types.ts";

/** The event type this module turns into observations (§4.8). */
export const LIVESTREAM_STATUS_UPDATED = "livestream.status.updated";

/**
 * Raw wire schema of a `livestream.status.updated` v1 body (§4.8). Real
 * deliveries have `is_verified: null` and no `identity`; docs show booleans
 * and `identity: null` — both accepted; unknown keys ignored.
 *
 * @example
 * ```ts
 * const live = LivestreamStatusUpdatedWire.parse(JSON.parse(rawBody)).is_live;
 * ```
 */
export const LivestreamStatusUpdatedWire = z.object({
  broadcaster: z.object({
    user_id: z.number().int().positive(),
    channel_slug: z.string().nullish(),
    username: z.string().nullish(),
    is_anonymous: z.boolean().nullish(),
    is_verified: z.boolean().nullish(),
    profile_picture: z.string().nullish(),
  }),
  is_live: z.boolean(),
  title: z.string().nullish(),
  started_at: z.string().nullish(),
  ended_at: z.string().nullish(),
});

/** The typed wire body. */
export type LivestreamStatusUpdatedPayload = z.infer<typeof LivestreamStatusUpdatedWire>;

/**
 * A webhook body that is not a valid `livestream.status.updated` payload.
 *
 * @example
 * ```ts
 * try { parseLivestreamStatusUpdated({}); } catch (e) { console.log((e as WebhookPayloadError).issuePath); } // "broadcaster"
 * ```
 */
export class WebhookPayloadError extends Error {
  /** zod issue path, e.g. `broadcaster.user_id`. */
  readonly issuePath: string;
  /**
   * Creates a payload validation error.
   *
   * @param message Description.
   * @param issuePath zod issue path (dot-joined).
   * @param options `cause`: the `ZodError`.
   */
  constructor(message: string, issuePath: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WebhookPayloadError";
    this.issuePath = issuePath;
  }
}

/** Delivery facts that are not in the body (headers, receive times). */
export interface WebhookMeta {
  /** `Kick-Event-Message-Id`, kept in `extra.message_id`. */
  readonly messageId?: string;
  /** `Kick-Event-Subscription-Id`, kept in `extra.subscription_id`. */
  readonly subscriptionId?: string;
  /** `Kick-Event-Message-Timestamp` in ms since epoch; fallback `eventTime` when the body has none. */
  readonly messageTimestamp?: number;
  /** When the delivery arrived, ms since epoch (default `Date.now()`). */
  readonly observedAt?: number;
  /** `performance.now()` at receipt, ms. */
  readonly receivedMono?: number;
}

/**
 * Turns a `livestream.status.updated` v1 body (already JSON-parsed) into an
 * {@linkcode Observation}: source `webhook`, key `broadcaster_user_id`,
 * status from `is_live`, `eventTime` (ms since epoch) from `started_at` when
 * live / `ended_at` when offline (else the message timestamp), `extra` with
 * `message_id` and `channel_slug`.
 *
 * @throws {WebhookPayloadError} when the body does not match the schema (with the zod issue path).
 * @example
 * ```ts
 * const obs = parseLivestreamStatusUpdated(JSON.parse(raw), { messageId: "01JQR5KV0QC94HMETWYNBWRW4Z" });
 * console.log(obs.status, obs.broadcasterUserId); // "online" 4809577
 * ```
 */
export function parseLivestreamStatusUpdated(body: unknown, meta: WebhookMeta = {}): Observation {
  const r = LivestreamStatusUpdatedWire.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = issue?.path.map(String).join(".") || "(root)";
    throw new WebhookPayloadError(
      `${LIVESTREAM_STATUS_UPDATED} payload failed validation at ${path}: ${
        issue?.message ?? "invalid"
      }`,
      path,
      { cause: r.error },
    );
  }
  const p = r.data;
  const when = parseWebhookTime(p.is_live ? p.started_at : p.ended_at) ?? meta.messageTimestamp;
  const extra: Record<string, unknown> = {};
  if (meta.messageId) extra.message_id = meta.messageId;
  if (p.broadcaster.channel_slug) extra.channel_slug = p.broadcaster.channel_slug;
  if (meta.subscriptionId) extra.subscription_id = meta.subscriptionId;
  return {
    source: "webhook",
    key: { kind: "broadcaster_user_id", userId: p.broadcaster.user_id },
    status: p.is_live ? "online" : "offline",
    observedAt: meta.observedAt ?? Date.now(),
    ...(when !== undefined ? { eventTime: when } : {}),
    event: LIVESTREAM_STATUS_UPDATED,
    broadcasterUserId: p.broadcaster.user_id,
    extra,
    ...(meta.receivedMono !== undefined ? { receivedMono: meta.receivedMono } : {}),
  };
}

/**
 * An RFC 3339 time (a body's `started_at`/`ended_at`, the
 * `Kick-Event-Message-Timestamp` header) in ms since the Unix epoch.
 *
 * @param v The text, or nothing.
 * @returns ms since the epoch, or `undefined` when absent or unparseable.
 * @example
 * ```ts
 * parseWebhookTime("2025-03-30T21:32:11Z"); // 1743370331000
 * parseWebhookTime("soon"); // undefined
 * ```
 */
export function parseWebhookTime(v: string | null | undefined): number | undefined {
  if (!v) return undefined;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : ms;
}
