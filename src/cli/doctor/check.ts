/**
 * The shape of `kickmon doctor`'s report: one {@linkcode CheckResult} per
 * line, how a check builds one ({@linkcode result}), what the checks learn and
 * pass on to later ones ({@linkcode Found}), how secrets are masked in the
 * report ({@linkcode mask}, {@linkcode envSecrets}) and how a line is printed
 * ({@linkcode formatCheck}). No I/O.
 *
 * @module
 */
import type { StreamerView } from "../../db/streamers_repo.ts";

/** Outcome of one check. */
export type CheckStatus = "ok" | "warn" | "fail";

/** One line of the report. */
export interface CheckResult {
  /** Short check name, e.g. `oauth token`. */
  readonly name: string;
  readonly status: CheckStatus;
  /** What was measured (status code, key fact). Secret-free. */
  readonly detail: string;
  /** One sentence saying what to do; present on warn/fail. */
  readonly remedy?: string;
  /** How long the check took, ms. */
  readonly ms: number;
}

/**
 * An error's message for a report line; a `cause`'s message is appended when
 * it adds something (fetch's "fetch failed" and WebSocket errors carry the
 * useful part there).
 *
 * @example
 * ```ts
 * errText(new Error("fetch failed", { cause: new Error("connection refused") }));
 * // "fetch failed: connection refused"
 * ```
 */
export const errText = (e: unknown): string => {
  if (!(e instanceof Error)) return String(e);
  // fetch's "fetch failed" / WebSocket errors carry the useful part in `cause`.
  const cause = e.cause instanceof Error ? e.cause.message : "";
  return cause && !e.message.includes(cause) ? `${e.message}: ${cause}` : e.message;
};

/**
 * Rounds a duration in ms to 0.1 ms, as every report line shows it.
 *
 * @example
 * ```ts
 * round(12.345); // 12.3
 * ```
 */
export const round = (ms: number) => Math.round(ms * 10) / 10;

/**
 * One check's line, its `ms` measured from `started` (a `performance.now()`
 * value, ms) to now. The remedy is kept only on `warn`/`fail`.
 *
 * @example
 * ```ts
 * const t = performance.now();
 * result("api /channels", t, "warn", "no streamer to look up", "pass --streamer NAME");
 * ```
 */
export function result(
  name: string,
  started: number,
  status: CheckStatus,
  detail: string,
  remedy?: string,
): CheckResult {
  const ms = round(performance.now() - started);
  return remedy && status !== "ok"
    ? { name, status, detail, remedy, ms }
    : { name, status, detail, ms };
}

/**
 * What the checks learn and pass on to later ones: the list rows, the
 * streamer's slug, user id and Pusher channel id (and where that id came
 * from), and the access token.
 *
 * @example
 * ```ts
 * const found: Found = {
 *   rows: null,
 *   slug: "bossmanjack",
 *   userId: null,
 *   channelId: null,
 *   channelIdFrom: null,
 *   token: null,
 * };
 * ```
 */
export interface Found {
  rows: StreamerView[] | null;
  slug: string | null;
  userId: number | null;
  channelId: number | null;
  channelIdFrom: string | null;
  token: string | null;
}

/**
 * Secrets straight from the environment, for when the configuration does not
 * load: `KICK_CLIENT_SECRET`, `DATABASE_PASSWORD` and the password in
 * `DATABASE_URL`, each when at least 3 characters long.
 *
 * @example
 * ```ts
 * envSecrets({ DATABASE_URL: "postgres://u:hunter2@db/kickmon" }); // ["hunter2"]
 * ```
 */
export function envSecrets(env: Record<string, string | undefined>): string[] {
  const out = [env.KICK_CLIENT_SECRET, env.DATABASE_PASSWORD];
  try {
    if (env.DATABASE_URL) out.push(decodeURIComponent(new URL(env.DATABASE_URL).password));
  } catch { /* not a URL: nothing to take from it */ }
  return out.filter((s): s is string => typeof s === "string" && s.length >= 3);
}

/**
 * The checks with every secret of at least 3 characters replaced by `***`
 * in `detail` and `remedy`.
 *
 * @example
 * ```ts
 * mask([{ name: "oauth token", status: "ok", detail: "token abc123", ms: 1 }], ["abc123"]);
 * // [{ name: "oauth token", status: "ok", detail: "token ***", ms: 1 }]
 * ```
 */
export function mask(checks: CheckResult[], secrets: string[]): CheckResult[] {
  const hide = (s: string) => {
    for (const v of secrets) if (v && v.length >= 3) s = s.split(v).join("***");
    return s;
  };
  return checks.map((c) => ({
    ...c,
    detail: hide(c.detail),
    ...(c.remedy ? { remedy: hide(c.remedy) } : {}),
  }));
}

/**
 * One report line: `ok   name  detail (N ms)`, and on warn/fail `: remedy`.
 *
 * @example
 * ```ts
 * formatCheck({ name: "oauth token", status: "ok", detail: "token obtained", ms: 12 });
 * // "ok    oauth token             token obtained (12 ms)"
 * ```
 */
export function formatCheck(c: CheckResult): string {
  const line = `${c.status.padEnd(5)} ${c.name.padEnd(23)} ${c.detail} (${c.ms} ms)`;
  return c.remedy ? `${line} → ${c.remedy}` : line;
}
