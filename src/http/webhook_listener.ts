/**
 * The listening socket of Kick's webhooks (`KICK_WEBHOOK_LISTEN`, default
 * 127.0.0.1:8081, behind a reverse proxy with HTTPS): a `Deno.serve` that
 * hands every request to a `WebhookReceiver` (`kick/official/webhook.ts`,
 * docs/kick-protocol.md §4.8), beside the operator's endpoint in `server.ts`.
 *
 * Unlike the health endpoint it is not restarted when its serve loop ends
 * (it never was; noticed, not changed here): webhooks are the second
 * real-time source, and reconciliation corrects what they miss.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

// The category this line has always had: the official-API plugin starts the listener.
const log = getLogger(["kickmon", "official"]);

/** Where {@linkcode serveWebhooks} listens. */
export interface WebhookListenOptions {
  /** Address to bind, e.g. `127.0.0.1`. */
  readonly hostname: string;
  /** TCP port; 0 picks a free one. */
  readonly port: number;
}

/**
 * Starts listening for webhook deliveries and logs
 * `webhook receiver listening on http://{hostname}:{port}/webhooks/kick`
 * once bound.
 *
 * @param opts Address and port.
 * @param handler The receiver's request handler (`WebhookReceiver.handler`); it never throws.
 * @returns The server; `shutdown()` it on stop.
 * @throws {Deno.errors.AddrInUse} when the port is taken (and other bind errors).
 * @example
 * ```ts
 * const server = serveWebhooks({ hostname: "127.0.0.1", port: 8081 }, receiver.handler);
 * await server.shutdown();
 * ```
 */
export function serveWebhooks(
  opts: WebhookListenOptions,
  handler: (req: Request) => Promise<Response>,
): Deno.HttpServer {
  return Deno.serve({
    hostname: opts.hostname,
    port: opts.port,
    onListen: ({ hostname, port }) =>
      log.info("webhook receiver listening on http://{hostname}:{port}/webhooks/kick", {
        hostname,
        port,
      }),
  }, handler);
}
