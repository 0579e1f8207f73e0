/**
 * A ready-made {@linkcode Transition} for the database layer's unit tests
 * (spool and outage spool). Not used by the program.
 *
 * @module
 */
import type { Transition } from "../core/types.ts";

/**
 * A streamer going online through Pusher at a fixed time
 * (1,700,000,000,000 ms since the Unix epoch), with `extra` fields on top.
 *
 * @example
 * ```ts
 * import { sampleTransition } from "./sample_transition.ts";
 * sampleTransition(7, { receivedMono: 12.5 }).streamerId; // 7
 * ```
 */
export function sampleTransition(streamerId: number, extra: Partial<Transition> = {}): Transition {
  return {
    streamerId,
    status: "online",
    previousStatus: "offline",
    observedAt: 1_700_000_000_000,
    eventTime: 1_700_000_000_000,
    source: "pusher",
    event: "App\\Events\\StreamerIsLive",
    ...extra,
  };
}
