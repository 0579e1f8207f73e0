import assert from "node:assert/strict";
import { waitFor as sharedWaitFor } from "../wait_for.ts";
import PusherWorker from "pusher-js/worker";
import type Pusher from "pusher-js";
import { World } from "./world.ts";
import {
  formatKickTimestamp,
  phpJsonEncode,
  type PusherServer,
  startPusherServer,
  stopStreamBroadcastData,
  streamerIsLiveData,
} from "./pusher_server.ts";

const PusherImpl = PusherWorker as unknown as typeof Pusher.default;
const KEY = "32cbd69e4b950bf97679";
const FIXTURES = new URL("../../tests/fixtures/", import.meta.url);

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/** The shared poller, with this file's positional arguments. */
const waitFor = (cond: () => boolean, timeoutMs = 5000, what = "condition") =>
  sharedWaitFor(cond, { timeoutMs, intervalMs: 10, message: what });

interface Frame {
  event: string;
  data?: unknown;
  channel?: string;
}

/** A bare WebSocket client that records every frame verbatim. */
class RawClient {
  readonly texts: string[] = [];
  readonly closed: Promise<CloseEvent>;
  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((r) => ws.addEventListener("close", (e) => r(e), { once: true }));
    ws.addEventListener("message", (e) => this.texts.push(String(e.data)));
  }

  static async open(url: string): Promise<RawClient> {
    const ws = new WebSocket(url);
    const c = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", () => reject(new Error(`cannot open ${url}`)), { once: true });
    });
    return c;
  }

  frames(): Frame[] {
    return this.texts.map((t) => JSON.parse(t));
  }

  async next(event: string, from = 0, timeoutMs = 3000): Promise<{ text: string; frame: Frame }> {
    let found: { text: string; frame: Frame } | undefined;
    await waitFor(
      () => {
        for (let i = from; i < this.texts.length; i++) {
          const f = JSON.parse(this.texts[i]) as Frame;
          if (f.event === event) {
            found = { text: this.texts[i], frame: f };
            return true;
          }
        }
        return false;
      },
      timeoutMs,
      event,
    );
    return found!;
  }

  send(obj: unknown): void {
    this.ws.send(typeof obj === "string" ? obj : JSON.stringify(obj));
  }

  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closed;
  }
}

function url(
  server: PusherServer,
  key = KEY,
  query = "protocol=7&client=js&version=8.4.0-rc2&flash=false",
) {
  return `ws://127.0.0.1:${server.port}/app/${key}?${query}`;
}

/** A real pusher-js (worker build) client pointed at the simulator. */
function pusherClient(server: PusherServer, key = KEY, extra: Record<string, unknown> = {}) {
  return new PusherImpl(key, {
    cluster: "us2",
    wsHost: "127.0.0.1",
    wsPort: server.port,
    forceTLS: false,
    enabledTransports: ["ws"],
    ...extra,
  });
}

async function disconnectClient(p: Pusher.default, server: PusherServer, before: number) {
  p.disconnect();
  const i = PusherImpl.instances.indexOf(p);
  if (i >= 0) PusherImpl.instances.splice(i, 1);
  await waitFor(() => server.connections() <= before, 3000, "server to see the disconnect");
  await new Promise((r) => setTimeout(r, 50)); // client-side close event
}

// ---------------------------------------------------------------------------
// encoding helpers vs. captured data
// ---------------------------------------------------------------------------

Deno.test("StreamerIsLive data is byte-identical to the captured frame", async () => {
  const fx = JSON.parse(await Deno.readTextFile(new URL("streamer-is-live-1.json", FIXTURES)));
  const data = streamerIsLiveData({
    userId: 1,
    slug: "x",
    channelId: 2587387,
    live: true,
    livestreamId: 74265904,
    title: "4HEAD | NOPIXEL 4.0 | TTS",
    startedAt: "2025-09-14T16:11:18.412Z",
  });
  assert.equal(data, fx.pusher_frame.data);
});

Deno.test("StopStreamBroadcast data matches the captured shape", async () => {
  const fx = JSON.parse(await Deno.readTextFile(new URL("stop-stream-broadcast-1.json", FIXTURES)));
  const data = stopStreamBroadcastData({
    userId: 1,
    slug: "x",
    channelId: 2587387,
    live: false,
    livestreamId: 74265904,
    title: "",
    startedAt: null,
  });
  assert.equal(data, JSON.stringify(fx.pusher_data_decoded));
});

Deno.test("phpJsonEncode escapes like Kick's backend (\\/ and \\uXXXX)", async () => {
  const fx = JSON.parse(await Deno.readTextFile(new URL("livestream-updated-1.json", FIXTURES)));
  const raw: string = fx.pusher_frame.data;
  assert.equal(phpJsonEncode(JSON.parse(raw)), raw);
  assert.equal(phpJsonEncode({ t: "🌟é/" }), '{"t":"\\ud83c\\udf1f\\u00e9\\/"}');
  assert.equal(
    formatKickTimestamp(Date.UTC(2023, 5, 22, 5, 50, 32, 999)),
    "2023-06-22T05:50:32.000000Z",
  );
});

// ---------------------------------------------------------------------------
// wire protocol with a raw client (exact bytes)
// ---------------------------------------------------------------------------

Deno.test("handshake, subscribe, ping and publish frames are verbatim Pusher v7", async () => {
  const world = new World();
  const s = world.add({
    userId: 2570626,
    slug: "bossmanjack",
    channelId: 2515504,
    title: "$55 start / 🎰",
  });
  const sent: [string, string, number][] = [];
  const server = await startPusherServer({
    world,
    key: KEY,
    onFrameSent: (ch, ev, _at, _mono, n) => sent.push([ch, ev, n]),
  });
  const c = await RawClient.open(url(server));
  try {
    const hs = await c.next("pusher:connection_established");
    assert.equal(typeof hs.frame.data, "string", "handshake data must be a JSON string");
    const hsData = JSON.parse(hs.frame.data as string);
    assert.match(hsData.socket_id, /^\d+\.\d+$/);
    assert.equal(hsData.activity_timeout, 120);
    assert.equal(
      hs.text,
      `{"event":"pusher:connection_established","data":${
        JSON.stringify(JSON.stringify({ socket_id: hsData.socket_id, activity_timeout: 120 }))
      }}`,
    );

    // Client frame exactly as kick.com sends it (fixture pusher-subscribe-client-1.json).
    c.send({ event: "pusher:subscribe", data: { auth: "", channel: "channel.2515504" } });
    const ack = await c.next("pusher_internal:subscription_succeeded");
    const fxAck = JSON.parse(
      await Deno.readTextFile(new URL("pusher-subscription-succeeded-1.json", FIXTURES)),
    ).pusher_frame;
    assert.equal(ack.text, JSON.stringify({ ...fxAck, channel: "channel.2515504" }));
    assert.equal(server.subscriberCount("channel.2515504"), 1);
    assert.deepEqual(server.subscribedChannels(), ["channel.2515504"]);

    c.send({ event: "pusher:ping", data: {} });
    const pong = await c.next("pusher:pong");
    assert.equal(pong.text, '{"event":"pusher:pong","data":"{}"}');

    const mark = c.texts.length;
    world.setLive(s.userId, true);
    const live = await c.next("App\\Events\\StreamerIsLive", mark);
    assert.equal(live.frame.channel, "channel.2515504");
    assert.equal(typeof live.frame.data, "string");
    const ls = JSON.parse(live.frame.data as string).livestream;
    assert.deepEqual(Object.keys(ls), [
      "id",
      "channel_id",
      "session_title",
      "source",
      "created_at",
    ]);
    assert.equal(ls.channel_id, 2515504);
    assert.equal(ls.session_title, "$55 start / 🎰");
    assert.equal(ls.source, null);
    assert.match(ls.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000Z$/);
    assert.ok((live.frame.data as string).includes("\\/"), "PHP-style escaped slash");
    assert.ok((live.frame.data as string).includes("\\ud83c\\udfb0"), "PHP-style escaped emoji");
    assert.ok(live.text.startsWith('{"event":"App\\\\Events\\\\StreamerIsLive","data":"'));

    world.setLive(s.userId, false);
    const stop = await c.next("App\\Events\\StopStreamBroadcast", mark);
    assert.deepEqual(JSON.parse(stop.frame.data as string), {
      livestream: { id: ls.id, channel: { id: 2515504, is_banned: false } },
    });
    assert.deepEqual(sent, [
      ["channel.2515504", "App\\Events\\StreamerIsLive", 1],
      ["channel.2515504", "App\\Events\\StopStreamBroadcast", 1],
    ]);

    c.send({ event: "pusher:unsubscribe", data: { channel: "channel.2515504" } });
    await waitFor(() => server.subscriberCount("channel.2515504") === 0);
    assert.equal(world.setLive(s.userId, true).live, true);
    assert.equal(server.publish("channel.2515504", "x", {}), 0);
  } finally {
    await c.close();
    await server.close();
  }
});

Deno.test("refusals: wrong key 4001, bad protocol, rejectNewConnections, private channel", async () => {
  const server = await startPusherServer({ world: new World(), key: KEY });
  try {
    const bad = await RawClient.open(url(server, "eb1d5f283081a78b932c"));
    const err = await bad.next("pusher:error");
    assert.deepEqual(err.frame.data, {
      code: 4001,
      message:
        "App key eb1d5f283081a78b932c not in this cluster. Did you forget to specify the cluster?",
    });
    assert.equal((await bad.closed).code, 4001);

    const noProto = await RawClient.open(url(server, KEY, "client=js"));
    assert.equal((await noProto.closed).code, 4008);
    const oldProto = await RawClient.open(url(server, KEY, "protocol=3"));
    assert.equal((await oldProto.closed).code, 4007);

    server.rejectNewConnections(4004);
    const quota = await RawClient.open(url(server));
    assert.equal(((await quota.next("pusher:error")).frame.data as { code: number }).code, 4004);
    assert.equal((await quota.closed).code, 4004);
    server.rejectNewConnections(null);
    assert.throws(() => server.rejectNewConnections(1000), RangeError);

    const ok = await RawClient.open(url(server));
    await ok.next("pusher:connection_established");
    ok.send({ event: "pusher:subscribe", data: { auth: "", channel: "private-livestream.1" } });
    const e = await ok.next("pusher:error");
    assert.equal((e.frame.data as { code: number }).code, 4009);
    assert.equal(server.subscriberCount("private-livestream.1"), 0);
    assert.equal(ok.ws.readyState, WebSocket.OPEN);
    assert.equal(server.connectionsTotal, 5);
    assert.equal(server.refusedTotal, 4);
    await ok.close();

    const http = await fetch(`http://127.0.0.1:${server.port}/app/${KEY}`);
    assert.equal(http.status, 426);
    await http.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("dropAll: abrupt (no close frame) and with a code; dropSocket", async () => {
  const server = await startPusherServer({ world: new World(), key: KEY });
  try {
    const a = await RawClient.open(url(server));
    await a.next("pusher:connection_established");
    assert.equal(server.connections(), 1);
    assert.equal(server.dropAll(), 1);
    const ca = await a.closed;
    assert.equal(ca.wasClean, false, "abrupt drop must not be a clean close");
    assert.ok(ca.code === 1006 || ca.code === 0, `code ${ca.code}`);
    await waitFor(() => server.connections() === 0);

    const b = await RawClient.open(url(server));
    await b.next("pusher:connection_established");
    assert.equal(server.dropAll(4200), 1);
    const e = await b.next("pusher:error");
    assert.deepEqual(e.frame.data, { code: 4200, message: "Please reconnect immediately" });
    const cb = await b.closed;
    assert.equal(cb.code, 4200);
    assert.equal(cb.reason, "Please reconnect immediately");

    const c = await RawClient.open(url(server));
    const hs = await c.next("pusher:connection_established");
    const sid = JSON.parse(hs.frame.data as string).socket_id;
    assert.deepEqual(server.sockets(), [{ socketId: sid, channels: 0 }]);
    assert.equal(server.dropSocket("nope"), false);
    assert.equal(server.dropSocket(sid, 4100), true);
    assert.equal((await c.closed).code, 4100);
  } finally {
    await server.close();
  }
});

Deno.test("setSilent: no pong, no delivery, no handshake; server pings idle clients", async () => {
  const world = new World();
  const s = world.add({ userId: 1, slug: "a", channelId: 668 });
  const server = await startPusherServer({
    world,
    key: KEY,
    activityTimeoutSec: 1,
    pongTimeoutSec: 1,
  });
  try {
    const c = await RawClient.open(url(server));
    await c.next("pusher:connection_established");
    c.send({ event: "pusher:subscribe", data: { auth: "", channel: "channel.668" } });
    await c.next("pusher_internal:subscription_succeeded");

    // Idle for > activity_timeout: the server pings; answering keeps the socket.
    const ping = await c.next("pusher:ping", 0, 4000);
    assert.equal(ping.text, '{"event":"pusher:ping","data":"{}"}');
    c.send({ event: "pusher:pong", data: {} });

    server.setSilent(true);
    const mark = c.texts.length;
    c.send({ event: "pusher:ping", data: {} });
    world.setLive(s.userId, true);
    const fresh = await RawClient.open(url(server));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(c.texts.length, mark, "a silent server sends nothing");
    assert.equal(fresh.texts.length, 0, "no handshake while silent");
    assert.equal(c.ws.readyState, WebSocket.OPEN);
    server.setSilent(false);
    c.send({ event: "pusher:ping", data: {} });
    await c.next("pusher:pong", mark);
    await fresh.close();

    // A client that never answers the server's ping is closed with 4201.
    const mute = await RawClient.open(url(server));
    await mute.next("pusher:connection_established");
    assert.equal((await mute.closed).code, 4201);
    await c.close();
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// with the real pusher-js client
// ---------------------------------------------------------------------------

Deno.test("pusher-js: connects, subscribes, receives a world change, pings", async () => {
  const world = new World();
  const s = world.add({ userId: 904404, slug: "adinross", channelId: 875396 });
  const server = await startPusherServer({ world, key: KEY, activityTimeoutSec: 1 });
  const p = pusherClient(server, KEY, { pongTimeout: 2000 });
  try {
    const events: [string, unknown][] = [];
    let pongs = 0;
    p.connection.bind("message", (m: { event: string }) => {
      if (m.event === "pusher:pong") pongs++;
    });
    const ch = p.subscribe("channel.875396");
    ch.bind_global((ev: string, data: unknown) => events.push([ev, data]));
    await waitFor(() => events.some(([e]) => e === "pusher:subscription_succeeded"), 5000, "ack");
    assert.equal(p.connection.state, "connected");
    assert.match(p.connection.socket_id, /^\d+\.\d+$/);
    assert.equal(p.connection.activityTimeout, 1000, "activity_timeout read from the handshake");

    world.setLive(s.userId, true);
    await waitFor(
      () => events.some(([e]) => e === "App\\Events\\StreamerIsLive"),
      3000,
      "live event",
    );
    const [, data] = events.find(([e]) => e === "App\\Events\\StreamerIsLive")!;
    assert.equal((data as { livestream: { channel_id: number } }).livestream.channel_id, 875396);

    // pusher-js pings after activity_timeout (1 s) of silence; the server answers.
    await waitFor(() => pongs > 0, 5000, "pusher:pong");
    assert.equal(p.connection.state, "connected");
  } finally {
    await disconnectClient(p, server, 0);
    await server.close();
  }
});

Deno.test("pusher-js: a wrong key is refused with 4001 and pusher-js stops", async () => {
  const server = await startPusherServer({ world: new World(), key: KEY });
  const p = pusherClient(server, "wrongkey");
  try {
    const errors: unknown[] = [];
    p.connection.bind("error", (e: unknown) => errors.push(e));
    await waitFor(() => p.connection.state === "disconnected", 5000, "refusal");
    assert.ok(
      errors.some((e) => JSON.stringify(e).includes('"code":4001')),
      JSON.stringify(errors),
    );
    assert.equal(server.connectionsTotal, 1);
    assert.equal(server.refusedTotal, 1);
  } finally {
    await disconnectClient(p, server, 0);
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// scale
// ---------------------------------------------------------------------------

Deno.test("scale: 5,000 channels over 10 sockets, 10,000 frames delivered", async () => {
  const world = new World();
  const server = await startPusherServer({ world, key: KEY });
  const clients: RawClient[] = [];
  try {
    const CH = 5000, SOCKETS = 10, FRAMES = 10_000;
    for (let i = 0; i < CH; i++) {
      world.add({ userId: i + 1, slug: `s${i}`, channelId: 100_000 + i });
    }
    for (let k = 0; k < SOCKETS; k++) {
      const c = await RawClient.open(url(server));
      await c.next("pusher:connection_established");
      for (let i = k; i < CH; i += SOCKETS) {
        c.send({
          event: "pusher:subscribe",
          data: { auth: "", channel: `channel.${100_000 + i}` },
        });
      }
      clients.push(c);
    }
    await waitFor(() => server.subscribedChannels().length === CH, 10_000, "subscriptions");
    // Every client has its handshake and all its acks before the clock starts.
    await waitFor(
      () => clients.every((c) => c.texts.length === 1 + CH / SOCKETS),
      10_000,
      "acks",
    );
    const base = clients.map((c) => c.texts.length);
    const t0 = performance.now();
    for (let f = 0; f < FRAMES; f++) world.setLive((f % CH) + 1, f % (2 * CH) < CH);
    const publishMs = performance.now() - t0;
    await waitFor(
      () => clients.reduce((n, c, i) => n + c.texts.length - base[i], 0) >= FRAMES,
      20_000,
      "all frames",
    );
    const totalMs = performance.now() - t0;
    console.log(
      `published ${FRAMES} frames to ${CH} channels / ${SOCKETS} sockets in ${
        publishMs.toFixed(0)
      } ms, ` +
        `all received after ${totalMs.toFixed(0)} ms (${
          Math.round(FRAMES / (totalMs / 1000))
        } frames/s)`,
    );
    assert.equal(server.framesPublished, FRAMES);
    const received = clients.flatMap((c, i) => c.texts.slice(base[i]));
    assert.equal(received.length, FRAMES);
    assert.ok(received.every((t) => t.startsWith('{"event":"App\\\\Events\\\\')));
  } finally {
    for (const c of clients) await c.close();
    await server.close();
  }
});

Deno.test("a SIGKILLed client is forgotten at once (no frame needed to notice)", async () => {
  const server = await startPusherServer({ world: new World(), key: KEY });
  const code = `
    const ws = new WebSocket(${JSON.stringify(url(server))});
    ws.onmessage = (e) => {
      if (String(e.data).includes("connection_established")) {
        ws.send(JSON.stringify({ event: "pusher:subscribe", data: { auth: "", channel: "channel.1" } }));
      } else if (String(e.data).includes("subscription_succeeded")) console.log("subscribed");
    };`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("subscribed")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    assert.equal(server.subscriberCount("channel.1"), 1);
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    await waitFor(
      () => server.subscriberCount("channel.1") === 0,
      2000,
      "the dead client to be forgotten",
    );
    assert.equal(server.connections(), 0);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already dead */ }
    await server.close();
  }
});
