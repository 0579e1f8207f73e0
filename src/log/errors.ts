/**
 * Errors as one line of text that keeps what matters: the message and every
 * `cause` below it. Deno's `fetch` throws `TypeError: fetch failed` and puts
 * the useful part (`dns error`, `Connection refused`, a certificate problem)
 * in `error.cause`; a message without its cause says nothing.
 *
 * @module
 */

/** Deno's wrapping of a hyper/reqwest error: `error sending request for url (…): client error (Connect): `. */
const DENO_FETCH_PREFIX = /^error sending request for url \([^)]*\): (?:client error \([^)]*\): )?/;

/**
 * The innermost useful text of a network failure: the deepest `cause`'s
 * message, without Deno's `error sending request for url (…)` wrapping (the
 * caller names the host itself).
 *
 * @returns e.g. `tcp connect error: Connection refused (os error 111)`,
 *   `dns error: failed to lookup address information: Name or service not known`,
 *   `invalid peer certificate: UnknownIssuer`; the error's own message when
 *   it has no cause.
 *
 * @example
 * ```ts
 * try { await fetch("http://127.0.0.1:1/"); } catch (e) { console.log(networkCause(e)); }
 * ```
 */
export function networkCause(e: unknown): string {
  let cur: unknown = e;
  let text = e instanceof Error ? e.message : String(e);
  for (let depth = 0; depth < 10 && cur instanceof Error && cur.cause !== undefined; depth++) {
    cur = cur.cause;
    const msg = cur instanceof Error ? cur.message : String(cur);
    if (msg) text = msg;
  }
  return text.replace(DENO_FETCH_PREFIX, "").split("\n")[0];
}

/**
 * An error and its causes as one line: `message: cause: cause's cause`,
 * skipping a cause whose text the message already contains, and Deno's
 * `error sending request for url (…)` wrapping. Non-errors become
 * `String(e)`. Only the first line of each message is kept (no stacks).
 *
 * @example
 * ```ts
 * const e = new TypeError("fetch failed", { cause: new Error("dns error: no such host") });
 * describeError(e); // "fetch failed: dns error: no such host"
 * ```
 */
export function describeError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  let out = e.message.split("\n")[0] || e.name;
  let cur: unknown = e.cause;
  for (let depth = 0; depth < 10 && cur !== undefined && cur !== null; depth++) {
    const msg = (cur instanceof Error ? cur.message : String(cur)).split("\n")[0]
      .replace(DENO_FETCH_PREFIX, "");
    if (msg && !out.includes(msg)) out += `: ${msg}`;
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return out;
}
