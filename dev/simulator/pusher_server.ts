/**
 * A Pusher Channels protocol v7 server that plays Kick's WebSocket for tests
 * and benchmarks: the real pusher-js client connects to it exactly as it
 * connects to `wss://ws-us2.pusher.com/app/{key}?protocol=7&client=js&version=…`.
 *
 * Wire format sources: the Pusher WebSocket protocol
 * (https://pusher.com/docs/channels/library_auth_reference/pusher-websockets-protocol),
 * pusher-js `protocol.ts`, and the captured Kick frames in docs/kick-protocol.md
 * (§1.2 subscribe/ack, §1.3 handshake/ping, §1.4 errors/close codes, §3 payloads).
 *
 * It publishes every {@linkcode World} change as Kick does:
 * `App\Events\StreamerIsLive` / `App\Events\StopStreamBroadcast` on
 * `channel.{channelId}`, with `data` encoded the way Kick's PHP backend encodes it
 * (`json_encode` defaults: `/` → `\/`, non-ASCII → `\uXXXX`; see `livestream-updated-1.json`).
 *
 * Architecture: a raw TCP front (`Deno.listen`) forwards bytes to an internal
 * `Deno.serve` + `Deno.upgradeWebSocket` server on another loopback port. The
 * front exists only so that {@linkcode PusherServer.dropAll} can cut
 * connections **without** a close frame (clients then see 1006, as after a
 * network failure); Deno's WebSocket API cannot do that itself.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { SimStreamer, World, WorldChange } from "./world.ts";
import { WsFrameScanner } from "./ws_frame_scanner.ts";

const log = getLogger(["kickmon", "simulator", "pusher"]);

/** Pusher event name of Kick's live event (docs/kick-protocol.md §3.1). */
const EV_LIVE = "App\\Events\\StreamerIsLive";
/** Pusher event name of Kick's offline event (docs/kick-protocol.md §3.2). */
const EV_STOP = "App\\Events\\StopStreamBroadcast";

/**
 * Options of {@linkcode startPusherServer}.
 *
 * @example
 * ```ts
 * import { World } from "./world.ts";
 * import type { PusherServerOptions } from "./pusher_server.ts";
 * const opts: PusherServerOptions = { world: new World(), key: "32cbd69e4b950bf97679", activityTimeoutSec: 2 };
 * ```
 */
export interface PusherServerOptions {
  /** The truth to publish from; the server subscribes to `world.onChange`. */
  readonly world: World;
  /** The app key clients must use in `/app/{key}` (Kick: `32cbd69e4b950bf97679`, §1.1). */
  readonly key: string;
  /** Interface to listen on. Default `127.0.0.1`. */
  readonly hostname?: string;
  /** TCP port; `0` (default) picks a free one (see {@linkcode PusherServer.port}). */
  readonly port?: number;
  /** `activity_timeout` announced in `pusher:connection_established`, in **seconds**. Default 120 (§1.3). */
  readonly activityTimeoutSec?: number;
  /**
   * How long the server waits for a `pusher:pong` after its own `pusher:ping`, in
   * **seconds**, before closing with 4201 (§1.4). Default 30.
   */
  readonly pongTimeoutSec?: number;
  /**
   * Called once per published frame (world change, {@linkcode PusherServer.publish}),
   * after it was handed to every subscribed socket. `sentAtMs` is ms since epoch,
   * `sentMono` is `performance.now()` (ms), `recipients` the number of sockets.
   */
  readonly onFrameSent?: (
    channel: string,
    event: string,
    sentAtMs: number,
    sentMono: number,
    recipients: number,
  ) => void;
  /**
   * Called with each text frame (the raw Pusher JSON) once the TCP front has
   * written all of it to a client's socket: the frame is then in the kernel's
   * hands and reaches the client even if {@linkcode PusherServer.dropAll} cuts
   * the connection next (an abrupt drop half-closes with FIN after the last
   * forwarded byte, so nothing written is discarded by a reset). This is the
   * delivery record tests compare with the database; `onFrameSent` counts
   * frames handed to sockets, some of which a drop cuts off in flight.
   */
  readonly onFrameDelivered?: (text: string) => void;
}

/**
 * A running simulated Pusher server. Every method is synchronous unless it
 * returns a promise; none throws on closed sockets.
 *
 * @example
 * ```ts
 * import { World } from "./world.ts";
 * import { startPusherServer } from "./pusher_server.ts";
 * const server = await startPusherServer({ world: new World(), key: "k" });
 * console.log(`ws://127.0.0.1:${server.port}/app/k?protocol=7`);
 * await server.close();
 * ```
 */
export interface PusherServer {
  /** The TCP port clients connect to. */
  readonly port: number;
  /** The hostname the server listens on. */
  readonly hostname: string;
  /** Every WebSocket connection ever opened, including refused ones. */
  readonly connectionsTotal: number;
  /** Connections refused with a `pusher:error` (wrong key, {@linkcode rejectNewConnections}, bad path/protocol). */
  readonly refusedTotal: number;
  /** Frames published (one per publish call, whatever the number of recipients). */
  readonly framesPublished: number;
  /** Stops listening, cuts every connection and resolves when all sockets and listeners are closed. Idempotent. */
  close(): Promise<void>;
  /**
   * Sends an app event to every socket subscribed to `channel`. Object `data` is
   * encoded to the string form real frames use (PHP-style escaping, see module doc);
   * string `data` is sent verbatim as the `data` string. Returns the number of recipients
   * (0 while silent).
   */
  publish(channel: string, event: string, data: string | object): number;
  /** Sends any text as-is to the sockets subscribed to `channel`, or to every open socket when `channel` is null. Returns the number of recipients. */
  publishRaw(channel: string | null, text: string): number;
  /**
   * Closes every connection. Without `code`: cut the TCP connection with no close
   * frame (the client sees 1006, like a network failure): nothing more is forwarded,
   * and the client side is half-closed after the last byte already forwarded, so
   * frames reported by `onFrameDelivered` do reach the client. With `code` (1000 or
   * 3000–4999): a `pusher:error` frame `{code, message: reason}` for 4000–4999, then a
   * close frame with that code and reason. Returns the number of sockets dropped.
   */
  dropAll(code?: number, reason?: string): number;
  /** Like {@linkcode dropAll} for one socket, by its `socket_id`. Returns false if unknown. */
  dropSocket(socketId: string, code?: number, reason?: string): boolean;
  /**
   * "Connected but deaf": while on, sockets stay open but the server ignores every
   * client frame (no pong, no subscription ack), sends no pings and delivers nothing;
   * new connections get no `pusher:connection_established`.
   */
  setSilent(on: boolean): void;
  /**
   * While `code` is a number, every new connection gets `pusher:error {code, message}`
   * followed by a close frame with that code (e.g. 4001 rotated key, 4004 over quota,
   * 4100 over capacity, 4200 reconnect now). `null` accepts connections again.
   *
   * @throws {RangeError} when `code` is neither null nor an integer in 4000–4999.
   */
  rejectNewConnections(code: number | null): void;
  /**
   * Fault injection: the next `times` `pusher:subscribe` for `channel` are
   * refused, with a `pusher:subscription_error` frame on the channel
   * (`"subscription_error"`) or a connection-level `pusher:error` 4302
   * (`"pusher_error"`), the two shapes the Pusher protocol defines. Not from
   * a capture: Kick has not been seen refusing a public channel.
   */
  refuseSubscriptions(
    channel: string,
    times: number,
    how: "subscription_error" | "pusher_error",
  ): void;
  /** Open, accepted (handshaken) connections right now. */
  connections(): number;
  /** Number of sockets subscribed to `channel`. */
  subscriberCount(channel: string): number;
  /** Channels with at least one subscriber, sorted. */
  subscribedChannels(): string[];
  /** `socket_id` and channel count of each open accepted connection, in connection order. */
  sockets(): { socketId: string; channels: number }[];
}

/** Per-connection state. */
interface Conn {
  readonly ws: WebSocket;
  readonly socketId: string;
  readonly channels: Set<string>;
  /** performance.now() of the last frame received from the client. */
  lastRx: number;
  /** performance.now() when the server's own ping was sent, or null. */
  pingSentAt: number | null;
  accepted: boolean;
  /** Key of the TCP front pair (internal client port), if known. */
  readonly pairKey: number | undefined;
}

/** One TCP connection through the front: client side and internal side. */
interface TcpPair {
  readonly client: Deno.TcpConn;
  readonly upstream: Deno.TcpConn;
  closed: boolean;
  /** Cut abruptly: forward nothing more; half-close the client side once the last write ends. */
  cut: boolean;
  done: Promise<void>;
}

/** Pusher's standard messages for refusal codes (§1.4). */
function codeMessage(code: number, key: string): string {
  switch (code) {
    case 4001:
      return `App key ${key} not in this cluster. Did you forget to specify the cluster?`;
    case 4003:
      return "Application is disabled";
    case 4004:
      return "Application is over connection quota";
    case 4005:
      return "Path not found";
    case 4006:
      return "Invalid version string format";
    case 4007:
      return "Unsupported protocol version";
    case 4008:
      return "No protocol version supplied";
    case 4009:
      return "Connection is unauthorized";
    case 4100:
      return "Over capacity";
    case 4200:
      return "Please reconnect immediately";
    case 4201:
      return "Pong reply not received: ping was sent to the client, but no reply was received";
    case 4202:
      return "Closed after inactivity";
    default:
      return `Error ${code}`;
  }
}

/** Truncates a close reason to the 123 bytes a WebSocket close frame allows. */
function closeReason(reason: string): string {
  const enc = new TextEncoder();
  if (enc.encode(reason).length <= 123) return reason;
  let r = reason;
  while (enc.encode(r).length > 120) r = r.slice(0, -1);
  return r + "...";
}

function validCloseCode(code: number): boolean {
  return Number.isInteger(code) && (code === 1000 || (code >= 3000 && code <= 4999));
}

/**
 * Encodes a value like PHP's `json_encode` with default flags, which is how
 * Kick's Laravel backend encodes Pusher `data` (docs/kick-protocol.md §3: `\/` and
 * `\uXXXX` in `livestream-updated-1.json`, `gifts-leaderboard-updated-1.json`).
 *
 * @throws {TypeError} when the value is not JSON-serialisable (cycles, BigInt).
 *
 * @example
 * ```ts
 * import { phpJsonEncode } from "./pusher_server.ts";
 * console.log(phpJsonEncode({ url: "https://kick.com/a", t: "🎰" }));
 * // {"url":"https:\/\/kick.com\/a","t":"\ud83c\udfb0"}
 * ```
 */
export function phpJsonEncode(value: unknown): string {
  const s = JSON.stringify(value);
  if (s === undefined) throw new TypeError("phpJsonEncode: value is not JSON-serialisable");
  // `/` and non-ASCII can only occur inside JSON strings, so a global replace is safe.
  return s.replace(/\//g, "\\/").replace(
    /[\u0080-\uffff]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
  );
}

/**
 * Formats a time the way Kick's Pusher payloads do (docs/kick-protocol.md §3.1):
 * UTC, whole seconds, six fractional zeros: `2025-09-14T16:11:18.000000Z`.
 *
 * @param t ms since epoch or any string `Date` can parse.
 * @throws {RangeError} when `t` is not a valid time.
 *
 * @example
 * ```ts
 * import { formatKickTimestamp } from "./pusher_server.ts";
 * console.log(formatKickTimestamp(Date.UTC(2025, 8, 14, 16, 11, 18, 512))); // 2025-09-14T16:11:18.000000Z
 * ```
 */
export function formatKickTimestamp(t: number | string): string {
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) throw new RangeError(`formatKickTimestamp: invalid time ${t}`);
  return d.toISOString().slice(0, 19) + ".000000Z";
}

/**
 * The `data` string of `App\Events\StreamerIsLive` for a simulated streamer,
 * byte-compatible with the captured frame (docs/kick-protocol.md §3.1): key order
 * `id, channel_id, session_title, source (null), created_at`.
 *
 * @example
 * ```ts
 * import { streamerIsLiveData } from "./pusher_server.ts";
 * const s = { userId: 1, slug: "a", channelId: 2587387, live: true, livestreamId: 74265904,
 *   title: "4HEAD | NOPIXEL 4.0 | TTS", startedAt: "2025-09-14T16:11:18.000Z" };
 * console.log(streamerIsLiveData(s));
 * ```
 */
export function streamerIsLiveData(s: Readonly<SimStreamer>): string {
  return phpJsonEncode({
    livestream: {
      id: s.livestreamId,
      channel_id: s.channelId,
      session_title: s.title,
      source: null,
      created_at: formatKickTimestamp(s.startedAt ?? Date.now()),
    },
  });
}

/**
 * The `data` string of `App\Events\StopStreamBroadcast` for a simulated streamer
 * (docs/kick-protocol.md §3.2): `{"livestream":{"id","channel":{"id","is_banned":false}}}`.
 *
 * @example
 * ```ts
 * import { stopStreamBroadcastData } from "./pusher_server.ts";
 * const s = { userId: 1, slug: "a", channelId: 668, live: false, livestreamId: 74331109,
 *   title: "", startedAt: null };
 * console.log(stopStreamBroadcastData(s)); // {"livestream":{"id":74331109,"channel":{"id":668,"is_banned":false}}}
 * ```
 */
export function stopStreamBroadcastData(s: Readonly<SimStreamer>): string {
  return phpJsonEncode({
    livestream: { id: s.livestreamId, channel: { id: s.channelId, is_banned: false } },
  });
}

/** Builds a Pusher frame text with Pusher's key order `event, data, channel`. */
function frameText(event: string, data: string, channel?: string): string {
  return channel === undefined
    ? `{"event":${JSON.stringify(event)},"data":${JSON.stringify(data)}}`
    : `{"event":${JSON.stringify(event)},"data":${JSON.stringify(data)},"channel":${
      JSON.stringify(channel)
    }}`;
}

/** `pusher:error` with object data (how Pusher sends it, §1.4). */
function errorText(code: number | null, message: string): string {
  return JSON.stringify({ event: "pusher:error", data: { code, message } });
}

/** Valid Pusher channel name: ≤ 164 chars of `[A-Za-z0-9_\-=@,.;]`. */
const CHANNEL_RE = /^[A-Za-z0-9_\-=@,.;]{1,164}$/;

/**
 * Starts a simulated Pusher server (see the module doc) and resolves once it
 * accepts connections.
 *
 * Protocol behaviour:
 * - `GET /app/{key}?protocol=7&client=js&version=…` upgrades to a WebSocket; the first frame is
 *   `{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":120}"}`.
 * - Wrong key → `pusher:error` 4001 (`App key … not in this cluster. Did you forget to specify the
 *   cluster?`) then close 4001. Missing `protocol` → 4008, protocol not 5–7 → 4007, other path → 4005.
 * - `pusher:subscribe {auth, channel}` → `pusher_internal:subscription_succeeded` with `"data":"{}"`
 *   (fixture `pusher-subscription-succeeded-1.json`). `private-`/`presence-` without `auth` →
 *   `pusher:error {code: 4009}` (the socket stays open). `pusher:unsubscribe` removes it.
 * - `pusher:ping` → `{"event":"pusher:pong","data":"{}"}`. After `activity_timeout` without client
 *   frames the server sends `pusher:ping` and closes with 4201 if no pong follows within
 *   `pongTimeoutSec`.
 *
 * @returns a promise that rejects with `Deno.errors.AddrInUse` when `port` is taken (and other
 *   `Deno.listen` errors); it never throws synchronously.
 *
 * @example
 * ```ts
 * import { World } from "./world.ts";
 * import { startPusherServer } from "./pusher_server.ts";
 * const world = new World();
 * const s = world.add({ userId: 2570626, slug: "bossmanjack", channelId: 2515504 });
 * const server = await startPusherServer({ world, key: "32cbd69e4b950bf97679" });
 * world.setLive(s.userId, true); // subscribers of channel.2515504 get App\Events\StreamerIsLive
 * await server.close();
 * ```
 */
export function startPusherServer(opts: PusherServerOptions): Promise<PusherServer> {
  // Listening is synchronous in Deno; the promise keeps the API open for async set-up and turns
  // listen errors into rejections.
  return Promise.resolve(opts).then(startSync);
}

function startSync(opts: PusherServerOptions): PusherServer {
  const hostname = opts.hostname ?? "127.0.0.1";
  const activityTimeoutSec = opts.activityTimeoutSec ?? 120;
  const pongTimeoutMs = (opts.pongTimeoutSec ?? 30) * 1000;
  const key = opts.key;

  const byChannel = new Map<string, Set<Conn>>();
  const conns = new Set<Conn>();
  const connsBySocketId = new Map<string, Conn>();
  const pairs = new Map<number, TcpPair>();
  let silent = false;
  let rejectCode: number | null = null;
  const refusals = new Map<string, { times: number; how: "subscription_error" | "pusher_error" }>();
  let connectionsTotal = 0;
  let refusedTotal = 0;
  let framesPublished = 0;
  let closed = false;

  const send = (c: Conn, text: string): boolean => {
    if (c.ws.readyState !== WebSocket.OPEN) return false;
    try {
      c.ws.send(text);
      return true;
    } catch {
      return false;
    }
  };

  const newSocketId = (): string => {
    const a = new Uint32Array(2);
    crypto.getRandomValues(a);
    return `${(a[0] % 1_000_000_000) + 1}.${(a[1] % 1_000_000_000) + 1}`;
  };

  const unsubscribe = (c: Conn, channel: string): void => {
    if (!c.channels.delete(channel)) return;
    const set = byChannel.get(channel);
    if (!set) return;
    set.delete(c);
    if (set.size === 0) byChannel.delete(channel);
  };

  const forget = (c: Conn): void => {
    if (!conns.delete(c)) return;
    connsBySocketId.delete(c.socketId);
    for (const ch of [...c.channels]) unsubscribe(c, ch);
  };

  const closePair = (p: TcpPair): void => {
    if (p.closed) return;
    p.closed = true;
    try {
      p.client.close();
    } catch { /* already closed */ }
    try {
      p.upstream.close();
    } catch { /* already closed */ }
  };

  /**
   * Cuts a pair as a network failure would, but without a TCP reset (which
   * would make the client's kernel discard bytes already delivered to it):
   * stop forwarding, half-close towards the client after the last forwarded
   * byte (the client sees EOF without a close frame: 1006), discard what the
   * client still sends until it closes, and close for good after 5 s anyway.
   */
  const cutPair = (p: TcpPair): void => {
    if (p.closed || p.cut) return;
    p.cut = true;
    try {
      p.upstream.close(); // ends the server-to-client pump, which then half-closes
    } catch { /* already closed */ }
    const t = setTimeout(() => closePair(p), 5000);
    p.done.finally(() => clearTimeout(t));
  };

  /** Cuts a connection: abrupt (no close frame) without code, else pusher:error + close frame. */
  const drop = (c: Conn, code?: number, reason?: string): void => {
    if (code === undefined || !validCloseCode(code)) {
      const p = c.pairKey !== undefined ? pairs.get(c.pairKey) : undefined;
      if (p) cutPair(p);
      else {
        try {
          c.ws.close();
        } catch { /* closed */ }
      }
      forget(c);
      return;
    }
    const msg = reason ?? codeMessage(code, key);
    if (code >= 4000) send(c, errorText(code, msg));
    try {
      c.ws.close(code, closeReason(msg));
    } catch { /* closed */ }
    forget(c);
  };

  const refuse = (c: Conn, code: number, message: string): void => {
    refusedTotal++;
    send(c, errorText(code, message));
    try {
      c.ws.close(code, closeReason(message));
    } catch { /* closed */ }
  };

  const handleClientFrame = (c: Conn, text: unknown): void => {
    if (silent || !c.accepted) return;
    c.lastRx = performance.now();
    c.pingSentAt = null;
    if (typeof text !== "string") return;
    let msg: { event?: unknown; data?: unknown; channel?: unknown };
    try {
      msg = JSON.parse(text);
    } catch {
      send(c, errorText(null, "Invalid JSON"));
      return;
    }
    if (msg === null || typeof msg !== "object") return;
    let data = msg.data;
    if (typeof data === "string") {
      try {
        data = JSON.parse(data);
      } catch { /* keep string */ }
    }
    const d = (data !== null && typeof data === "object" ? data : {}) as Record<string, unknown>;
    switch (msg.event) {
      case "pusher:ping":
        send(c, '{"event":"pusher:pong","data":"{}"}');
        return;
      case "pusher:pong":
        return;
      case "pusher:subscribe": {
        const channel = d.channel;
        if (typeof channel !== "string" || !CHANNEL_RE.test(channel)) {
          send(c, errorText(null, `Invalid channel name ${JSON.stringify(channel)}`));
          return;
        }
        if (channel.startsWith("private-") || channel.startsWith("presence-")) {
          const auth = d.auth;
          if (typeof auth !== "string" || !auth.startsWith(`${key}:`)) {
            send(
              c,
              errorText(
                4009,
                `Auth value for subscription to ${channel} is invalid: should be of format 'key:signature'`,
              ),
            );
            return;
          }
        }
        const refusal = refusals.get(channel);
        if (refusal && refusal.times > 0) {
          refusal.times--;
          send(
            c,
            refusal.how === "pusher_error"
              ? errorText(4302, `Subscription to ${channel} refused (simulated)`)
              : JSON.stringify({
                event: "pusher:subscription_error",
                channel,
                data: JSON.stringify({ type: "SubscriptionError", error: "refused", status: 403 }),
              }),
          );
          return;
        }
        if (!c.channels.has(channel)) {
          c.channels.add(channel);
          let set = byChannel.get(channel);
          if (!set) byChannel.set(channel, set = new Set());
          set.add(c);
        }
        send(c, frameText("pusher_internal:subscription_succeeded", "{}", channel));
        return;
      }
      case "pusher:unsubscribe": {
        if (typeof d.channel === "string") unsubscribe(c, d.channel);
        return;
      }
      default:
        return; // client events and unknown frames: ignored
    }
  };

  const onSocketOpen = (c: Conn, url: URL): void => {
    const m = /^\/app\/([^/]+)\/?$/.exec(url.pathname);
    const protocol = url.searchParams.get("protocol");
    if (!m) return refuse(c, 4005, codeMessage(4005, key));
    if (protocol === null) return refuse(c, 4008, codeMessage(4008, key));
    const pv = Number(protocol);
    if (!Number.isInteger(pv) || pv < 5 || pv > 7) return refuse(c, 4007, codeMessage(4007, key));
    const k = decodeURIComponent(m[1]);
    if (k !== key) return refuse(c, 4001, codeMessage(4001, k));
    if (rejectCode !== null) return refuse(c, rejectCode, codeMessage(rejectCode, key));
    c.accepted = true;
    conns.add(c);
    connsBySocketId.set(c.socketId, c);
    c.lastRx = performance.now();
    if (!silent) {
      send(
        c,
        frameText(
          "pusher:connection_established",
          JSON.stringify({ socket_id: c.socketId, activity_timeout: activityTimeoutSec }),
        ),
      );
    }
  };

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (req, info) => {
      if ((req.headers.get("upgrade") ?? "").toLowerCase() !== "websocket") {
        return new Response("Upgrade Required: this is a Pusher WebSocket endpoint\n", {
          status: 426,
        });
      }
      const url = new URL(req.url);
      // Read before upgrading: the getter throws once the request is upgraded.
      const remotePort = (info.remoteAddr as Deno.NetAddr).port;
      const { socket, response } = Deno.upgradeWebSocket(req);
      const c: Conn = {
        ws: socket,
        socketId: newSocketId(),
        channels: new Set(),
        lastRx: performance.now(),
        pingSentAt: null,
        accepted: false,
        pairKey: pairs.has(remotePort) ? remotePort : undefined,
      };
      connectionsTotal++;
      socket.onopen = () => {
        if (closed) {
          drop(c);
          return;
        }
        onSocketOpen(c, url);
      };
      socket.onmessage = (e) => handleClientFrame(c, e.data);
      socket.onclose = () => forget(c);
      socket.onerror = () => {/* a close event follows */};
      return response;
    },
  );
  const innerPort = server.addr.port;

  // --- TCP front ----------------------------------------------------------
  const listener = Deno.listen({ hostname, port: opts.port ?? 0 });
  /** Client to server: forwards until either side ends; after a cut, reads and discards until EOF. */
  const pumpUp = async (p: TcpPair): Promise<void> => {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await p.client.read(buf);
        if (n === null) break;
        if (p.cut) continue;
        let off = 0;
        while (off < n) off += await p.upstream.write(buf.subarray(off, n));
      }
    } catch { /* closed under us */ }
  };
  /**
   * Server to client: forwards, reporting each text frame once it is fully
   * written (`onFrameDelivered`); after a cut, half-closes the client side.
   */
  const pumpDown = async (p: TcpPair): Promise<void> => {
    const buf = new Uint8Array(64 * 1024);
    const scanner = opts.onFrameDelivered ? new WsFrameScanner() : null;
    try {
      while (!p.cut) {
        const n = await p.upstream.read(buf);
        if (n === null || p.cut) break;
        let off = 0;
        while (off < n) off += await p.client.write(buf.subarray(off, n));
        if (scanner) {
          for (const text of scanner.push(buf.subarray(0, n))) {
            try {
              opts.onFrameDelivered!(text);
            } catch (e) {
              log.warn("pusher sim: onFrameDelivered threw: {error}", { error: String(e) });
            }
          }
        }
      }
    } catch { /* closed under us */ }
    if (p.cut) {
      try {
        await p.client.closeWrite();
      } catch { /* already closed */ }
    }
  };
  const accepting = (async () => {
    for (;;) {
      let client: Deno.TcpConn;
      try {
        client = await listener.accept();
      } catch {
        return; // listener closed
      }
      if (closed) {
        client.close();
        continue;
      }
      let upstream: Deno.TcpConn;
      try {
        upstream = await Deno.connect({ hostname: "127.0.0.1", port: innerPort });
      } catch (e) {
        log.warn("pusher sim: cannot reach the inner server: {error}", { error: String(e) });
        client.close();
        continue;
      }
      try {
        client.setNoDelay(true);
        upstream.setNoDelay(true);
      } catch { /* best effort */ }
      const localPort = (upstream.localAddr as Deno.NetAddr).port;
      const pair: TcpPair = {
        client,
        upstream,
        closed: false,
        cut: false,
        done: Promise.resolve(),
      };
      // Either direction ending (client gone, SIGKILLed, server closed) ends the pair at once:
      // waiting for the other direction would keep a dead client's subscriptions alive until
      // the next write to it fails. A cut pair ends only when the client has closed its side.
      const end = () => closePair(pair);
      pair.done = Promise.all([
        pumpUp(pair).finally(end),
        pumpDown(pair).finally(() => {
          if (!pair.cut) end();
        }),
      ]).then(() => {
        pairs.delete(localPort);
      });
      pairs.set(localPort, pair);
    }
  })();

  // --- server-side keep-alive (§1.3/§1.4) ---------------------------------
  const sweepMs = Math.max(250, Math.min(5000, activityTimeoutSec * 250));
  const sweep = setInterval(() => {
    if (silent) return;
    const now = performance.now();
    for (const c of conns) {
      if (c.pingSentAt !== null) {
        if (now - c.pingSentAt > pongTimeoutMs) drop(c, 4201);
      } else if (now - c.lastRx > activityTimeoutSec * 1000) {
        c.pingSentAt = now;
        send(c, '{"event":"pusher:ping","data":"{}"}');
      }
    }
  }, sweepMs);

  // --- publishing ----------------------------------------------------------
  const deliver = (channel: string | null, text: string): number => {
    if (silent) return 0;
    let n = 0;
    if (channel === null) {
      for (const c of conns) if (send(c, text)) n++;
      return n;
    }
    const set = byChannel.get(channel);
    if (!set) return 0;
    for (const c of set) if (send(c, text)) n++;
    return n;
  };

  const publish = (channel: string, event: string, data: string | object): number => {
    const dataText = typeof data === "string" ? data : phpJsonEncode(data);
    const n = deliver(channel, frameText(event, dataText, channel));
    framesPublished++;
    if (opts.onFrameSent) {
      try {
        opts.onFrameSent(channel, event, Date.now(), performance.now(), n);
      } catch (e) {
        log.warn("pusher sim: onFrameSent threw: {error}", { error: String(e) });
      }
    }
    return n;
  };

  const unlisten = opts.world.onChange((change: WorldChange) => {
    if (closed) return;
    const s = change.streamer;
    const channel = `channel.${s.channelId}`;
    if (change.kind === "live") publish(channel, EV_LIVE, streamerIsLiveData(s));
    else publish(channel, EV_STOP, stopStreamBroadcastData(s));
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    if (closing) return closing;
    closed = true;
    closing = (async () => {
      unlisten();
      clearInterval(sweep);
      try {
        listener.close();
      } catch { /* closed */ }
      await accepting;
      for (const p of pairs.values()) closePair(p);
      await Promise.all([...pairs.values()].map((p) => p.done));
      for (const c of [...conns]) drop(c);
      await server.shutdown();
    })();
    return closing;
  };

  return {
    port: (listener.addr as Deno.NetAddr).port,
    hostname,
    get connectionsTotal() {
      return connectionsTotal;
    },
    get refusedTotal() {
      return refusedTotal;
    },
    get framesPublished() {
      return framesPublished;
    },
    close,
    publish,
    publishRaw: deliver,
    dropAll(code?: number, reason?: string): number {
      const all = [...conns];
      for (const c of all) drop(c, code, reason);
      return all.length;
    },
    dropSocket(socketId: string, code?: number, reason?: string): boolean {
      const c = connsBySocketId.get(socketId);
      if (!c) return false;
      drop(c, code, reason);
      return true;
    },
    setSilent(on: boolean) {
      silent = on;
      if (!on) {
        const now = performance.now();
        for (const c of conns) {
          c.lastRx = now;
          c.pingSentAt = null;
        }
      }
    },
    rejectNewConnections(code: number | null) {
      if (code !== null && !(Number.isInteger(code) && code >= 4000 && code <= 4999)) {
        throw new RangeError(`rejectNewConnections: code must be 4000–4999, got ${code}`);
      }
      rejectCode = code;
    },
    refuseSubscriptions(channel, times, how) {
      refusals.set(channel, { times, how });
    },
    connections: () => conns.size,
    subscriberCount: (channel: string) => byChannel.get(channel)?.size ?? 0,
    subscribedChannels: () => [...byChannel.keys()].sort(),
    sockets: () => [...conns].map((c) => ({ socketId: c.socketId, channels: c.channels.size })),
  };
}
