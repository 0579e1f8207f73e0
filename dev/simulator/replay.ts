/**
 * Replay of a capture directory (`kickmon capture`, format in
 * `src/kick/capture.ts`) through the simulator, so that what an operator
 * captured from the real Kick becomes a regression test:
 *
 * - **Pusher**: every captured app-event frame on a channel (not the
 *   `pusher:*` / `pusher_internal:*` protocol frames, which the server makes
 *   itself) is sent, verbatim, in order, to the sockets subscribed to its
 *   channel. The timeline starts once every captured channel has a subscriber
 *   and every captured API path has been asked for at least once (in the
 *   capture, the API pass came first: so a reconciliation cannot answer with
 *   the older truth after a newer frame), or `startAfterMs` after the first
 *   channel got a subscriber: a frame's delay is its time after the
 *   capture's first subscription acknowledgement, divided by `speed`.
 * - **API**: a request is answered with the captured answer of the same
 *   method, path and query (in capture order, the last one repeated once
 *   they are used up), else of the same method and path; anything else is
 *   left to the world. Authorization is not checked for captured answers
 *   (the captured token is a placeholder).
 *
 * @module
 */
import { type CapturedAnswer, type CapturedFrame, readCapture } from "../../src/kick/capture.ts";
import type { CaptureManifest } from "../../src/kick/capture.ts";
import type { FaultResponse } from "./api_server.ts";
import type { PusherServer } from "./pusher_server.ts";
import { abortableSleep } from "../../src/util/abortable_sleep.ts";

/**
 * Options of a replay.
 *
 * @example
 * ```ts
 * import type { ReplayOptions } from "./replay.ts";
 * const fast: ReplayOptions = { dir: "capture", speed: 10 };
 * ```
 */
export interface ReplayOptions {
  /** The capture directory. */
  readonly dir: string;
  /** Time compression: gaps between frames are divided by it (default 1; `Infinity`: no waits). */
  readonly speed?: number;
  /**
   * Start the timeline this long after the first captured channel got a subscriber, even if
   * another channel has none or a captured path was not asked for, ms (default 10 000).
   */
  readonly startAfterMs?: number;
}

/**
 * A loaded capture, ready to be replayed.
 *
 * @example
 * ```ts
 * import { loadReplay } from "./replay.ts";
 * const r = await loadReplay({ dir: "capture" });
 * console.log(r.frames.length, r.manifest.streamers);
 * ```
 */
export interface Replay {
  /** The capture's manifest. */
  readonly manifest: CaptureManifest;
  /** The frames that will be sent (app events on a channel), in order. */
  readonly frames: readonly CapturedFrame[];
  /** Every captured answer, in order. */
  readonly answers: readonly CapturedAnswer[];
  /** The answer for a request, or undefined (for `ApiServerOptions.answer`). */
  answer(method: string, url: URL): FaultResponse | undefined;
  /** Runs the Pusher timeline on `server` (see the module doc); resolves after the last frame or `stop()`. */
  play(server: PusherServer): Promise<void>;
  /** Frames sent so far. */
  readonly framesSent: number;
  /** Answers given so far. */
  readonly answersGiven: number;
  /** Ends the timeline. */
  stop(): void;
}

const isAppFrame = (f: CapturedFrame) =>
  f.channel !== null && f.event !== null && !/^pusher(_internal)?:/.test(f.event);

/**
 * Loads a capture directory for replay.
 *
 * @param opts the directory and timing.
 * @returns the replay.
 * @throws {Deno.errors.NotFound} when the directory or a listed file is missing.
 *
 * @example
 * ```ts
 * import { loadReplay } from "./replay.ts";
 * const replay = await loadReplay({ dir: "capture", speed: 5 });
 * ```
 */
export async function loadReplay(opts: ReplayOptions): Promise<Replay> {
  const { manifest, frames: all, answers } = await readCapture(opts.dir);
  const speed = opts.speed ?? 1;
  if (!(speed > 0)) throw new RangeError(`speed must be > 0, got ${speed}`);
  const startAfterMs = opts.startAfterMs ?? 10_000;
  const frames = all.filter(isAppFrame);
  const firstAck = all.find((f) => f.event === "pusher_internal:subscription_succeeded");
  const base = firstAck?.offsetMs ?? 0;
  const channels = [...new Set(frames.map((f) => f.channel!))];

  const keyOf = (method: string, url: URL) => `${method} ${url.pathname}${url.search}`;
  const exact = new Map<string, CapturedAnswer[]>();
  const byPath = new Map<string, CapturedAnswer>();
  for (const a of answers) {
    const k = keyOf(a.method, a.url);
    exact.set(k, [...exact.get(k) ?? [], a]);
    byPath.set(`${a.method} ${a.url.pathname}`, a);
  }
  const used = new Map<string, number>();
  /** `METHOD /path` of every captured answer not asked for yet. */
  const unasked = new Set(byPath.keys());
  let framesSent = 0;
  let answersGiven = 0;
  const stopped = new AbortController();
  const wait = (ms: number) => abortableSleep(ms, stopped.signal);

  return {
    manifest,
    frames,
    answers,
    get framesSent() {
      return framesSent;
    },
    get answersGiven() {
      return answersGiven;
    },
    answer(method, url) {
      const k = keyOf(method, url);
      const list = exact.get(k);
      let a: CapturedAnswer | undefined;
      if (list) {
        const i = used.get(k) ?? 0;
        used.set(k, i + 1);
        a = list[Math.min(i, list.length - 1)];
      } else {
        a = byPath.get(`${method} ${url.pathname}`);
      }
      if (!a) return undefined;
      unasked.delete(`${method} ${url.pathname}`);
      answersGiven++;
      return { status: a.status, body: a.body, headers: { ...a.headers } };
    },
    async play(server) {
      let firstSeen: number | null = null;
      while (!stopped.signal.aborted) {
        const subscribed = channels.filter((c) => server.subscriberCount(c) > 0).length;
        if (subscribed > 0 && firstSeen === null) firstSeen = performance.now();
        if (subscribed === channels.length && unasked.size === 0) break;
        if (firstSeen !== null && performance.now() - firstSeen >= startAfterMs) break;
        await wait(20);
      }
      const t0 = performance.now();
      for (const f of frames) {
        const due = Number.isFinite(speed) ? Math.max(0, f.offsetMs - base) / speed : 0;
        const left = due - (performance.now() - t0);
        if (left > 0) await wait(left);
        if (stopped.signal.aborted) return;
        server.publishRaw(f.channel, f.text);
        framesSent++;
      }
    },
    stop() {
      stopped.abort();
    },
  };
}
