/**
 * The client side of `GET /health`: where `kickmon status` and
 * `kickmon stop` ask (`HEALTH_CHECK_LISTEN`), and what came back. The body's
 * shape is `src/http/health_body.ts`, the one the server builds.
 *
 * @module
 */
import type { ReceivedHealthBody } from "../http/health_body.ts";
import { networkCause } from "../log/errors.ts";
import { CliError, EXIT } from "./errors.ts";

const errText = (e: unknown) => e instanceof Error ? e.message : String(e);

/**
 * The URL `kickmon status` asks: `http://<HEALTH_CHECK_LISTEN>/health`, with a
 * wildcard listen address (`0.0.0.0`, `::`) replaced by its loopback address.
 *
 * @example
 * ```ts
 * healthUrl({ hostname: "0.0.0.0", port: 8080 }); // "http://127.0.0.1:8080/health"
 * ```
 */
export function healthUrl(health: { hostname: string; port: number }): string {
  let host = health.hostname;
  if (host === "0.0.0.0" || host === "") host = "127.0.0.1";
  if (host === "::" || host === "[::]") host = "::1";
  if (host.includes(":") && !host.startsWith("[")) host = `[${host}]`;
  return `http://${host}:${health.port}/health`;
}

/**
 * What `GET /health` answered.
 *
 * @example
 * ```ts
 * const down: HealthAnswer = { reachable: false, error: "connection refused" };
 * ```
 */
export interface HealthAnswer {
  /** `reachable: false` when nothing answered (connection refused or timed out). */
  readonly reachable: boolean;
  /** HTTP status (200 healthy, 503 unhealthy). */
  readonly status?: number;
  /** Parsed JSON body, when it was JSON. */
  readonly body?: ReceivedHealthBody;
  /** Why it was not reachable. */
  readonly error?: string;
  /** True when the request timed out (something listens but does not answer). */
  readonly timedOut?: boolean;
}

/**
 * Asks `GET <url>` with a deadline.
 *
 * @param url e.g. from {@linkcode healthUrl}.
 * @param timeoutMs deadline in ms (default 5000).
 * @returns `{ reachable: false }` on connection refused / timeout, else the status and body.
 * @throws {CliError} when this build may not connect there (missing `--allow-net`).
 *
 * @example
 * ```ts
 * const h = await fetchHealth("http://127.0.0.1:8080/health");
 * if (h.reachable && h.status === 200) console.log("healthy");
 * ```
 */
export async function fetchHealth(url: string, timeoutMs = 5_000): Promise<HealthAnswer> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      throw new CliError(
        `this kickmon build may not connect to ${new URL(url).host} (${errText(e)}); ` +
          "rebuild with KICKMON_LISTEN naming HEALTH_CHECK_LISTEN",
        EXIT.failure,
        { cause: e },
      );
    }
    const timedOut = e instanceof DOMException && e.name === "TimeoutError";
    return {
      reachable: false,
      timedOut,
      error: timedOut ? `no answer within ${timeoutMs} ms` : networkCause(e),
    };
  }
  const text = await res.text();
  let body: ReceivedHealthBody | undefined;
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object") body = parsed as ReceivedHealthBody;
  } catch {
    body = undefined;
  }
  return { reachable: true, status: res.status, body };
}
