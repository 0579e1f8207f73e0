/**
 * The Pusher contracts, on one raw WebSocket ({@linkcode RawPusher}) to the
 * target's Pusher URL (kick-protocol.md §1.1–§1.3, §3):
 *
 * 1. `pusher:connection_established` whose `data` (a JSON string) carries
 *    `socket_id` and a numeric `activity_timeout` in seconds. pusher-js, not
 *    kickmon, parses the handshake (its `processHandshake` refuses one
 *    without `activity_timeout`), so {@linkcode HandshakeDataWire} states
 *    exactly what pusher-js requires; the program's `parsePusherEvent`
 *    (src/kick/pusher/frames.ts) must class it as a protocol frame.
 * 2. `pusher:subscribe` to `channel.{id}` of a live streamer →
 *    `pusher_internal:subscription_succeeded` on that channel (§1.2).
 * 3. `pusher:ping` → `pusher:pong` (§1.3).
 * 4. Every frame within the observation window is a JSON object with a
 *    string `event` ({@linkcode PusherFrameWire}, the shape of the
 *    program's `PusherFrame`; kickmon drops anything else, §10.2); every
 *    `App\Events\StreamerIsLive` / `StopStreamBroadcast` must become an
 *    observation of the program's `parsePusherEvent` (§3.1, §3.2), and every
 *    `App\Events\LivestreamUpdated` (§3.3) must carry the livestream core
 *    of `StreamerIsLiveDataSchema` and be ignored by the parser (kickmon
 *    does not act on it).
 *
 * @module
 */
import { z } from "zod";
import {
  channelName,
  parseKickTimestamp,
  parsePusherEvent,
  STOP_STREAM_BROADCAST,
  STREAMER_IS_LIVE,
  StreamerIsLiveDataSchema,
} from "../../src/kick/pusher/frames.ts";
import { type ContractRun, issueLines } from "./check.ts";
import { type RawFrame, RawPusher } from "./raw_pusher.ts";
import { ContractFailure, ContractSkip } from "./report.ts";

/** `App\Events\LivestreamUpdated` (§3.3); the program has no constant for it (it ignores the event). */
export const LIVESTREAM_UPDATED = "App\\Events\\LivestreamUpdated";

/**
 * Any Pusher frame: a JSON object with a string `event` (the program's
 * `PusherFrame` in src/kick/pusher/frames.ts; §10.2: anything else is
 * dropped before pusher-js sees it).
 *
 * @example
 * ```ts
 * PusherFrameWire.parse({ event: "pusher:pong", data: "{}" });
 * ```
 */
export const PusherFrameWire = z.object({
  event: z.string(),
  data: z.unknown().optional(),
  channel: z.string().optional(),
});

/**
 * Decoded `data` of `pusher:connection_established` as pusher-js requires it
 * (§1.3): `socket_id`, and `activity_timeout` in seconds.
 *
 * @example
 * ```ts
 * HandshakeDataWire.parse({ socket_id: "123.456", activity_timeout: 120 });
 * ```
 */
export const HandshakeDataWire = z.object({
  socket_id: z.string().min(1),
  activity_timeout: z.number().positive(),
});

/** The open socket, shared by the Pusher contracts of one run. */
export interface PusherState {
  /** The raw socket, once the connect contract opened it. */
  ws?: RawPusher;
  /** The channel subscribed to, once acknowledged. */
  subscribed?: string;
}

const FRAMES = "src/kick/pusher/frames.ts";

function frameFailure(run: ContractRun, expected: string, problems: string[], f?: RawFrame) {
  return new ContractFailure({
    endpoint: `pusher ${new URL(run.target.pusherUrl).host}`,
    expected,
    problems,
    raw: run.redactor.redact(f?.text ?? "(no frame)"),
  });
}

/** `data` decoded the way pusher-js decodes it: a JSON string is parsed, anything else kept. */
function decoded(f: RawFrame): unknown {
  const d = (f.json as { data?: unknown }).data;
  if (typeof d !== "string") return d;
  try {
    return JSON.parse(d);
  } catch {
    return d;
  }
}

function errorText(f: RawFrame): string {
  const d = decoded(f) as { code?: unknown; message?: unknown } | undefined;
  return `pusher:error ${String(d?.code ?? "(no code)")}: ${String(d?.message ?? "")}`;
}

/**
 * Contract 1: connect and read `pusher:connection_established`.
 *
 * @example
 * ```ts
 * await runContract(t, run, "pusher: connect", () => pusherConnect(run, state));
 * ```
 */
export async function pusherConnect(run: ContractRun, state: PusherState): Promise<string> {
  const expected =
    `pusher:connection_established with data {"socket_id","activity_timeout" (s)} (HandshakeDataWire, as pusher-js requires)`;
  state.ws = new RawPusher(run.target.pusherUrl);
  let f: RawFrame;
  try {
    f = await state.ws.next(
      (x) => x.event === "pusher:connection_established" || x.event === "pusher:error",
      run.target.timeoutMs ?? 15_000,
    );
  } catch (e) {
    throw frameFailure(run, expected, [(e as Error).message], state.ws.frames.at(-1));
  }
  if (f.event === "pusher:error") throw frameFailure(run, expected, [errorText(f)], f);
  const frame = PusherFrameWire.safeParse(f.json);
  if (!frame.success) throw frameFailure(run, expected, issueLines(frame.error), f);
  const problems: string[] = [];
  if (typeof frame.data.data !== "string") problems.push("data: expected a JSON string (§1.3)");
  const hs = HandshakeDataWire.safeParse(decoded(f));
  if (!hs.success) problems.push(...issueLines(hs.error, "data."));
  const kind = parsePusherEvent(frame.data.channel, frame.data.event, frame.data.data, Date.now());
  if (kind.kind !== "ignored" || kind.reason !== "pusher_protocol") {
    problems.push(`parsePusherEvent (${FRAMES}) gave ${JSON.stringify(kind)}, not pusher_protocol`);
  }
  if (problems.length || !hs.success) throw frameFailure(run, expected, problems, f);
  return `connection_established, socket_id ${hs.data.socket_id}, activity_timeout ${hs.data.activity_timeout} s`;
}

/**
 * Contract 2: subscribe to `channel.{id}` and read the acknowledgement;
 * then calls the target's `onSubscribed`.
 *
 * @example
 * ```ts
 * await runContract(t, run, "pusher: subscribe", () => pusherSubscribe(run, state));
 * ```
 */
export async function pusherSubscribe(run: ContractRun, state: PusherState): Promise<string> {
  const ws = state.ws;
  if (!ws || ws.closed) throw new ContractSkip("not connected: the pusher connect contract failed");
  const c = run.found.channel;
  if (!c) {
    throw new ContractSkip(
      "no channel id: no live stream from /livestreams and no unofficial lookup; " +
        "set KICK_CONTRACT_STREAMER to a live streamer",
    );
  }
  const channel = channelName(c.id);
  const expected = `pusher_internal:subscription_succeeded on ${channel} (§1.2)`;
  ws.send({ event: "pusher:subscribe", data: { auth: "", channel } });
  let f: RawFrame;
  try {
    f = await ws.next(
      (x) =>
        x.event === "pusher:error" ||
        ((x.event === "pusher_internal:subscription_succeeded" ||
          x.event === "pusher:subscription_error") && x.channel === channel),
      run.target.timeoutMs ?? 15_000,
    );
  } catch (e) {
    throw frameFailure(run, expected, [(e as Error).message], ws.frames.at(-1));
  }
  if (f.event !== "pusher_internal:subscription_succeeded") {
    throw frameFailure(
      run,
      expected,
      [f.event === "pusher:error" ? errorText(f) : String(f.event)],
      f,
    );
  }
  const frame = PusherFrameWire.safeParse(f.json);
  if (!frame.success) throw frameFailure(run, expected, issueLines(frame.error), f);
  state.subscribed = channel;
  await run.target.onSubscribed?.({ channelId: c.id, broadcasterUserId: c.userId, slug: c.slug });
  return `${channel} (${c.slug}, from ${c.from}): subscription_succeeded`;
}

/**
 * Contract 3: `pusher:ping` → `pusher:pong`.
 *
 * @example
 * ```ts
 * await runContract(t, run, "pusher: ping", () => pusherPing(run, state));
 * ```
 */
export async function pusherPing(run: ContractRun, state: PusherState): Promise<string> {
  const ws = state.ws;
  if (!ws || ws.closed) throw new ContractSkip("not connected: the pusher connect contract failed");
  const t0 = performance.now();
  ws.send({ event: "pusher:ping", data: {} });
  try {
    const f = await ws.next(
      (x) => x.event === "pusher:pong" || x.event === "pusher:error",
      run.target.timeoutMs ?? 15_000,
    );
    if (f.event !== "pusher:pong") {
      throw frameFailure(run, "pusher:pong (§1.3)", [errorText(f)], f);
    }
  } catch (e) {
    if (e instanceof ContractFailure) throw e;
    throw frameFailure(run, "pusher:pong (§1.3)", [(e as Error).message], ws.frames.at(-1));
  }
  return `pong in ${Math.round(performance.now() - t0)} ms`;
}

/** Bare and prefixed names, as the program accepts them (§10.2). */
function statusName(event: string | undefined): string | undefined {
  if (!event) return undefined;
  const bare = event.replace(/^App\\Events\\/, "");
  return ["StreamerIsLive", "StopStreamBroadcast", "LivestreamUpdated"].includes(bare)
    ? `App\\Events\\${bare}`
    : undefined;
}

/** The problems of one received frame (empty when it keeps the contract). */
function frameProblems(f: RawFrame, subscribed: string | undefined): string[] {
  if (f.jsonError) return [`not JSON: ${f.jsonError}`];
  const frame = PusherFrameWire.safeParse(f.json);
  if (!frame.success) return issueLines(frame.error);
  const name = statusName(frame.data.event);
  if (!name) return [];
  const { channel, event, data } = frame.data;
  const r = parsePusherEvent(channel, event, data, Date.now());
  if (name === LIVESTREAM_UPDATED) {
    const out: string[] = [];
    const d = StreamerIsLiveDataSchema.safeParse(decoded(f));
    if (!d.success) out.push(...issueLines(d.error, "data."));
    else if (d.data.livestream.created_at && !parseKickTimestamp(d.data.livestream.created_at)) {
      out.push(`data.livestream.created_at: parseKickTimestamp cannot read it`);
    }
    if (r.kind !== "ignored") out.push(`parsePusherEvent gave ${JSON.stringify(r)}, not ignored`);
    return out;
  }
  if (r.kind !== "observation") return [`parsePusherEvent (${FRAMES}): ${JSON.stringify(r)}`];
  const want = name === STREAMER_IS_LIVE ? "online" : "offline";
  const out: string[] = [];
  if (r.observation.status !== want) out.push(`status ${r.observation.status}, expected ${want}`);
  if (subscribed && channel !== subscribed) out.push(`on ${channel}, subscribed ${subscribed}`);
  return out;
}

/**
 * Contract 4: watches the subscribed channel for `observeSeconds` (or until
 * every `requireEvents` was seen), answering the server's pings, and checks
 * every frame received on this socket.
 *
 * @example
 * ```ts
 * await runContract(t, run, "pusher: status frames", () => pusherObserve(run, state));
 * ```
 */
export async function pusherObserve(run: ContractRun, state: PusherState): Promise<string> {
  const ws = state.ws;
  if (!ws || ws.closed) throw new ContractSkip("not connected: the pusher connect contract failed");
  const required = run.target.requireEvents ?? [];
  const seen = new Map<string, number>();
  const deadline = performance.now() + run.target.observeSeconds * 1000;
  let pinged = 0;
  for (;;) {
    for (const f of ws.frames.slice(pinged)) {
      if (f.event === "pusher:ping") ws.send({ event: "pusher:pong", data: {} });
    }
    pinged = ws.frames.length;
    const got = new Set(ws.frames.map((f) => statusName(f.event)).filter((n) => n !== undefined));
    if (required.length > 0 && required.every((e) => got.has(e))) break;
    const left = deadline - performance.now();
    if (left <= 0 || ws.closed) break;
    await ws.waitForFrame(Math.min(left, 1_000));
  }
  const problems: string[] = [];
  const bad: RawFrame[] = [];
  for (const [i, f] of ws.frames.entries()) {
    const n = statusName(f.event);
    if (n) seen.set(n, (seen.get(n) ?? 0) + 1);
    const p = frameProblems(f, state.subscribed);
    if (p.length) {
      bad.push(f);
      problems.push(
        ...p.map((x) => `frame ${i} (${f.event ?? "?"}): ${x}`),
        `frame ${i} raw: ${f.text}`,
      );
    }
  }
  for (const e of required) {
    if (!seen.has(e)) problems.push(`no ${e} within ${run.target.observeSeconds} s`);
  }
  if (problems.length) {
    throw frameFailure(
      run,
      `every frame a Pusher frame; every status frame parsed by parsePusherEvent (${FRAMES})`,
      problems.map((p) => run.redactor.redact(p)),
      bad[0],
    );
  }
  const counts = [...seen].map(([e, n]) => `${n} ${e.replace(/^App\\Events\\/, "")}`).join(", ");
  return counts
    ? `${ws.frames.length} frames, ${counts}: all parsed`
    : `${ws.frames.length} frames, no status frame within ${run.target.observeSeconds} s ` +
      "(Kick sends them only when a stream starts or stops; nothing else to check)";
}

/** Re-exported for the suite's module doc: the event names checked. */
export const STATUS_EVENTS: readonly string[] = [
  STREAMER_IS_LIVE,
  STOP_STREAM_BROADCAST,
  LIVESTREAM_UPDATED,
];
