/**
 * The Pusher client's options from kickmon's configuration (`KICK_PUSHER_*`,
 * `MONITORING_RECONNECT_*`): one place for the monitor and `kickmon capture`,
 * so a capture connects exactly as the monitor does.
 *
 * @module
 */
import type { Config } from "../config/config.ts";
import type { PusherSubscriberOptions } from "../kick/pusher/subscriber.ts";

/**
 * `PusherSubscriber` options for a configuration (host, port, TLS, shard size, reconnect backoff
 * in ms, give-up count, pong timeout in ms, refusal wait in ms, spacing of connection attempts in ms).
 *
 * @param config the loaded configuration.
 * @returns the options.
 *
 * @example
 * ```ts
 * const subscriber = new PusherSubscriber(pusherSubscriberOptions(config), { onEvent() {} });
 * ```
 */
export function pusherSubscriberOptions(config: Config): PusherSubscriberOptions {
  const p = config.kick.pusher;
  return {
    key: p.key,
    cluster: p.cluster,
    host: p.host,
    port: p.port,
    tls: p.tls,
    maxChannelsPerConnection: p.maxChannelsPerConnection,
    reconnectBaseMs: config.monitoring.reconnectDelayMs,
    reconnectMaxMs: config.monitoring.maxReconnectDelayMs,
    maxReconnectAttempts: config.monitoring.maxReconnectAttempts,
    pongTimeoutMs: p.pongTimeoutMs,
    refusedRetryMs: p.refusedRetryMs,
    staggerMs: p.connectSpacingMs,
  };
}
