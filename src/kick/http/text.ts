/**
 * Server-supplied and thrown text made safe for one line of an error message
 * or a log: shortened ({@linkcode truncate}) or named ({@linkcode errorText}).
 * Used by the OAuth client, the API client and the webhook receiver.
 *
 * @module
 */

/**
 * Shortens `s` to at most `n` UTF-16 code units, marking a cut with `…`
 * (so a cut result is `n + 1` long). For server-supplied text in errors and logs.
 *
 * @param s The text.
 * @param n Most code units kept.
 * @returns `s` unchanged when it fits, else its first `n` units followed by `…`.
 * @example
 * ```ts
 * truncate("abcdef", 3); // "abc…"
 * truncate("abc", 3); // "abc"
 * ```
 */
export function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n)}…`;
}

/**
 * One-line description of a thrown value for errors and logs: `Name: message`
 * for an `Error`, else `String(e)`. Secrets are not removed here; redact the
 * result where it may contain them.
 *
 * @param e Anything caught.
 * @returns The description.
 * @example
 * ```ts
 * errorText(new TypeError("fetch failed")); // "TypeError: fetch failed"
 * errorText("boom"); // "boom"
 * ```
 */
export function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
