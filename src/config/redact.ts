/**
 * How secrets embedded in a value are hidden when it is printed
 * (`kickmon config show`, log lines).
 *
 * @module
 */

/** What a secret is printed as. */
export const REDACTED = "[REDACTED]";

/**
 * Replaces the password of a URL with `[REDACTED]` (for logs and `config show`).
 *
 * @example
 * ```ts
 * redactUrlPassword("postgres://u:p@h/db"); // "postgres://u:[REDACTED]@h/db"
 * ```
 */
export function redactUrlPassword(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*:)[^@]*@/i, `$1${REDACTED}@`);
}
