/**
 * The operator's HTTP endpoint (`HEALTH_CHECK_LISTEN`, default
 * 127.0.0.1:8080):
 *
 * | path | answer |
 * |---|---|
 * | `GET /health` | {@linkcode HealthBody} (`health_body.ts`): 200 when the database is reachable, every Pusher connection is up and a token is held; else 503. JSON naming each component's state; each component (`database`, every `pusher.connections[]`, `token`) carries `last_error` (host and cause, null while it works), `last_error_at` and `next_retry_at` (ISO 8601 or null). |
 * | `GET /metrics` | Prometheus text exposition format (prom-client). |
 * | `GET /streamers` | JSON list of streamers with status (snake_case keys: `kick_user_id`, `last_status_update`, …). |
 * | `GET /streamers/{username}/status` | one streamer, 404 when unknown. |
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { listStreamerViews } from "../db/streamers_repo.ts";
import { LogRateLimiter } from "../log/logging.ts";
import type { ComponentErrors, Monitor, MonitorPlugin } from "../service/monitor.ts";
import type { EndpointCapability } from "../kick/official/capabilities.ts";
import type { HealthBody, HealthEndpoint, HealthErrors } from "./health_body.ts";

const log = getLogger(["kickmon", "http"]);

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });

/**
 * An object with its camelCase keys in snake_case (`kickUserId` →
 * `kick_user_id`), one level deep: every JSON answer uses Kick's convention.
 *
 * @example
 * ```ts
 * snakeKeys({ kickUserId: 1, isActive: true }); // { kick_user_id: 1, is_active: true }
 * ```
 */
export function snakeKeys(o: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    out[k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = v;
  }
  return out;
}

/** ms since the Unix epoch as ISO 8601, null stays null. */
const iso = (ms: number | null): string | null => ms === null ? null : new Date(ms).toISOString();

/** A component's `last_error`, `last_error_at`, `next_retry_at` (ISO 8601 or null). */
function endpointsJson(eps: Readonly<Record<string, EndpointCapability>>): HealthEndpoint[] {
  const out: HealthEndpoint[] = [];
  for (const [endpoint, e] of Object.entries(eps)) {
    out.push({
      endpoint,
      state: e.state,
      status: e.status,
      deprecation: e.deprecation,
      sunset: e.sunset,
      since: iso(e.since),
      checked_at: iso(e.checkedAt),
    });
  }
  return out;
}

function errorsJson(c: ComponentErrors): HealthErrors {
  return {
    last_error: c.lastError,
    last_error_at: iso(c.lastErrorAt),
    next_retry_at: iso(c.nextRetryAt),
  };
}

/**
 * Builds the request handler for a monitor (usable without a server in tests).
 *
 * @example
 * ```ts
 * Deno.serve({ port: 8080 }, createHandler(monitor));
 * ```
 */
export function createHandler(monitor: Monitor): (req: Request) => Promise<Response> {
  return async (req) => {
    const url = new URL(req.url);
    if (req.method !== "GET" && req.method !== "HEAD") {
      return json({ error: "method not allowed" }, 405);
    }
    try {
      if (url.pathname === "/health") {
        await monitor.checkDatabase(2000);
        const h = monitor.health();
        const body: HealthBody = {
          status: h.healthy ? "healthy" : "unhealthy",
          pid: Deno.pid,
          database: {
            up: h.database.up,
            ...(h.database.error ? { error: h.database.error } : {}),
            ...errorsJson(h.database),
          },
          pusher: {
            up: h.pusher.up,
            connections: h.pusher.shards.map((s) => ({
              index: s.index,
              state: s.state,
              channels: s.channels,
              subscribed: s.subscribed,
              oldest_unsubscribed_ms: s.oldestUnsubscribedMs,
              subscription_retries: s.subscriptionRetries,
              reconnects: s.reconnects,
              last_close_code: s.lastCloseCode,
              ...errorsJson({
                lastError: s.state === "connected" || !s.lastCloseReason
                  ? null
                  : `${monitor.subscriber.url}: ${s.lastCloseReason}`,
                lastErrorAt: s.state === "connected" ? null : s.lastCloseAt,
                nextRetryAt: s.nextAttemptAt,
              }),
            })),
          },
          token: {
            state: h.token.state,
            expires_at: iso(h.token.expiresAt),
            ...errorsJson(h.token),
          },
          write_queue_depth: h.writeQueueDepth,
          write_lag_ms: h.writeLagMs,
          spool: h.spool,
          ...(h.apiEndpoints ? { official: { endpoints: endpointsJson(h.apiEndpoints) } } : {}),
          streamers: monitor.tracker.counts(),
          leadership: {
            role: h.leadership.role,
            since: iso(h.leadership.since)!,
            leader: h.leadership.leader && {
              host: h.leadership.leader.host,
              pid: h.leadership.leader.pid,
              since: iso(h.leadership.leader.since),
            },
            eligible: h.leadership.eligible,
            changes_total: h.leadership.changes_total,
            reason: h.leadership.reason,
          },
        };
        return json(body, h.healthy ? 200 : 503);
      }
      if (url.pathname === "/metrics") {
        return new Response(await monitor.metrics.registry.metrics(), {
          headers: { "content-type": monitor.metrics.registry.contentType },
        });
      }
      if (url.pathname === "/streamers") {
        // snake_case like /health, /streamers/{u}/status and Kick's own API.
        return json((await listStreamerViews(monitor.sql)).map(snakeKeys));
      }
      const m = url.pathname.match(/^\/streamers\/([^/]+)\/status$/);
      if (m) {
        let username: string;
        try {
          username = decodeURIComponent(m[1]);
        } catch {
          return json({ error: "bad percent-encoding in the username" }, 400);
        }
        // Kick slugs are letters, digits, '-' and '_' (docs/kick-protocol.md §2, §10.9).
        if (!/^[A-Za-z0-9_-]{1,100}$/.test(username)) {
          return json({ error: "not a Kick username" }, 400);
        }
        const [s] = await listStreamerViews(monitor.sql, { username });
        if (!s) return json({ error: "no such streamer" }, 404);
        return json({
          username: s.username,
          status: s.status,
          last_status_update: s.lastStatusUpdate,
          last_seen_online: s.lastSeenOnline,
          is_active: s.isActive,
        });
      }
      return json({ error: "not found" }, 404);
    } catch (e) {
      // The detail goes to the log, not to whoever asked.
      if (limit.allow("handler")) {
        log.warn("{path}: {error}", { path: url.pathname, error: String(e) });
      }
      return json({ error: "database unavailable" }, 503);
    }
  };
}

const limit = new LogRateLimiter(3, 60_000);

/**
 * The HTTP endpoint as a monitor plugin.
 *
 * @example
 * ```ts
 * monitor.use(new HttpPlugin("127.0.0.1", 8080));
 * ```
 */
export class HttpPlugin implements MonitorPlugin {
  readonly name = "http";
  readonly early = true;
  #server: Deno.HttpServer | null = null;
  /** The bound port (after start). */
  port = 0;
  constructor(readonly hostname: string, readonly requestedPort: number) {}

  #stopping = false;
  #restarts = 0;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;

  start(monitor: Monitor): void {
    const handler = createHandler(monitor);
    const server = Deno.serve({
      hostname: this.hostname,
      port: this.port || this.requestedPort,
      onListen: ({ hostname, port }) => {
        this.port = port;
        log.info("health and metrics on http://{hostname}:{port}/health", { hostname, port });
      },
      onError: (e) => {
        log.error("health endpoint request failed: {error}", { error: String(e) });
        return json({ error: "internal error" }, 500);
      },
    }, handler);
    this.#server = server;
    // A serve loop that ends by itself (e.g. EMFILE when file handles run out)
    // is started again, with backoff; nothing else would bring /health back.
    server.finished.then(
      () => this.#restart(monitor, "the serve loop ended"),
      (e) => this.#restart(monitor, String(e)),
    );
  }

  #restart(monitor: Monitor, why: string): void {
    if (this.#stopping) return;
    this.#restarts++;
    const delayMs = Math.min(30_000, 500 * 2 ** Math.min(6, this.#restarts - 1));
    log.error("health endpoint stopped ({why}); restarting in {delayMs} ms", { why, delayMs });
    this.#restartTimer = setTimeout(() => {
      if (this.#stopping) return;
      try {
        this.start(monitor);
      } catch (e) {
        this.#restart(monitor, String(e));
      }
    }, delayMs);
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    await this.#server?.shutdown();
  }
}
