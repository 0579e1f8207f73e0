/**
 * The zod parsers of environment variable values, shared by the rows of
 * `variables.ts`. Each takes the variable's text (defaults already filled in,
 * see `loadConfig`) and yields the typed value; a failure's message is what
 * `ConfigError` prints after the variable's name (`KICK_PUSHER_PORT: expected
 * a port`).
 *
 * @module
 */
import { z } from "zod";

/**
 * `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`, any case, to a boolean.
 *
 * @example
 * ```ts
 * bool.parse(" Yes "); // true
 * ```
 */
export const bool: z.ZodType<boolean, string> = z.string().trim().toLowerCase().pipe(
  z.enum(["true", "false", "1", "0", "yes", "no", "on", "off"], {
    error: "expected true or false",
  }),
).transform((v) => ["true", "1", "yes", "on"].includes(v));

/**
 * A decimal integer in `min..max` (inclusive). `what` names the unit in the
 * error: `expected seconds >= 1`.
 *
 * @param min the smallest accepted value, in the variable's unit.
 * @param max the largest accepted value, in the variable's unit.
 * @param what the noun for the messages (`"an integer"`, `"seconds"`, `"milliseconds"`, …).
 *
 * @example
 * ```ts
 * int(1, 300, "seconds").parse("10"); // 10
 * ```
 */
export function int(min: number, max: number, what = "an integer"): z.ZodType<number, string> {
  return z.string().trim().regex(/^-?\d+$/, { error: `expected ${what}` }).transform(Number).pipe(
    z.number().int().min(min, { error: `expected ${what} >= ${min}` }).max(max, {
      error: `expected ${what} <= ${max}`,
    }),
  );
}

/**
 * An `http:` or `https:` URL, without its trailing slashes.
 *
 * @example
 * ```ts
 * httpUrl.parse("https://api.example/v1/"); // "https://api.example/v1"
 * ```
 */
export const httpUrl: z.ZodType<string, string> = z.string().trim().refine((v) => {
  try {
    const u = new URL(v);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}, { error: "expected an http(s) URL" }).transform((v) => v.replace(/\/+$/, ""));

/** A listen address split into its parts; `hostname` has no IPv6 brackets. */
export interface HostPort {
  readonly hostname: string;
  /** 1..65535. */
  readonly port: number;
}

/**
 * `host:port` or `[ipv6]:port` to a {@linkcode HostPort}.
 *
 * @example
 * ```ts
 * hostPort.parse("[::1]:8080"); // { hostname: "::1", port: 8080 }
 * ```
 */
export const hostPort: z.ZodType<HostPort, string> = z.string().trim().regex(
  /^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/,
  { error: "expected host:port, e.g. 127.0.0.1:8080" },
).transform((v) => {
  const i = v.lastIndexOf(":");
  return { hostname: v.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(v.slice(i + 1)) };
}).refine((v) => v.port > 0 && v.port < 65536, { error: "port must be 1..65535" });

/**
 * Any text but an empty (or all-blank) one, trimmed.
 *
 * @example
 * ```ts
 * nonEmpty.parse(" kickmon "); // "kickmon"
 * ```
 */
export const nonEmpty: z.ZodType<string, string> = z.string().trim().min(1, {
  error: "must not be empty",
});

/**
 * Any text, trimmed; empty means "not set" to the variable's user.
 *
 * @example
 * ```ts
 * text.parse("  "); // ""
 * ```
 */
export const text: z.ZodType<string, string> = z.string().trim();

/**
 * One of `values`, any case, trimmed and lower-cased.
 *
 * @param values the accepted words, lower case.
 * @param error the message for anything else.
 *
 * @example
 * ```ts
 * oneOf(["auto", "poll"] as const, "expected auto or poll").parse(" POLL "); // "poll"
 * ```
 */
export function oneOf<const T extends readonly [string, ...string[]]>(
  values: T,
  error: string,
): z.ZodType<T[number], string> {
  return z.string().trim().toLowerCase().pipe(z.enum(values, { error }));
}
