/**
 * Simulated Kick webhook deliveries: signs and POSTs real-shaped
 * `livestream.status.updated` v1 deliveries (docs/kick-protocol.md §4.8) with a
 * key pair of its own, so kickmon's receiver can be tested end to end.
 *
 * Headers (§4.8): `Kick-Event-Type`, `Kick-Event-Version`,
 * `Kick-Event-Message-Id` (ULID), `Kick-Event-Subscription-Id` (ULID),
 * `Kick-Event-Message-Timestamp` (RFC 3339, whole seconds, `Z`),
 * `Kick-Event-Signature` (base64 RSA PKCS#1 v1.5 + SHA-256 over
 * `{message id}.{timestamp}.{raw body}`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { World, WorldChange } from "./world.ts";

const log = getLogger(["kickmon", "simulator", "webhook"]);

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/**
 * A ULID-shaped id (26 Crockford base32 characters: 48-bit ms timestamp +
 * 80 random bits), like Kick's message and subscription ids (§4.8).
 *
 * @param nowMs Time component, ms since epoch (default `Date.now()`).
 * @example
 * ```ts
 * ulid(); // e.g. "01JQR5KV0QC94HMETWYNBWRW4Z"
 * ```
 */
export function ulid(nowMs: number = Date.now()): string {
  let t = Math.max(0, Math.floor(nowMs));
  let time = "";
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const rnd = crypto.getRandomValues(new Uint8Array(16));
  let rand = "";
  for (const b of rnd) rand += CROCKFORD[b % 32];
  return time + rand;
}

/**
 * An RFC 3339 timestamp in whole seconds with `Z`, as Kick sends in
 * `Kick-Event-Message-Timestamp` (e.g. `2025-04-01T07:56:19Z`, §4.8).
 *
 * @param ms ms since epoch.
 * @example
 * ```ts
 * rfc3339Seconds(Date.UTC(2025, 3, 1, 7, 56, 19)); // "2025-04-01T07:56:19Z"
 * ```
 */
export function rfc3339Seconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Body of a `livestream.status.updated` v1 delivery, keys in the order of the
 * real signed delivery (fixture `webhook-livestream-status-updated-1.json`).
 */
export interface LivestreamStatusUpdatedBody {
  /** The streamer (real deliveries: `is_verified` null, no `identity`). */
  readonly broadcaster: {
    readonly is_anonymous: boolean;
    readonly user_id: number;
    readonly username: string;
    readonly is_verified: boolean | null;
    readonly profile_picture: string;
    readonly channel_slug: string;
  };
  /** The new status. */
  readonly is_live: boolean;
  /** Stream title. */
  readonly title: string;
  /** RFC 3339 */
  readonly started_at: string | null;
  /** RFC 3339 */
  readonly ended_at: string | null;
}

/**
 * A delivery described explicitly instead of by a {@linkcode WorldChange}:
 * any body (an object is serialised with `JSON.stringify`; a string is sent
 * verbatim, e.g. to test malformed-but-signed payloads), and optional header
 * overrides.
 */
export interface CustomDelivery {
  /** The body: an object (JSON-serialised) or a string sent verbatim. */
  readonly body: LivestreamStatusUpdatedBody | Record<string, unknown> | string;
  /** `Kick-Event-Type` (default `livestream.status.updated`). */
  readonly type?: string;
  /** `Kick-Event-Version` (default `1`). */
  readonly version?: string;
}

/** Options of {@linkcode WebhookSender.deliver} and {@linkcode WebhookSender.build}. */
export interface DeliverOptions {
  /** `Kick-Event-Message-Id` (default: a fresh ULID). Reuse one to simulate a retry. */
  readonly messageId?: string;
  /** `Kick-Event-Message-Timestamp` as sent (default: now, RFC 3339 seconds). */
  readonly timestamp?: string;
  /** `Kick-Event-Subscription-Id` (default: a stable ULID per broadcaster). */
  readonly subscriptionId?: string;
  /** Flip one byte of the body *after* signing, so the signature no longer matches. */
  readonly tamper?: boolean;
  /** Timeout of the POST, in ms (default 5000). */
  readonly timeoutMs?: number;
}

/** A signed delivery ready to send. */
export interface BuiltDelivery {
  /** HTTP headers incl. all `Kick-Event-*` headers and `Content-Type`. */
  readonly headers: Record<string, string>;
  /** The exact bytes that are POSTed (and, unless tampered, signed). */
  readonly rawBody: Uint8Array<ArrayBuffer>;
  /** `Kick-Event-Message-Id`. */
  readonly messageId: string;
}

/** What the receiver answered. */
export interface DeliveryResult {
  /** HTTP status of the receiver's answer. */
  readonly status: number;
  /** `Kick-Event-Message-Id` that was sent. */
  readonly messageId: string;
  /** The receiver's response body (consumed). */
  readonly responseBody: string;
}

/**
 * Signs and sends simulated Kick webhook deliveries.
 *
 * @example
 * ```ts
 * const sender = await WebhookSender.create();
 * const api = startApiServer({ world, clientId: "id", clientSecret: "s", webhookPublicKeyPem: sender.publicKeyPem });
 * const s = world.add({ userId: 1, slug: "a", channelId: 11 });
 * world.setLive(s.userId, true, { publish: false });
 * await sender.deliver("http://127.0.0.1:8080/webhooks/kick", { kind: "live", streamer: s });
 * ```
 */
export class WebhookSender {
  /** SPKI PEM of the signing key (what `GET /public/v1/public-key` should serve). */
  readonly publicKeyPem: string;
  /** The public key as a WebCrypto key (RSASSA-PKCS1-v1_5, SHA-256). */
  readonly publicKey: CryptoKey;
  readonly #privateKey: CryptoKey;
  readonly #subscriptionIds = new Map<number, string>();
  readonly #lastStartedAt = new Map<number, string>();

  private constructor(keys: CryptoKeyPair, pem: string) {
    this.publicKey = keys.publicKey;
    this.#privateKey = keys.privateKey;
    this.publicKeyPem = pem;
  }

  /**
   * Generates a fresh RSA-2048 key pair (RSASSA-PKCS1-v1_5, SHA-256).
   *
   * @example
   * ```ts
   * const sender = await WebhookSender.create();
   * console.log(sender.publicKeyPem.startsWith("-----BEGIN PUBLIC KEY-----")); // true
   * ```
   */
  static async create(): Promise<WebhookSender> {
    const keys = await crypto.subtle.generateKey(
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
      true,
      ["sign", "verify"],
    );
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
    return new WebhookSender(keys, toPem(spki));
  }

  /**
   * Base64 signature over `{messageId}.{timestamp}.{rawBody}` (§4.8).
   *
   * @example
   * ```ts
   * const sig = await sender.sign("01J…", "2025-04-01T07:56:19Z", new TextEncoder().encode("{}"));
   * ```
   */
  async sign(messageId: string, timestamp: string, rawBody: Uint8Array): Promise<string> {
    const prefix = new TextEncoder().encode(`${messageId}.${timestamp}.`);
    const msg = new Uint8Array(prefix.length + rawBody.length);
    msg.set(prefix, 0);
    msg.set(rawBody, prefix.length);
    const sig = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", this.#privateKey, msg);
    return bytesToBase64(new Uint8Array(sig));
  }

  /**
   * The real-shaped body for a world change. For `offline`, `ended_at` is
   * now and `started_at` is the last start time this sender saw (Kick's
   * "Stream ended" example carries both).
   *
   * @example
   * ```ts
   * const body = sender.bodyFor({ kind: "live", streamer: world.byUserId(1)! });
   * ```
   */
  bodyFor(change: WorldChange, nowMs: number = Date.now()): LivestreamStatusUpdatedBody {
    const s = change.streamer;
    const live = change.kind === "live";
    if (live && s.startedAt) this.#lastStartedAt.set(s.userId, s.startedAt);
    const startedIso = live ? (s.startedAt ?? undefined) : this.#lastStartedAt.get(s.userId);
    // Whole seconds with `Z`, as in the real delivery ("2025-04-01T07:56:18Z").
    const startedAt = startedIso !== undefined
      ? rfc3339Seconds(Date.parse(startedIso))
      : live
      ? rfc3339Seconds(nowMs)
      : null;
    return {
      broadcaster: {
        is_anonymous: false,
        user_id: s.userId,
        username: s.slug,
        is_verified: null,
        profile_picture:
          `https://files.kick.com/images/user/${s.userId}/profile_image/conversion/sim-medium.webp`,
        channel_slug: s.slug,
      },
      is_live: live,
      title: s.title,
      started_at: startedAt,
      ended_at: live ? null : rfc3339Seconds(nowMs),
    };
  }

  /**
   * Builds and signs a delivery without sending it (e.g. to feed a
   * `Request` to a receiver directly).
   *
   * @example
   * ```ts
   * const d = await sender.build({ kind: "live", streamer: s });
   * await receiver.handle(new Request(url, { method: "POST", headers: d.headers, body: d.rawBody }));
   * ```
   */
  async build(
    change: WorldChange | CustomDelivery,
    opts: DeliverOptions = {},
  ): Promise<BuiltDelivery> {
    const now = Date.now();
    const messageId = opts.messageId ?? ulid(now);
    const timestamp = opts.timestamp ?? rfc3339Seconds(now);
    let bodyText: string;
    let type = "livestream.status.updated";
    let version = "1";
    let userId: number | undefined;
    if ("kind" in change) {
      bodyText = JSON.stringify(this.bodyFor(change, now));
      userId = change.streamer.userId;
    } else {
      bodyText = typeof change.body === "string" ? change.body : JSON.stringify(change.body);
      type = change.type ?? type;
      version = change.version ?? version;
      const b = typeof change.body === "object"
        ? (change.body as { broadcaster?: { user_id?: unknown } })
        : undefined;
      if (typeof b?.broadcaster?.user_id === "number") userId = b.broadcaster.user_id;
    }
    const rawBody = new TextEncoder().encode(bodyText);
    const signature = await this.sign(messageId, timestamp, rawBody);
    if (opts.tamper && rawBody.length > 0) rawBody[rawBody.length - 2] ^= 0x01;
    let subscriptionId = opts.subscriptionId;
    if (!subscriptionId) {
      const k = userId ?? -1;
      subscriptionId = this.#subscriptionIds.get(k) ?? ulid(now);
      this.#subscriptionIds.set(k, subscriptionId);
    }
    return {
      messageId,
      rawBody,
      headers: {
        "Content-Type": "application/json",
        "Kick-Event-Type": type,
        "Kick-Event-Version": version,
        "Kick-Event-Message-Id": messageId,
        "Kick-Event-Subscription-Id": subscriptionId,
        "Kick-Event-Message-Timestamp": timestamp,
        "Kick-Event-Signature": signature,
      },
    };
  }

  /**
   * Signs and POSTs one delivery to `targetUrl`, consuming the response.
   *
   * @throws {TypeError|DOMException} when the POST fails (network, timeout).
   * @example
   * ```ts
   * const r = await sender.deliver(url, { kind: "offline", streamer: s }, { tamper: true });
   * console.log(r.status); // 401 from kickmon's receiver
   * ```
   */
  async deliver(
    targetUrl: string | URL,
    change: WorldChange | CustomDelivery,
    opts: DeliverOptions = {},
  ): Promise<DeliveryResult> {
    const d = await this.build(change, opts);
    const res = await fetch(targetUrl, {
      method: "POST",
      headers: d.headers,
      body: d.rawBody,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
    });
    const responseBody = await res.text();
    return { status: res.status, messageId: d.messageId, responseBody };
  }

  /**
   * Delivers every published change of `world` to `targetUrl`, one after the
   * other in publication order. Returns `detach()`, which stops listening and
   * resolves when the deliveries already queued are done. Failed deliveries
   * are logged, not retried.
   *
   * @example
   * ```ts
   * const detach = sender.attach(world, "http://127.0.0.1:8080/webhooks/kick");
   * world.setLive(1, true);
   * await detach();
   * ```
   */
  attach(world: World, targetUrl: string | URL): () => Promise<void> {
    let chain: Promise<void> = Promise.resolve();
    const off = world.onChange((change) => {
      // Capture the start time now: offline changes carry startedAt = null.
      if (change.kind === "live" && change.streamer.startedAt) {
        this.#lastStartedAt.set(change.streamer.userId, change.streamer.startedAt);
      }
      const snapshot = this.bodyFor(change);
      chain = chain.then(async () => {
        try {
          const r = await this.deliver(targetUrl, { body: snapshot });
          if (r.status >= 300) {
            log.warn("webhook delivery to {url} answered {status}", {
              url: String(targetUrl),
              status: r.status,
            });
          }
        } catch (e) {
          log.warn("webhook delivery to {url} failed: {error}", {
            url: String(targetUrl),
            error: String(e),
          });
        }
      });
    });
    return async () => {
      off();
      await chain;
    };
  }
}

function bytesToBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

function toPem(spki: Uint8Array): string {
  const b64 = bytesToBase64(spki);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN PUBLIC KEY-----\n${lines.join("\n")}\n-----END PUBLIC KEY-----\n`;
}
