/**
 * Receiving Kick's official webhooks (docs/kick-protocol.md §4.8): the HTTP
 * handler for `POST /webhooks/kick` (checks, answers, de-duplication, the
 * public key's loading and rotation). The signature is `webhook_signature.ts`,
 * the payload `webhook_payload.ts`; the listening socket is
 * `src/http/webhook_listener.ts`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Observation } from "../../core/types.ts";
import { LogRateLimiter } from "../../log/logging.ts";
import { readBodyCapped } from "../http/body.ts";
import { errorText } from "../http/text.ts";
import {
  LIVESTREAM_STATUS_UPDATED,
  parseLivestreamStatusUpdated,
  parseWebhookTime,
} from "./webhook_payload.ts";
import {
  importKickPublicKey,
  type KickSignatureInput,
  verifyKickSignature,
} from "./webhook_signature.ts";

const log = getLogger(["kickmon", "webhook"]);

/** Default path of {@linkcode WebhookReceiver}. */
export const DEFAULT_WEBHOOK_PATH = "/webhooks/kick";

/** Where the receiver gets Kick's public key when no PEM is configured (a `KickApi`). */
export interface PublicKeySource {
  /** Returns the SPKI PEM (`GET /public/v1/public-key`). */
  getPublicKey(): Promise<string>;
}

/**
 * What happened to one request. `accepted`, `duplicate`, `ignored_*` are
 * answered 2xx; the others are rejections.
 */
export type WebhookOutcome =
  | "accepted"
  | "duplicate"
  | "ignored_type"
  | "ignored_version"
  | "not_found"
  | "method_not_allowed"
  | "missing_headers"
  | "too_large"
  | "bad_timestamp"
  | "stale_timestamp"
  | "bad_signature"
  | "key_unavailable"
  | "malformed_body"
  | "handler_error";

/** Counters of {@linkcode WebhookReceiver.stats}. */
export interface WebhookStats {
  /** Deliveries handed to `onObservation`. */
  readonly accepted: number;
  /** Replays of an already accepted message id (answered 200, not delivered). */
  readonly duplicate: number;
  /** Authenticated deliveries of other event types/versions (answered 204). */
  readonly ignored: Readonly<Partial<Record<WebhookOutcome, number>>>;
  /** Rejections by reason. */
  readonly rejected: Readonly<Partial<Record<WebhookOutcome, number>>>;
}

/** Options of {@linkcode WebhookReceiver}. */
export interface WebhookReceiverOptions {
  /**
   * Gets each accepted observation. Called synchronously before the 200 is
   * sent but never awaited: do not block in it (enqueue for the database).
   * A synchronous throw answers 500 (Kick may retry); a rejected promise is
   * only logged.
   */
  readonly onObservation: (obs: Observation) => void | Promise<void>;
  /** Kick's public key PEM (override; e.g. from the docs). Takes precedence over `keySource`. */
  readonly publicKeyPem?: string;
  /** Fetches the PEM when no override is set (e.g. a `KickApi`). One of the two is required. */
  readonly keySource?: PublicKeySource;
  /** Request path (default `/webhooks/kick`); other paths get 404. `null` accepts any path. */
  readonly path?: string | null;
  /** Largest accepted body, in bytes (default 65 536); larger → 413. */
  readonly maxBodyBytes?: number;
  /** Allowed distance of `Kick-Event-Message-Timestamp` from now, in ms (default 300 000 = 5 min). */
  readonly maxSkewMs?: number;
  /** How long a message id is remembered, in ms (default 2 × maxSkewMs + 60 000). */
  readonly dedupeTtlMs?: number;
  /** Most message ids remembered (default 10 000; oldest evicted first). */
  readonly dedupeMaxEntries?: number;
  /** After a verification failure, refetch the key from `keySource` at most this often, in ms (default 300 000). */
  readonly keyRefetchIntervalMs?: number;
  /** After a failed key fetch, wait this long before trying again, in ms (default 10 000). */
  readonly keyRetryMs?: number;
  /** Clock in ms since epoch (default `Date.now`); inject to verify old captured deliveries. */
  readonly now?: () => number;
  /** Called once per request with its outcome (for Prometheus counters). */
  readonly onOutcome?: (outcome: WebhookOutcome) => void;
  /**
   * Durable de-duplication beyond this process's memory (e.g. a table shared
   * by every instance): resolves true the first time a message id is seen.
   * A rejection (database away) lets the delivery through: the writer's
   * guards make a duplicate write nothing.
   */
  readonly claim?: (messageId: string) => Promise<boolean>;
}

const REQUIRED_HEADERS = [
  "Kick-Event-Message-Id",
  "Kick-Event-Message-Timestamp",
  "Kick-Event-Signature",
  "Kick-Event-Type",
] as const;

const IGNORED: ReadonlySet<WebhookOutcome> = new Set(["ignored_type", "ignored_version"]);

/**
 * Log lines about rejected requests allowed per outcome (and per kind of
 * error) per minute: the webhook port faces the internet, and anyone can send
 * it garbage. The counters ({@linkcode WebhookReceiverOptions.onOutcome},
 * `stats()`) still count every request.
 */
const REJECT_LOG_PER_MINUTE = 5;

/**
 * HTTP handler for Kick webhook deliveries (§4.8), for `Deno.serve`.
 *
 * Checks, in order, with the answer for each failure:
 * 1. path (404) and method `POST` (405);
 * 2. headers `Kick-Event-Message-Id`, `-Message-Timestamp`, `-Signature`, `-Type` present (400);
 * 3. body ≤ `maxBodyBytes` (413);
 * 4. timestamp parseable as RFC 3339 (400) and within ±`maxSkewMs` of now
 *    (**401**: a stale or future timestamp is treated as failed
 *    authentication, since it is what stops replays of captured deliveries);
 * 5. signature valid (401; the key is refetched once, rate-limited, on a
 *    mismatch; key unavailable → 503 so Kick retries);
 * 6. event type `livestream.status.updated` v1, else 204 (ignored, after authentication);
 * 7. message id not seen recently, else 200 without delivering again;
 * 8. body valid (400), then `onObservation(obs)` and 200.
 *
 * @example
 * ```ts
 * const receiver = new WebhookReceiver({
 *   keySource: api, // KickApi: GET /public-key
 *   onObservation: (obs) => queue.push(obs),
 * });
 * Deno.serve({ port: 8080 }, receiver.handler);
 * ```
 */
export class WebhookReceiver {
  /** `receiver.handle` bound to the instance; pass it to `Deno.serve`. */
  readonly handler: (req: Request) => Promise<Response>;
  readonly #onObservation: WebhookReceiverOptions["onObservation"];
  readonly #onOutcome?: WebhookReceiverOptions["onOutcome"];
  readonly #pem?: string;
  readonly #keySource?: PublicKeySource;
  readonly #path: string | null;
  readonly #maxBody: number;
  readonly #maxSkewMs: number;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #refetchMs: number;
  readonly #keyRetryMs: number;
  readonly #now: () => number;
  /** message id → expiry (ms since epoch); insertion order = expiry order. */
  readonly #seen = new Map<string, number>();
  readonly #claim: ((messageId: string) => Promise<boolean>) | undefined;
  readonly #counts = new Map<WebhookOutcome, number>();
  readonly #logLimit = new LogRateLimiter(REJECT_LOG_PER_MINUTE, 60_000);
  #key: Promise<CryptoKey> | undefined;
  #keyLoadedAt = -Infinity; // performance.now()
  #keyFailedAt = -Infinity; // performance.now()
  #keyError: unknown;

  /**
   * Creates a receiver; the public key is loaded on the first delivery.
   *
   * @param opts See {@linkcode WebhookReceiverOptions}.
   * @throws {TypeError} when neither `publicKeyPem` nor `keySource` is given.
   */
  constructor(opts: WebhookReceiverOptions) {
    if (!opts.publicKeyPem && !opts.keySource) {
      throw new TypeError("WebhookReceiver needs publicKeyPem or keySource");
    }
    this.#onObservation = opts.onObservation;
    this.#onOutcome = opts.onOutcome;
    this.#pem = opts.publicKeyPem;
    this.#keySource = opts.keySource;
    this.#path = opts.path === undefined ? DEFAULT_WEBHOOK_PATH : opts.path;
    this.#maxBody = opts.maxBodyBytes ?? 64 * 1024;
    this.#maxSkewMs = opts.maxSkewMs ?? 5 * 60_000;
    this.#ttlMs = opts.dedupeTtlMs ?? 2 * this.#maxSkewMs + 60_000;
    this.#maxEntries = opts.dedupeMaxEntries ?? 10_000;
    this.#claim = opts.claim;
    this.#refetchMs = opts.keyRefetchIntervalMs ?? 5 * 60_000;
    this.#keyRetryMs = opts.keyRetryMs ?? 10_000;
    this.#now = opts.now ?? Date.now;
    this.handler = (req) => this.handle(req);
  }

  /**
   * Handles one request (see the class docs for the status codes).
   * Never throws; never awaits `onObservation`.
   *
   * @example
   * ```ts
   * const res = await receiver.handle(new Request("http://x/webhooks/kick", { method: "POST", headers, body }));
   * ```
   */
  async handle(req: Request): Promise<Response> {
    const receivedMono = performance.now();
    const observedAt = this.#now();
    try {
      if (this.#path !== null && new URL(req.url).pathname !== this.#path) {
        return await this.#reject(req, "not_found", 404);
      }
      if (req.method !== "POST") {
        return await this.#reject(req, "method_not_allowed", 405, { allow: "POST" });
      }
      const h = req.headers;
      const missing = REQUIRED_HEADERS.filter((n) => !h.get(n));
      if (missing.length > 0) {
        return await this.#reject(req, "missing_headers", 400, {}, `missing ${missing.join(", ")}`);
      }
      const messageId = h.get("Kick-Event-Message-Id")!;
      const timestamp = h.get("Kick-Event-Message-Timestamp")!;
      const signatureB64 = h.get("Kick-Event-Signature")!;
      const type = h.get("Kick-Event-Type")!;
      const version = h.get("Kick-Event-Version") ?? "1";
      const subscriptionId = h.get("Kick-Event-Subscription-Id") ?? undefined;

      const declared = Number(h.get("content-length") ?? "0");
      if (declared > this.#maxBody) return await this.#reject(req, "too_large", 413);
      const rawBody = await readBodyCapped(req, this.#maxBody);
      if (!rawBody) return this.#answer("too_large", 413, messageId);

      const ts = parseWebhookTime(timestamp);
      if (ts === undefined) return this.#answer("bad_timestamp", 400, messageId);
      if (Math.abs(observedAt - ts) > this.#maxSkewMs) {
        return this.#answer("stale_timestamp", 401, messageId);
      }

      let ok: boolean;
      try {
        ok = await this.#verify({ messageId, timestamp, rawBody, signatureB64 });
      } catch (e) {
        const suppressed = this.#mayLog("key_error");
        if (suppressed !== undefined) {
          log.error("webhook public key unavailable: {error}{more}", {
            error: errorText(e),
            suppressed,
            more: moreNote(suppressed),
          });
        }
        return this.#answer("key_unavailable", 503, messageId);
      }
      if (!ok) return this.#answer("bad_signature", 401, messageId);

      if (type !== LIVESTREAM_STATUS_UPDATED) {
        return this.#answer("ignored_type", 204, messageId, type);
      }
      if (version.trim() !== "1") {
        return this.#answer("ignored_version", 204, messageId, `${type} v${version}`);
      }

      this.#purge(observedAt);
      if (this.#seen.has(messageId)) return this.#answer("duplicate", 200, messageId);
      if (this.#claim) {
        let first = true;
        try {
          first = await this.#claim(messageId);
        } catch (e) {
          if (this.#mayLog("claim_failed") !== undefined) {
            log.warn("webhook de-duplication unavailable, accepting {messageId}: {error}", {
              messageId,
              error: errorText(e),
            });
          }
        }
        if (!first) {
          this.#remember(messageId, observedAt);
          return this.#answer("duplicate", 200, messageId);
        }
      }

      let obs: Observation;
      try {
        obs = parseLivestreamStatusUpdated(JSON.parse(new TextDecoder().decode(rawBody)), {
          messageId,
          subscriptionId,
          messageTimestamp: ts,
          // Kick's time of the message, so that a late or retried delivery
          // loses against anything observed after it was sent (never later
          // than its receipt: a clock ahead of ours must not win either).
          observedAt: Math.min(ts + 999, observedAt), // the timestamp has whole seconds
          receivedMono,
        });
      } catch (e) {
        return this.#answer("malformed_body", 400, messageId, errorText(e));
      }

      this.#remember(messageId, observedAt);
      try {
        const r = this.#onObservation(obs);
        if (r instanceof Promise) {
          r.catch((e) =>
            log.error("onObservation rejected for {messageId}: {error}", {
              messageId,
              error: errorText(e),
            })
          );
        }
      } catch (e) {
        this.#seen.delete(messageId); // let Kick's retry through
        log.error("onObservation threw for {messageId}: {error}", {
          messageId,
          error: errorText(e),
        });
        return this.#answer("handler_error", 500, messageId);
      }
      return this.#answer("accepted", 200, messageId);
    } catch (e) {
      // Body stream errors and the like: never let the handler throw.
      const suppressed = this.#mayLog("request_error");
      if (suppressed !== undefined) {
        log.error("webhook request failed: {error}{more}", {
          error: errorText(e),
          suppressed,
          more: moreNote(suppressed),
        });
      }
      return this.#answer("malformed_body", 400, undefined, errorText(e));
    }
  }

  /**
   * Counters by outcome since construction.
   *
   * @example
   * ```ts
   * const { accepted, rejected } = receiver.stats(); // e.g. 12, { bad_signature: 1 }
   * ```
   */
  stats(): WebhookStats {
    const ignored: Partial<Record<WebhookOutcome, number>> = {};
    const rejected: Partial<Record<WebhookOutcome, number>> = {};
    for (const [k, v] of this.#counts) {
      if (k === "accepted" || k === "duplicate") continue;
      (IGNORED.has(k) ? ignored : rejected)[k] = v;
    }
    return {
      accepted: this.#counts.get("accepted") ?? 0,
      duplicate: this.#counts.get("duplicate") ?? 0,
      ignored,
      rejected,
    };
  }

  async #verify(input: KickSignatureInput): Promise<boolean> {
    const key = await this.#getKey(false);
    if (await verifyKickSignature(input, key)) return true;
    if (this.#pem || !this.#keySource) return false;
    // Kick may have rotated its key: refetch (at most every keyRefetchIntervalMs),
    // or pick up a refetch another request has already started.
    const refetch = performance.now() - this.#keyLoadedAt >= this.#refetchMs;
    if (refetch) log.info("webhook signature mismatch; refetching Kick's public key");
    const fresh = await this.#getKey(refetch);
    return fresh !== key && await verifyKickSignature(input, fresh);
  }

  async #getKey(refresh: boolean): Promise<CryptoKey> {
    if (this.#key && !refresh) return await this.#key;
    if (!this.#key && performance.now() - this.#keyFailedAt < this.#keyRetryMs) {
      throw new Error(`public key fetch failed recently: ${errorText(this.#keyError)}`, {
        cause: this.#keyError,
      });
    }
    const previous = this.#key;
    const p = (async () => {
      const pem = this.#pem ?? await this.#keySource!.getPublicKey();
      return await importKickPublicKey(pem);
    })();
    this.#key = p;
    this.#keyLoadedAt = performance.now();
    try {
      return await p;
    } catch (e) {
      this.#keyFailedAt = performance.now();
      this.#keyError = e;
      if (this.#key === p) this.#key = previous; // keep using the old key after a failed refetch
      if (previous) return await previous;
      throw e;
    }
  }

  #purge(now: number): void {
    for (const [id, exp] of this.#seen) {
      if (exp > now) break;
      this.#seen.delete(id);
    }
  }

  #remember(id: string, now: number): void {
    this.#seen.set(id, now + this.#ttlMs);
    while (this.#seen.size > this.#maxEntries) {
      const oldest = this.#seen.keys().next().value;
      if (oldest === undefined) break;
      this.#seen.delete(oldest);
    }
  }

  async #reject(
    req: Request,
    outcome: WebhookOutcome,
    status: number,
    headers: Record<string, string> = {},
    detail?: string,
  ): Promise<Response> {
    try {
      await req.body?.cancel();
    } catch { /* already consumed */ }
    return this.#answer(
      outcome,
      status,
      req.headers.get("Kick-Event-Message-Id") ?? undefined,
      detail,
      headers,
    );
  }

  #answer(
    outcome: WebhookOutcome,
    status: number,
    messageId?: string,
    detail?: string,
    headers: Record<string, string> = {},
  ): Response {
    this.#counts.set(outcome, (this.#counts.get(outcome) ?? 0) + 1);
    try {
      this.#onOutcome?.(outcome);
    } catch { /* metrics must not break the handler */ }
    if (outcome === "accepted") {
      log.debug("webhook {messageId} accepted", { messageId });
    } else if (outcome === "duplicate" || IGNORED.has(outcome)) {
      log.info("webhook {messageId}: {outcome}{detail}", {
        messageId,
        outcome,
        detail: detail ? ` (${detail})` : "",
      });
    } else {
      const suppressed = this.#mayLog(outcome);
      if (suppressed !== undefined) {
        log.warn("webhook {messageId} rejected ({outcome}, HTTP {status}){detail}{more}", {
          messageId: messageId ?? "-",
          outcome,
          status,
          detail: detail ? `: ${detail}` : "",
          suppressed,
          more: moreNote(suppressed),
        });
      }
    }
    if (status === 204) return new Response(null, { status, headers });
    return new Response(outcome, { status, headers: { "content-type": "text/plain", ...headers } });
  }

  /**
   * Rate limit for lines an outsider can trigger at will (see
   * {@linkcode REJECT_LOG_PER_MINUTE}): undefined when the line for `key` must
   * be dropped, else how many were dropped for `key` in the window before.
   */
  #mayLog(key: string): number | undefined {
    // Lines are only suppressed once a window's quota is used up, so the count
    // read before allow() is what the previous window dropped (allow() resets it).
    const suppressed = this.#logLimit.suppressed(key);
    return this.#logLimit.allow(key) ? suppressed : undefined;
  }
}

/** Text appended to a rate-limited line that follows suppressed ones. */
function moreNote(suppressed: number): string {
  return suppressed > 0 ? ` (${suppressed} similar lines suppressed before this one)` : "";
}
