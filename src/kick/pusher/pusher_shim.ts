/**
 * Everything this client needs to know about pusher-js's insides (the worker build, 8.x): its
 * runtime interface, capturing the native WebSocket and the global network listeners a new
 * client creates, removing them again, reading codes out of its `error` events, and the guard
 * on the socket's message handler. No other module touches pusher-js internals.
 *
 * **How close codes are observed.** pusher-js does not expose them uniformly
 * (an abrupt close arrives with code 0 and no error; a handshake refusal arrives
 * as `{type:"WebSocketError", error:{type:"PusherError", data:{code,message}}}`;
 * a `pusher:error` frame as `{type:"PusherError", data:{code,message}}`). So each
 * shard captures the **native WebSocket** pusher-js creates (the worker build
 * creates it synchronously inside `new Pusher()` via `Pusher.Runtime.createWebSocket`,
 * which is wrapped for the duration of that call, see {@linkcode createClient}) and
 * listens to its `close` event for the code; pusher-js `error` events supply the
 * code/message of handshake refusals and `pusher:error` frames ({@linkcode errorInfo}).
 *
 * @module
 */

import PusherWorker from "pusher-js/worker";
import type Pusher from "pusher-js";
import { getLogger } from "@logtape/logtape";

const log = getLogger(["kickmon", "pusher"]);

/**
 * The pusher-js client class (type of the worker build's default export).
 *
 * @example
 * ```ts
 * import type { PusherClient } from "./pusher_shim.ts";
 * const socketId = (p: PusherClient) => p.connection.socket_id;
 * ```
 */
export type PusherClient = Pusher.default;

/**
 * pusher-js client options.
 *
 * @example
 * ```ts
 * import type { PusherOptions } from "./pusher_shim.ts";
 * const o: PusherOptions = { cluster: "us2", enabledTransports: ["ws"] };
 * ```
 */
export type PusherOptions = Pusher.Options;

type PusherCtor = typeof Pusher.default;
const PusherImpl = PusherWorker as unknown as PusherCtor;

/** The slice of pusher-js's runtime object this module touches (worker build). */
interface WorkerRuntime {
  createWebSocket(url: string): WebSocket;
  getNetwork(): {
    bind(event: string, fn: (...a: unknown[]) => void): unknown;
    unbind(event: string, fn: (...a: unknown[]) => void): unknown;
    callbacks?: { get(name: string): { fn: (...a: unknown[]) => void }[] | undefined };
  };
}

/**
 * A global `online`/`offline` listener pusher-js registered for one client (pusher-js never
 * removes them: a leak per instance unless {@linkcode releaseClient} does).
 *
 * @example
 * ```ts
 * import type { NetCallback } from "./pusher_shim.ts";
 * const names = (cbs: NetCallback[]) => cbs.map((c) => c.event);
 * ```
 */
export interface NetCallback {
  readonly event: string;
  readonly fn: (...a: unknown[]) => void;
}

/**
 * A fresh pusher-js client with what {@linkcode createClient} captured while creating it.
 *
 * @example
 * ```ts
 * import type { CapturedClient } from "./pusher_shim.ts";
 * const hasSocket = (c: CapturedClient) => c.ws !== null;
 * ```
 */
export interface CapturedClient {
  readonly pusher: PusherClient;
  /** The native socket pusher-js created in its constructor, or null if none was captured. */
  readonly ws: WebSocket | null;
  /** The global network listeners this client registered. */
  readonly netCallbacks: NetCallback[];
}

/**
 * Hooks of {@linkcode createClient}, called with the shard number given to it.
 *
 * @example
 * ```ts
 * import type { ClientHooks } from "./pusher_shim.ts";
 * const hooks: ClientHooks = { onRejected: (shard, reason, detail) => console.log(shard, reason, detail) };
 * ```
 */
export interface ClientHooks {
  /** A frame was dropped (over {@linkcode MAX_FRAME_CHARS}) or pusher-js threw on it. */
  onRejected?(shard: number, reason: "too_large" | "client_error", detail: string): void;
  /** Creating the socket failed with Deno's `NotCapable` (called in a microtask). */
  onNotPermitted?(shard: number, error: Deno.errors.NotCapable): void;
  /**
   * Every text frame as received, verbatim, before pusher-js parses it (`kickmon capture`);
   * `receivedAt` is ms since epoch. Unset, it costs one check per frame. What it throws is
   * ignored.
   */
  onFrame?(shard: number, text: string, receivedAt: number): void;
}

/**
 * Creates a pusher-js client (which starts connecting at once), capturing the native WebSocket
 * it creates synchronously in its constructor (with {@linkcode guardMessages} installed on it)
 * and the global network listeners it registers.
 *
 * @param key Pusher app key (docs/kick-protocol.md §1.1).
 * @param options pusher-js options.
 * @param shard shard number passed to the hooks.
 * @param hooks see {@linkcode ClientHooks}.
 * @returns the client and what was captured.
 * @throws whatever the pusher-js constructor throws (the runtime is restored first).
 *
 * @example
 * ```ts
 * import { createClient, releaseClient } from "./pusher_shim.ts";
 * const c = createClient("k", { cluster: "local", wsHost: "127.0.0.1", wsPort: 8080, forceTLS: false }, 0, {});
 * releaseClient(c.pusher, c.ws, c.netCallbacks);
 * ```
 */
export function createClient(
  key: string,
  options: PusherOptions,
  shard: number,
  hooks: ClientHooks,
): CapturedClient {
  const runtime = PusherImpl.Runtime as unknown as WorkerRuntime;
  const network = runtime.getNetwork();
  const before = {
    online: [...(network.callbacks?.get("online") ?? [])].map((c) => c.fn),
    offline: [...(network.callbacks?.get("offline") ?? [])].map((c) => c.fn),
  };
  const created: WebSocket[] = [];
  const original = runtime.createWebSocket;
  const onRejected = hooks.onRejected;
  const onNotPermitted = hooks.onNotPermitted;
  const onFrame = hooks.onFrame;
  runtime.createWebSocket = function (this: unknown, url: string): WebSocket {
    let ws: WebSocket;
    try {
      ws = original.call(this, url);
    } catch (e) {
      // pusher-js swallows this and waits for a handshake that never comes;
      // a permission this build lacks is not a network problem to retry.
      if (e instanceof Deno.errors.NotCapable && onNotPermitted) {
        queueMicrotask(() => onNotPermitted(shard, e));
      }
      throw e;
    }
    guardMessages(ws, shard, onRejected, onFrame);
    created.push(ws);
    return ws;
  };
  let pusher: PusherClient;
  try {
    pusher = new PusherImpl(key, options);
  } finally {
    runtime.createWebSocket = original;
  }

  throttleActivityCheck(pusher);
  const netCallbacks: NetCallback[] = [];
  for (const event of ["online", "offline"] as const) {
    for (const c of network.callbacks?.get(event) ?? []) {
      if (!before[event].includes(c.fn)) netCallbacks.push({ event, fn: c.fn });
    }
  }
  return { pusher, ws: created[0] ?? null, netCallbacks };
}

/**
 * The native socket of a connected client, read from pusher-js's transport: the fallback when
 * {@linkcode createClient} could not capture it.
 *
 * @param pusher the client.
 * @returns the socket, or undefined when there is none that looks like a WebSocket.
 *
 * @example
 * ```ts
 * import { transportSocket, type PusherClient } from "./pusher_shim.ts";
 * const watch = (p: PusherClient) => transportSocket(p)?.addEventListener("close", () => {});
 * ```
 */
export function transportSocket(pusher: PusherClient): WebSocket | undefined {
  const ws = pusher.connection.connection?.transport?.socket as unknown as WebSocket | undefined;
  return ws && typeof ws.addEventListener === "function" ? ws : undefined;
}

/**
 * Disposes of a pusher-js client completely: unbinds and disconnects it, closes its native
 * socket, and removes its global registrations (`Pusher.instances`, network listeners).
 * Never throws.
 *
 * @param pusher the client.
 * @param ws its native socket, or null.
 * @param netCallbacks the listeners {@linkcode createClient} captured; emptied.
 * @returns true when a close of `ws` was started (the caller may wait for its `close` event).
 *
 * @example
 * ```ts
 * import { createClient, releaseClient } from "./pusher_shim.ts";
 * const c = createClient("k", { cluster: "local", wsHost: "127.0.0.1", wsPort: 8080, forceTLS: false }, 0, {});
 * if (releaseClient(c.pusher, c.ws, c.netCallbacks)) console.log("closing");
 * ```
 */
export function releaseClient(
  pusher: PusherClient,
  ws: WebSocket | null,
  netCallbacks: NetCallback[],
): boolean {
  try {
    pusher.connection.unbind();
    pusher.disconnect();
  } catch (e) {
    log.debug("pusher-js disconnect threw: {error}", { error: String(e) });
  }
  let closing = false;
  if (ws && ws.readyState !== WebSocket.CLOSED) {
    try {
      ws.close();
    } catch { /* already closing */ }
    closing = true;
  }
  const instances = PusherImpl.instances;
  const i = instances.indexOf(pusher);
  if (i >= 0) instances.splice(i, 1);
  const network = (PusherImpl.Runtime as unknown as WorkerRuntime).getNetwork();
  for (const { event, fn } of netCallbacks) {
    try {
      network.unbind(event, fn);
    } catch { /* best effort */ }
  }
  netCallbacks.length = 0;
  return closing;
}

/**
 * Code, message and type found in a pusher-js `error` event (see the module doc).
 *
 * @param err what pusher-js emitted.
 * @returns the fields found; none when `err` is not an object.
 *
 * @example
 * ```ts
 * import { errorInfo } from "./pusher_shim.ts";
 * errorInfo({ type: "PusherError", data: { code: 4001, message: "no such key" } });
 * // { type: "PusherError", code: 4001, message: "no such key" }
 * ```
 */
export function errorInfo(err: unknown): { code?: number; message?: string; type?: string } {
  if (err === null || typeof err !== "object") return {};
  const e = err as { type?: unknown; data?: unknown; error?: unknown };
  const inner = e.error !== null && typeof e.error === "object"
    ? e.error as { data?: unknown; type?: unknown }
    : undefined;
  const d = (e.data ?? inner?.data) as { code?: unknown; message?: unknown } | undefined;
  const out: { code?: number; message?: string; type?: string } = {};
  if (typeof e.type === "string") out.type = e.type;
  if (d && typeof d === "object") {
    if (typeof d.code === "number") out.code = d.code;
    if (typeof d.message === "string") out.message = d.message;
  }
  if (out.message === undefined && typeof e.error === "string") out.message = e.error;
  return out;
}

/**
 * Longest frame handed to pusher-js, in UTF-16 code units (status frames are ~200).
 *
 * @example
 * ```ts
 * import { MAX_FRAME_CHARS } from "./pusher_shim.ts";
 * console.log(MAX_FRAME_CHARS); // 262144
 * ```
 */
export const MAX_FRAME_CHARS = 256 * 1024;

/**
 * Interposes on the `onmessage` handler pusher-js installs on its native
 * WebSocket: a frame longer than {@linkcode MAX_FRAME_CHARS} is dropped and
 * reported, and an exception thrown by pusher-js while it handles a frame
 * (it throws on a frame without `event`, for one) is caught and reported
 * instead of escaping the event handler. Adds nothing per frame but one
 * length check and a `try`; with `onFrame`, a wrapper that hands it the text first
 * (chosen once, when pusher-js installs its handler: without it, no cost per frame).
 *
 * @param ws the native socket, before pusher-js sets `onmessage`.
 * @param shard shard number passed to `onRejected` and `onFrame`.
 * @param onRejected called for every dropped or failed frame.
 * @param onFrame the raw-frame observer (see {@linkcode ClientHooks.onFrame}), or undefined.
 *
 * @example
 * ```ts
 * import { guardMessages } from "./pusher_shim.ts";
 * const ws = new WebSocket("ws://127.0.0.1:8080/app/k");
 * guardMessages(ws, 0, (shard, reason, detail) => console.warn(shard, reason, detail));
 * ```
 */
export function guardMessages(
  ws: WebSocket,
  shard: number,
  onRejected: ClientHooks["onRejected"],
  onFrame?: ClientHooks["onFrame"],
): void {
  const proto = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
  if (!proto?.set || !proto.get) return;
  Object.defineProperty(ws, "onmessage", {
    configurable: true,
    get: () => proto.get!.call(ws),
    set: (fn: ((ev: MessageEvent) => void) | null) => {
      if (typeof fn !== "function") {
        proto.set!.call(ws, fn);
        return;
      }
      const guarded = (ev: MessageEvent) => {
        // A frame far beyond any status event is dropped before pusher-js parses it.
        if (typeof ev.data === "string" && ev.data.length > MAX_FRAME_CHARS) {
          onRejected?.(shard, "too_large", `${ev.data.length} characters`);
          return;
        }
        try {
          fn.call(ws, ev);
        } catch (e) {
          // pusher-js throws from inside its handler on some malformed frames
          // (e.g. no "event"); uncaught, that would end the process.
          onRejected?.(shard, "client_error", e instanceof Error ? e.message : String(e));
        }
      };
      // Without an observer (the monitor) the handler is the guard alone: no cost per frame.
      proto.set!.call(
        ws,
        onFrame === undefined ? guarded : (ev: MessageEvent) => {
          if (typeof ev.data === "string" && ev.data.length <= MAX_FRAME_CHARS) {
            try {
              onFrame(shard, ev.data, Date.now());
            } catch { /* an observer must not break the connection */ }
          }
          guarded(ev);
        },
      );
    },
  });
}

/** The slice of pusher-js's `ConnectionManager` (`pusher.connection`) the activity throttle touches. */
interface ActivityCheckManager {
  activityTimeout?: number;
  activityTimer?: { isRunning(): boolean } | null;
  resetActivityCheck(): void;
}

/**
 * Longest time, in ms, {@linkcode throttleActivityCheck} lets pass between re-arms of the
 * activity timer (and at most a tenth of the activity timeout).
 *
 * @example
 * ```ts
 * import { ACTIVITY_RESET_MIN_INTERVAL_MS } from "./pusher_shim.ts";
 * console.log(ACTIVITY_RESET_MIN_INTERVAL_MS); // 1000
 * ```
 */
export const ACTIVITY_RESET_MIN_INTERVAL_MS = 1000;

/**
 * Makes pusher-js re-arm its activity timer at most once per
 * {@linkcode ACTIVITY_RESET_MIN_INTERVAL_MS} (or a tenth of the activity
 * timeout, whichever is shorter) instead of on every frame. pusher-js clears
 * and creates a timer for each message it receives (so that it pings after
 * `activity_timeout` of silence, docs/kick-protocol.md §1.2); under load that
 * was ~17 µs of CPU per frame (issue 15, `--cpu-prof`). Skipping a re-arm only
 * makes the ping due up to that interval earlier after the last frame, which
 * Pusher answers like any other. The pong wait is never skipped: a reset while
 * the timer running is not the one the last re-arm made (pusher-js replaced it
 * with the pong timeout in `sendActivityCheck`), or after it stopped, goes
 * through at once.
 *
 * @param pusher a client just created by {@linkcode createClient}.
 *
 * @example
 * ```ts
 * import { throttleActivityCheck, type PusherClient } from "./pusher_shim.ts";
 * const calm = (p: PusherClient) => throttleActivityCheck(p);
 * ```
 */
export function throttleActivityCheck(pusher: PusherClient): void {
  const cm = pusher.connection as unknown as ActivityCheckManager;
  if (typeof cm?.resetActivityCheck !== "function") return;
  const reset = cm.resetActivityCheck.bind(cm);
  let armed: unknown = null;
  let armedAt = -Infinity;
  cm.resetActivityCheck = () => {
    const now = performance.now();
    const timeout = cm.activityTimeout;
    const window = typeof timeout === "number" && timeout > 0
      ? Math.min(ACTIVITY_RESET_MIN_INTERVAL_MS, timeout / 10)
      : 0;
    const timer = cm.activityTimer;
    if (timer && timer === armed && timer.isRunning() && now - armedAt < window) return;
    reset();
    armed = cm.activityTimer ?? null;
    armedAt = now;
  };
}
