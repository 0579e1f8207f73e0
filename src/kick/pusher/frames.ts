/**
 * Wire parsing for Kick's Pusher frames: turns one received Pusher event
 * (`channel`, `event`, `data`) into a typed {@linkcode FrameResult}.
 *
 * Two layers live here and stay separate:
 *
 * 1. **Wire shapes** (zod schemas and the types inferred from them):
 *    exactly what Kick sends, docs/kick-protocol.md §3.1 (`App\Events\StreamerIsLive`)
 *    and §3.2 (`App\Events\StopStreamBroadcast`, nested and older flat form).
 * 2. **Mapping** to the domain {@linkcode Observation} (`src/core/types.ts`).
 *
 * Every other event (chat, `FollowersUpdated`, `GoalProgressUpdateEvent`,
 * `pusher:*`, `pusher_internal:*`, …) is `ignored`. Nothing in this module
 * throws on bad input: anomalies come back as `malformed` with a small,
 * countable {@linkcode MalformedReason}.
 *
 * Over the ~500-line mark and kept whole on purpose: it is one concept, the
 * Pusher payloads of docs/kick-protocol.md §3, and its length is mostly the
 * JSDoc and examples of each wire shape beside its schema.
 *
 * @module
 */

import { z } from "zod";
import type { Observation } from "../../core/types.ts";

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

/**
 * Kick's "went live" event name (docs/kick-protocol.md §3.1). The PHP namespace
 * separators are single backslashes on the wire.
 *
 * @example
 * ```ts
 * import { STREAMER_IS_LIVE } from "./frames.ts";
 * console.log(STREAMER_IS_LIVE); // App\Events\StreamerIsLive
 * ```
 */
export const STREAMER_IS_LIVE = "App\\Events\\StreamerIsLive";

/**
 * Kick's "went offline" event name (docs/kick-protocol.md §3.2).
 *
 * @example
 * ```ts
 * import { STOP_STREAM_BROADCAST } from "./frames.ts";
 * console.log(STOP_STREAM_BROADCAST); // App\Events\StopStreamBroadcast
 * ```
 */
export const STOP_STREAM_BROADCAST = "App\\Events\\StopStreamBroadcast";

/**
 * Largest accepted `data` payload of a status event, in bytes (UTF-8):
 * 64 KiB. Real status payloads are ~200 bytes (§3.1/§3.2); anything larger is
 * reported as `too_large` without being parsed.
 *
 * @example
 * ```ts
 * import { MAX_DATA_BYTES } from "./frames.ts";
 * console.log(MAX_DATA_BYTES); // 65536
 * ```
 */
export const MAX_DATA_BYTES = 64 * 1024;

/**
 * Event names recognised as status events. Kick sends the `App\Events\`
 * prefix for both; the bare names are accepted too because Kick already sends
 * some other events without the prefix (§3.5, `GoalProgressUpdateEvent`) and
 * KickLib accepts both forms.
 */
const STATUS_EVENTS: ReadonlyMap<string, "live" | "stop"> = new Map([
  [STREAMER_IS_LIVE, "live"],
  ["StreamerIsLive", "live"],
  [STOP_STREAM_BROADCAST, "stop"],
  ["StopStreamBroadcast", "stop"],
]);

// ---------------------------------------------------------------------------
// Result types
// ---------------------------------------------------------------------------

/**
 * Why a status frame was rejected. A small closed set so that callers can
 * keep one counter per reason.
 *
 * - `invalid_json`: `data` is a string that is not JSON.
 * - `too_large`: `data` is over {@linkcode MAX_DATA_BYTES}.
 * - `schema`: JSON, but not the shape of §3.1/§3.2 (missing/invalid ids, wrong types, …).
 * - `channel_mismatch`: the frame's channel is not `channel.{N}` with the payload's channel id.
 * - `no_channel`: a status event without a channel name (Pusher always sends one for channel events).
 *
 * @example
 * ```ts
 * import type { MalformedReason } from "./frames.ts";
 * const counters: Record<MalformedReason, number> = {
 *   invalid_json: 0, too_large: 0, schema: 0, channel_mismatch: 0, no_channel: 0,
 * };
 * ```
 */
export type MalformedReason =
  | "invalid_json"
  | "too_large"
  | "schema"
  | "channel_mismatch"
  | "no_channel";

/**
 * Every {@linkcode MalformedReason}, e.g. to pre-create metric counters.
 *
 * @example
 * ```ts
 * import { MALFORMED_REASONS } from "./frames.ts";
 * const counters = new Map(MALFORMED_REASONS.map((r) => [r, 0]));
 * ```
 */
export const MALFORMED_REASONS: readonly MalformedReason[] = [
  "invalid_json",
  "too_large",
  "schema",
  "channel_mismatch",
  "no_channel",
];

/**
 * Outcome of {@linkcode parsePusherEvent}:
 *
 * - `observation`: a status fact for the core.
 * - `ignored`: not a status event (chat, followers, pusher internals, …); `reason` is a short,
 *   low-cardinality tag (`"not_status_event"`, `"pusher_protocol"`).
 * - `malformed`: a status event that cannot be trusted; `detail` is human-readable (≤ 300 chars).
 *
 * @example
 * ```ts
 * import { parsePusherEvent } from "./frames.ts";
 * const r = parsePusherEvent("channel.1", "App\\Events\\FollowersUpdated", "{}", Date.now());
 * if (r.kind === "ignored") console.log(r.reason); // not_status_event
 * ```
 */
export type FrameResult =
  | { readonly kind: "observation"; readonly observation: Observation }
  | { readonly kind: "ignored"; readonly reason: string }
  | { readonly kind: "malformed"; readonly reason: MalformedReason; readonly detail: string };

/**
 * A Pusher frame as it travels on the WebSocket (Pusher protocol v7, docs/kick-protocol.md §1.2/§3):
 * `{"event": "...", "data": "<JSON string>" | {...}, "channel": "..."}`.
 * App events carry `data` as a JSON **string**; `pusher:error` and client frames carry an object.
 *
 * @example
 * ```ts
 * import type { PusherFrame } from "./frames.ts";
 * const f: PusherFrame = { event: "pusher:ping", data: {} };
 * ```
 */
export interface PusherFrame {
  /** Event name, e.g. `App\Events\StreamerIsLive`, `pusher:subscribe`. */
  readonly event: string;
  /** Payload: a JSON string for app events, an object for `pusher:error` and client frames. */
  readonly data?: unknown;
  /** Channel name for channel events, e.g. `channel.2587387`. */
  readonly channel?: string;
  /** Presence channels only. */
  readonly user_id?: string;
}

// ---------------------------------------------------------------------------
// Wire schemas (docs/kick-protocol.md §3)
// ---------------------------------------------------------------------------

/**
 * A Kick numeric id: a positive safe integer. Digit strings are accepted too
 * (a 2023 capture shows a user id as a string, docs/kick-protocol.md §3.4 fixture 4, §10.2); they are
 * converted to numbers.
 */
const IdSchema = z.union([
  z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  z.string().regex(/^[1-9][0-9]{0,14}$/).transform(Number),
]);

/**
 * zod schema of the decoded `data` of `App\Events\StreamerIsLive`
 * (docs/kick-protocol.md §3.1): `{"livestream":{"id","channel_id","session_title","source","created_at"}}`.
 * Only `id` and `channel_id` are required; `created_at` is
 * `2025-09-14T16:11:18.000000Z` (UTC, microseconds) on the wire. Unknown keys are tolerated.
 *
 * @example
 * ```ts
 * import { StreamerIsLiveDataSchema } from "./frames.ts";
 * const d = StreamerIsLiveDataSchema.parse({
 *   livestream: { id: 74265904, channel_id: 2587387, session_title: "hi", source: null,
 *     created_at: "2025-09-14T16:11:18.000000Z" },
 * });
 * console.log(d.livestream.channel_id); // 2587387
 * ```
 */
export const StreamerIsLiveDataSchema: z.ZodType<StreamerIsLiveData> = z.object({
  livestream: z.object({
    id: IdSchema,
    channel_id: IdSchema,
    session_title: z.string().nullish(),
    source: z.unknown().optional(),
    created_at: z.string().nullish(),
  }),
});

/**
 * Decoded `data` of `App\Events\StreamerIsLive` (docs/kick-protocol.md §3.1), after validation
 * (ids are numbers even if they arrived as digit strings).
 *
 * @example
 * ```ts
 * import type { StreamerIsLiveData } from "./frames.ts";
 * const d: StreamerIsLiveData = { livestream: { id: 1, channel_id: 668, created_at: null } };
 * ```
 */
export interface StreamerIsLiveData {
  readonly livestream: {
    readonly id: number;
    readonly channel_id: number;
    readonly session_title?: string | null;
    readonly source?: unknown;
    /** `2025-09-14T16:11:18.000000Z` on the wire; see {@linkcode parseKickTimestamp}. */
    readonly created_at?: string | null;
  };
}

/**
 * zod schema of the decoded `data` of `App\Events\StopStreamBroadcast`
 * (docs/kick-protocol.md §3.2). Current form: `{"livestream":{"id","channel":{"id","is_banned"}}}`;
 * older flat form (kick.py, 2023): `{"livestream":{"id","channel_id","is_banned"}}`. Both are
 * accepted; at least one channel id must be present (checked by {@linkcode parsePusherEvent}).
 *
 * @example
 * ```ts
 * import { StopStreamBroadcastDataSchema } from "./frames.ts";
 * const d = StopStreamBroadcastDataSchema.parse({
 *   livestream: { id: 74265904, channel: { id: 2587387, is_banned: false } },
 * });
 * console.log(d.livestream.channel?.id); // 2587387
 * ```
 */
export const StopStreamBroadcastDataSchema: z.ZodType<StopStreamBroadcastData> = z.object({
  livestream: z.object({
    id: IdSchema,
    channel: z.object({ id: IdSchema, is_banned: z.boolean().nullish() }).optional(),
    channel_id: IdSchema.optional(),
    is_banned: z.boolean().nullish(),
  }),
});

/**
 * Decoded `data` of `App\Events\StopStreamBroadcast` (docs/kick-protocol.md §3.2), after validation:
 * `livestream.channel.id` (current form) and/or `livestream.channel_id` (older flat form).
 *
 * @example
 * ```ts
 * import type { StopStreamBroadcastData } from "./frames.ts";
 * const d: StopStreamBroadcastData = { livestream: { id: 1, channel: { id: 668, is_banned: false } } };
 * ```
 */
export interface StopStreamBroadcastData {
  readonly livestream: {
    readonly id: number;
    /** Current form (2025). */
    readonly channel?: { readonly id: number; readonly is_banned?: boolean | null };
    /** Older flat form (2023). */
    readonly channel_id?: number;
    /** Older flat form (2023). */
    readonly is_banned?: boolean | null;
  };
}

// ---------------------------------------------------------------------------
// Channel names (docs/kick-protocol.md §2)
// ---------------------------------------------------------------------------

const CHANNEL_NAME_RE = /^channel\.([1-9][0-9]{0,15})$/;

/**
 * The public Pusher channel that carries a Kick channel's live/offline events
 * (docs/kick-protocol.md §2): `channel.{channelId}`. The id is Kick's **channel id**,
 * not the broadcaster user id.
 *
 * @param channelId Kick channel id (positive safe integer).
 * @returns the channel name, e.g. `channel.2587387`.
 * @throws {RangeError} when `channelId` is not a positive safe integer.
 *
 * @example
 * ```ts
 * import { channelName } from "./frames.ts";
 * console.log(channelName(2587387)); // channel.2587387
 * ```
 */
export function channelName(channelId: number): string {
  if (!Number.isSafeInteger(channelId) || channelId <= 0) {
    throw new RangeError(`channelName: not a positive safe integer: ${String(channelId)}`);
  }
  return `channel.${channelId}`;
}

/**
 * Inverse of {@linkcode channelName}: the channel id in `channel.{N}`, or
 * `undefined` for any other name (`channel_{N}`, `chatrooms.{N}.v2`, `private-…`, junk).
 * Never throws.
 *
 * @example
 * ```ts
 * import { parseChannelName } from "./frames.ts";
 * console.log(parseChannelName("channel.668")); // 668
 * console.log(parseChannelName("channel_668")); // undefined
 * ```
 */
export function parseChannelName(name: unknown): number | undefined {
  if (typeof name !== "string") return undefined;
  const m = CHANNEL_NAME_RE.exec(name);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}

// ---------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------

const TS_RE =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:?[0-9]{2})?$/;

/**
 * Parses a Kick timestamp to ms since the Unix epoch. Accepts the Pusher
 * format `2025-09-14T16:11:18.000000Z` (UTC, up to 9 fractional digits, which
 * are truncated to ms), ISO 8601 with an offset (`+11:00`), and the
 * zone-less `2024-02-06 19:10:40` seen in `LivestreamUpdated` (§3.3),
 * which is read as UTC.
 *
 * @returns ms since epoch, or `undefined` when the string is not such a timestamp
 *   (including impossible dates like month 13). Never throws.
 *
 * @example
 * ```ts
 * import { parseKickTimestamp } from "./frames.ts";
 * console.log(parseKickTimestamp("2025-09-14T16:11:18.000000Z")); // 1757866278000
 * ```
 */
export function parseKickTimestamp(s: string): number | undefined {
  const m = TS_RE.exec(s);
  if (!m) return undefined;
  const [, ys, mos, ds, hs, mis, ss, frac, zone] = m;
  const y = Number(ys), mo = Number(mos), d = Number(ds);
  const h = Number(hs), mi = Number(mis), sec = Number(ss);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59) return undefined;
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, "0")) : 0;
  let t = Date.UTC(y, mo - 1, d, h, mi, sec, ms);
  // Reject roll-overs such as 2025-02-31.
  const check = new Date(t);
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) {
    return undefined;
  }
  if (zone && zone !== "Z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    const oh = Number(digits.slice(0, 2)), om = Number(digits.slice(2, 4));
    if (oh > 23 || om > 59) return undefined;
    t -= sign * (oh * 60 + om) * 60_000;
  }
  return Number.isFinite(t) ? t : undefined;
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

const MAX_DETAIL = 300;
const MAX_TITLE = 300;

function malformed(reason: MalformedReason, detail: string): FrameResult {
  return {
    kind: "malformed",
    reason,
    detail: detail.length > MAX_DETAIL ? detail.slice(0, MAX_DETAIL - 1) + "…" : detail,
  };
}

/** UTF-8 byte length of a string without allocating. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const c2 = s.charCodeAt(i + 1);
      if (c2 >= 0xdc00 && c2 <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** True when the string is certainly over `max` UTF-8 bytes. */
function stringTooLarge(s: string, max: number): boolean {
  if (s.length > max) return true; // ≥ 1 byte per code unit
  if (s.length * 3 <= max) return false; // ≤ 3 bytes per code unit
  return utf8Length(s) > max;
}

function describeZodError(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return "schema mismatch";
  const path = issue.path.length ? issue.path.map(String).join(".") : "(root)";
  const more = err.issues.length > 1 ? ` (+${err.issues.length - 1} more)` : "";
  return `${path}: ${issue.message}${more}`;
}

/**
 * Decodes `data` (JSON string or already-parsed value) and enforces the size limit.
 * Returns the decoded value or a malformed result.
 */
function decodeData(
  data: unknown,
): { ok: true; value: unknown } | { ok: false; result: FrameResult } {
  if (typeof data === "string") {
    if (stringTooLarge(data, MAX_DATA_BYTES)) {
      return { ok: false, result: malformed("too_large", `data is over ${MAX_DATA_BYTES} bytes`) };
    }
    try {
      return { ok: true, value: JSON.parse(data) };
    } catch (e) {
      return {
        ok: false,
        result: malformed("invalid_json", e instanceof Error ? e.message : String(e)),
      };
    }
  }
  if (data !== null && typeof data === "object") {
    // pusher-js has already parsed the string (docs/kick-protocol.md §1.3); re-measure it.
    let text: string | undefined;
    try {
      text = JSON.stringify(data);
    } catch (e) {
      return {
        ok: false,
        result: malformed(
          "schema",
          `data is not JSON-serialisable: ${e instanceof Error ? e.message : String(e)}`,
        ),
      };
    }
    if (text !== undefined && stringTooLarge(text, MAX_DATA_BYTES)) {
      return { ok: false, result: malformed("too_large", `data is over ${MAX_DATA_BYTES} bytes`) };
    }
  }
  return { ok: true, value: data };
}

// ---------------------------------------------------------------------------
// Fast path: the exact wire shape, checked without zod
// ---------------------------------------------------------------------------

/** A plain JSON object (not null, not an array). */
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** What `IdSchema` accepts as a number: a positive safe integer. */
function isNumericId(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0;
}

function isOptionalText(v: unknown): boolean {
  return v === undefined || v === null || typeof v === "string";
}

function isOptionalFlag(v: unknown): boolean {
  return v === undefined || v === null || typeof v === "boolean";
}

/**
 * The `data` of a `StreamerIsLive` exactly as Kick sends it (§3.1: numeric ids), recognised
 * without zod: what it accepts is a subset of what {@linkcode StreamerIsLiveDataSchema} accepts,
 * with the same values (the mapping reads only the fields checked here); anything else
 * (digit-string ids, a missing or bad field) goes through the schema, which also words the error.
 * Per frame this saves the schema's generic walk, the costliest step of parsing (issue 15).
 */
function plainStreamerIsLive(v: unknown): StreamerIsLiveData | undefined {
  if (!isObject(v)) return undefined;
  const ls = v.livestream;
  if (
    !isObject(ls) || !isNumericId(ls.id) || !isNumericId(ls.channel_id) ||
    !isOptionalText(ls.session_title) || !isOptionalText(ls.created_at)
  ) return undefined;
  return v as unknown as StreamerIsLiveData;
}

/**
 * The `data` of a `StopStreamBroadcast` as Kick sends it (§3.2, nested or flat form, numeric
 * ids), recognised without zod; the same contract as {@linkcode plainStreamerIsLive} towards
 * {@linkcode StopStreamBroadcastDataSchema} (`channel: null` is not `optional()`: schema).
 */
function plainStopStreamBroadcast(v: unknown): StopStreamBroadcastData | undefined {
  if (!isObject(v)) return undefined;
  const ls = v.livestream;
  if (!isObject(ls) || !isNumericId(ls.id) || !isOptionalFlag(ls.is_banned)) return undefined;
  if (ls.channel_id !== undefined && !isNumericId(ls.channel_id)) return undefined;
  const ch = ls.channel;
  if (ch !== undefined && !(isObject(ch) && isNumericId(ch.id) && isOptionalFlag(ch.is_banned))) {
    return undefined;
  }
  return v as unknown as StopStreamBroadcastData;
}

/**
 * A status payload checked against its wire shape: by the hand check when it matches it (the
 * frames Kick sends), else by the zod schema, whose error becomes a `schema` result.
 */
function checkShape<T>(
  value: unknown,
  plain: (v: unknown) => T | undefined,
  schema: z.ZodType<T>,
): { ok: true; data: T } | { ok: false; result: FrameResult } {
  const fast = plain(value);
  if (fast !== undefined) return { ok: true, data: fast };
  const parsed = schema.safeParse(value);
  return parsed.success
    ? { ok: true, data: parsed.data }
    : { ok: false, result: malformed("schema", describeZodError(parsed.error)) };
}

function checkChannel(channel: string | undefined, channelId: number): FrameResult | undefined {
  if (channel === undefined || channel === null) {
    return malformed("no_channel", `status event without a channel (payload channel ${channelId})`);
  }
  const fromName = parseChannelName(channel);
  if (fromName !== channelId) {
    return malformed(
      "channel_mismatch",
      `frame on ${JSON.stringify(String(channel).slice(0, 100))} carries channel id ${channelId}`,
    );
  }
  return undefined;
}

/**
 * Parses one Pusher event as delivered by pusher-js (or read from a raw frame)
 * into a {@linkcode FrameResult}. Never throws, whatever the input.
 *
 * - `App\Events\StreamerIsLive` (§3.1) → `observation` with `status: "online"`,
 *   `eventTime` = `created_at` (ms since epoch; omitted if absent or unparseable, in which case
 *   `extra.created_at_raw` keeps the raw string), `livestreamId`, `channelId`,
 *   `key: {kind: "channel_id"}`, `extra.session_title` (≤ 300 chars).
 * - `App\Events\StopStreamBroadcast` (§3.2, nested or flat form) → `status: "offline"`,
 *   `extra.is_banned` when the payload carries it. The payload carries no time, so no `eventTime`.
 * - Any other event → `ignored` (`pusher_protocol` for `pusher:`/`pusher_internal:` events,
 *   `not_status_event` otherwise). No parsing is done for ignored events.
 * - Status events that fail checks → `malformed` (see {@linkcode MalformedReason}); the frame's
 *   channel must be `channel.{N}` with N equal to the payload's channel id.
 *
 * @param channel Pusher channel name from the frame (`channel.{N}`), `undefined` if the frame had none.
 * @param event Pusher event name.
 * @param data `data` as a JSON string (raw frame) or already-parsed value (pusher-js parses JSON strings, §1.3).
 * @param receivedAt receive time, ms since the Unix epoch → `observedAt`.
 * @param receivedMono optional `performance.now()` at receipt (ms) → `receivedMono`.
 *
 * @example
 * ```ts
 * import { parsePusherEvent } from "./frames.ts";
 * const r = parsePusherEvent(
 *   "channel.2587387",
 *   "App\\Events\\StreamerIsLive",
 *   '{"livestream":{"id":74265904,"channel_id":2587387,"session_title":"x","source":null,"created_at":"2025-09-14T16:11:18.000000Z"}}',
 *   Date.now(),
 * );
 * if (r.kind === "observation") console.log(r.observation.status); // online
 * ```
 */
export function parsePusherEvent(
  channel: string | undefined,
  event: string,
  data: unknown,
  receivedAt: number,
  receivedMono?: number,
): FrameResult {
  const kind = typeof event === "string" ? STATUS_EVENTS.get(event) : undefined;
  if (kind === undefined) {
    if (
      typeof event === "string" &&
      (event.startsWith("pusher:") || event.startsWith("pusher_internal:"))
    ) {
      return { kind: "ignored", reason: "pusher_protocol" };
    }
    return { kind: "ignored", reason: "not_status_event" };
  }

  const decoded = decodeData(data);
  if (!decoded.ok) return decoded.result;

  if (kind === "live") {
    const live = checkShape(decoded.value, plainStreamerIsLive, StreamerIsLiveDataSchema);
    if (!live.ok) return live.result;
    const ls = live.data.livestream;
    const bad = checkChannel(channel, ls.channel_id);
    if (bad) return bad;
    const extra: Record<string, unknown> = {};
    if (typeof ls.session_title === "string") {
      extra.session_title = ls.session_title.length > MAX_TITLE
        ? ls.session_title.slice(0, MAX_TITLE)
        : ls.session_title;
    }
    const eventTime = typeof ls.created_at === "string"
      ? parseKickTimestamp(ls.created_at)
      : undefined;
    if (typeof ls.created_at === "string" && eventTime === undefined) {
      extra.created_at_raw = ls.created_at.slice(0, 64);
    }
    const observation: Observation = {
      source: "pusher",
      key: { kind: "channel_id", channelId: ls.channel_id },
      status: "online",
      observedAt: receivedAt,
      ...(eventTime !== undefined ? { eventTime } : {}),
      event,
      livestreamId: ls.id,
      channelId: ls.channel_id,
      ...(Object.keys(extra).length ? { extra } : {}),
      ...(receivedMono !== undefined ? { receivedMono } : {}),
    };
    return { kind: "observation", observation };
  }

  const stop = checkShape(decoded.value, plainStopStreamBroadcast, StopStreamBroadcastDataSchema);
  if (!stop.ok) return stop.result;
  const ls = stop.data.livestream;
  const nestedId = ls.channel?.id;
  const flatId = ls.channel_id;
  if (nestedId === undefined && flatId === undefined) {
    return malformed("schema", "livestream.channel.id: missing (and no livestream.channel_id)");
  }
  if (nestedId !== undefined && flatId !== undefined && nestedId !== flatId) {
    return malformed(
      "channel_mismatch",
      `livestream.channel.id ${nestedId} != livestream.channel_id ${flatId}`,
    );
  }
  const channelId = (nestedId ?? flatId) as number;
  const bad = checkChannel(channel, channelId);
  if (bad) return bad;
  const isBanned = ls.channel?.is_banned ?? ls.is_banned;
  const observation: Observation = {
    source: "pusher",
    key: { kind: "channel_id", channelId },
    status: "offline",
    observedAt: receivedAt,
    event,
    livestreamId: ls.id,
    channelId,
    ...(typeof isBanned === "boolean" ? { extra: { is_banned: isBanned } } : {}),
    ...(receivedMono !== undefined ? { receivedMono } : {}),
  };
  return { kind: "observation", observation };
}
