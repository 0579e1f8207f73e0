/**
 * The operator's HTTP endpoint (`HEALTH_CHECK_LISTEN`, default
 * 127.0.0.1:8080):
 *
 * | path | answer |
 * |---|---|
 * | `GET /health` | 200 when the database is reachable, every Pusher connection is up and a token is held; else 503. JSON naming each component's state; each component (`database`, every `pusher.connections[]`, `token`) carries `last_error` (host and cause, null while it works), `last_error_at` and `next_retry_at` (ISO 8601 or null). |
 * | `GET /metrics` | Prometheus text exposition format (prom-client). |
 * | `GET /streamers` | JSON list of streamers with status (snake_case keys: `kick_user_id`, `last_status_update`, …). |
 * | `GET /streamers/{username}/status` | one streamer, 404 when unknown. |
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { listStreamerViews } from "../db/streamers_repo.ts";
import type { ComponentErrors, Monitor, MonitorPlugin } from "../service/monitor.ts";

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
function errorsJson(c: ComponentErrors): Record<string, string | null> {
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
        return json({
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
          streamers: monitor.tracker.counts(),
        }, h.healthy ? 200 : 503);
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
        const [s] = await listStreamerViews(monitor.sql, { username: decodeURIComponent(m[1]) });
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
      return json({ error: e instanceof Error ? e.message : String(e) }, 503);
    }
  };
}

/**
 * The HTTP endpoint as a monitor plugin.
 *
 * @example
 * ```ts
 * monitor.plugins.push(new HttpPlugin("127.0.0.1", 8080));
 * ```
 */
export class HttpPlugin implements MonitorPlugin {
  readonly name = "http";
  readonly early = true;
  #server: Deno.HttpServer | null = null;
  /** The bound port (after start). */
  port = 0;
  constructor(readonly hostname: string, readonly requestedPort: number) {}

  start(monitor: Monitor): void {
    this.#server = Deno.serve({
      hostname: this.hostname,
      port: this.requestedPort,
      onListen: ({ hostname, port }) => {
        this.port = port;
        log.info("health and metrics on http://{hostname}:{port}/health", { hostname, port });
      },
    }, createHandler(monitor));
  }

  async stop(): Promise<void> {
    await this.#server?.shutdown();
  }
}
