/**
 * Kick's webhook signatures (docs/kick-protocol.md §4.8, verified against a real
 * delivery): RSA PKCS#1 v1.5 with SHA-256 over the bytes
 * `{Kick-Event-Message-Id}.{Kick-Event-Message-Timestamp}.{raw body}`, base64
 * in `Kick-Event-Signature`, checked with Kick's public key (docs PEM or
 * `GET /public/v1/public-key`).
 *
 * @module
 */

/** Input of {@linkcode verifyKickSignature}: the headers as received and the body bytes. */
export interface KickSignatureInput {
  /** `Kick-Event-Message-Id` header, verbatim. */
  readonly messageId: string;
  /** `Kick-Event-Message-Timestamp` header, verbatim (RFC 3339 text, not re-formatted). */
  readonly timestamp: string;
  /** The request body exactly as received (never re-serialised JSON). */
  readonly rawBody: Uint8Array;
  /** `Kick-Event-Signature` header (base64). */
  readonly signatureB64: string;
}

/**
 * A public key that could not be imported (not an SPKI RSA PEM).
 *
 * @example
 * ```ts
 * try { await importKickPublicKey("nope"); } catch (e) { console.log(e instanceof KickPublicKeyError); } // true
 * ```
 */
export class KickPublicKeyError extends Error {
  /**
   * Creates a key import error.
   *
   * @param message Description.
   * @param options `cause`: the underlying WebCrypto/base64 error.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KickPublicKeyError";
  }
}

/**
 * Imports Kick's webhook public key (SPKI PEM, `-----BEGIN PUBLIC KEY-----`)
 * for RSASSA-PKCS1-v1_5 / SHA-256 verification (§4.8).
 *
 * @throws {KickPublicKeyError} when the text is not a valid SPKI RSA PEM.
 * @example
 * ```ts
 * const key = await importKickPublicKey(await api.getPublicKey());
 * ```
 */
export async function importKickPublicKey(pem: string): Promise<CryptoKey> {
  const m = /-----BEGIN PUBLIC KEY-----([\s\S]+?)-----END PUBLIC KEY-----/.exec(pem);
  if (!m) {
    throw new KickPublicKeyError("not a PEM public key (expected -----BEGIN PUBLIC KEY-----)");
  }
  let der: Uint8Array<ArrayBuffer>;
  try {
    der = base64ToBytes(m[1].replace(/\s+/g, ""));
  } catch (e) {
    throw new KickPublicKeyError("PEM public key is not valid base64", { cause: e });
  }
  try {
    return await crypto.subtle.importKey(
      "spki",
      der,
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["verify"],
    );
  } catch (e) {
    throw new KickPublicKeyError("PEM public key is not an RSA SPKI key", { cause: e });
  }
}

/**
 * Verifies a Kick webhook signature: RSA PKCS#1 v1.5 + SHA-256 over
 * `{messageId}.{timestamp}.` followed by the raw body bytes (§4.8).
 *
 * @returns true when the signature is valid; false when it is not, or when
 *   `signatureB64` is not base64. Never throws for bad input.
 * @example
 * ```ts
 * const ok = await verifyKickSignature({
 *   messageId: req.headers.get("Kick-Event-Message-Id")!,
 *   timestamp: req.headers.get("Kick-Event-Message-Timestamp")!,
 *   rawBody: new Uint8Array(await req.arrayBuffer()),
 *   signatureB64: req.headers.get("Kick-Event-Signature")!,
 * }, key);
 * ```
 */
export async function verifyKickSignature(
  input: KickSignatureInput,
  publicKey: CryptoKey,
): Promise<boolean> {
  let sig: Uint8Array<ArrayBuffer>;
  try {
    sig = base64ToBytes(input.signatureB64.trim());
  } catch {
    return false;
  }
  if (sig.length === 0) return false;
  const prefix = new TextEncoder().encode(`${input.messageId}.${input.timestamp}.`);
  const msg = new Uint8Array(prefix.length + input.rawBody.length);
  msg.set(prefix, 0);
  msg.set(input.rawBody, prefix.length);
  try {
    return await crypto.subtle.verify("RSASSA-PKCS1-v1_5", publicKey, sig, msg);
  } catch {
    return false;
  }
}

function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64); // throws on invalid base64
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
