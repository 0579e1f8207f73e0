import assert from "node:assert/strict";
import { waitFor as sharedWaitFor } from "./helpers/database.ts";
import { World } from "../dev/simulator/world.ts";
import { type PusherServer, startPusherServer } from "../dev/simulator/pusher_server.ts";
import { PusherSubscriber, type PusherSubscriberOptions } from "../src/kick/pusher/subscriber.ts";
import { parsePusherEvent } from "../src/kick/pusher/frames.ts";
import PusherWorker from "pusher-js/worker";
import type Pusher from "pusher-js";

const PusherImpl = PusherWorker as unknown as typeof Pusher.default;

/** pusher-js global registrations that a torn-down client must not leave behind. */
function pusherGlobals(): { instances: number; online: number; offline: number } {
  const net = (PusherImpl.Runtime as unknown as {
    getNetwork(): { callbacks: { get(n: string): unknown[] | undefined } };
  }).getNetwork();
  return {
    instances: PusherImpl.instances.length,
    online: net.callbacks.get("online")?.length ?? 0,
    offline: net.callbacks.get("offline")?.length ?? 0,
  };
}

const KEY = "32cbd69e4b950bf97679";

/** The shared poller, with this file's positional arguments. */
const waitFor = (cond: () => boolean, timeoutMs = 5000, what = "condition") =>
  sharedWaitFor(cond, { timeoutMs, intervalMs: 10, message: what });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Recorder {
  events: { channel: string; event: string; data: unknown; at: number; mono: number }[];
  connected: { shard: number; socketId: string; reconnect: boolean; mono: number }[];
  subscribed: { shard: number; channels: number }[];
  disconnected: { shard: number; reason: string; code?: number }[];
  gaveUp: { shard: number; attempts: number }[];
}

function setup(
  server: PusherServer,
  opts: Partial<PusherSubscriberOptions> = {},
): { sub: PusherSubscriber; rec: Recorder } {
  const rec: Recorder = { events: [], connected: [], subscribed: [], disconnected: [], gaveUp: [] };
  const sub = new PusherSubscriber(
    {
      key: KEY,
      cluster: "us2",
      host: "127.0.0.1",
      port: server.port,
      tls: false,
      staggerMs: 20,
      ...opts,
    },
    {
      onEvent: (channel, event, data, at, mono) =>
        rec.events.push({ channel, event, data, at, mono }),
      onConnected: (shard, info) => rec.connected.push({ shard, ...info, mono: performance.now() }),
      onSubscribed: (shard, channels) => rec.subscribed.push({ shard, channels }),
      onDisconnected: (shard, reason, code) => rec.disconnected.push({ shard, reason, code }),
      onGiveUp: (shard, attempts) => rec.gaveUp.push({ shard, attempts }),
    },
  );
  return { sub, rec };
}

function allSubscribed(sub: PusherSubscriber): boolean {
  const snap = sub.snapshot();
  return snap.length > 0 &&
    snap.every((s) => s.state === "connected" && s.subscribed === s.channels);
}

Deno.test("subscribes and delivers Kick events with the channel name", async () => {
  const world = new World();
  const a = world.add({ userId: 2570626, slug: "bossmanjack", channelId: 2515504 });
  const b = world.add({ userId: 904404, slug: "adinross", channelId: 875396 });
  const server = await startPusherServer({ world, key: KEY });
  const { sub, rec } = setup(server);
  try {
    sub.setChannels([a.channelId, b.channelId]);
    assert.equal(sub.snapshot()[0].state, "disconnected", "nothing happens before start()");
    sub.start();
    await waitFor(() => allSubscribed(sub), 5000, "subscriptions");
    assert.deepEqual(server.subscribedChannels(), ["channel.2515504", "channel.875396"]);
    assert.equal(rec.connected.length, 1);
    assert.equal(rec.connected[0].reconnect, false);
    assert.deepEqual(rec.subscribed, [{ shard: 0, channels: 2 }]);
    const snap = sub.snapshot()[0];
    assert.equal(snap.socketId, rec.connected[0].socketId);
    assert.ok(snap.lastMessageAt !== null);

    world.setLive(a.userId, true);
    world.setLive(b.userId, true);
    world.setLive(a.userId, false);
    await waitFor(() => rec.events.length === 3, 3000, "3 events");
    assert.deepEqual(
      rec.events.map((e) => [e.channel, e.event]),
      [
        ["channel.2515504", "App\\Events\\StreamerIsLive"],
        ["channel.875396", "App\\Events\\StreamerIsLive"],
        ["channel.2515504", "App\\Events\\StopStreamBroadcast"],
      ],
    );
    // No pusher:* / pusher_internal:* events reach onEvent; the payload parses.
    const obs = rec.events.map((e) => parsePusherEvent(e.channel, e.event, e.data, e.at, e.mono));
    assert.deepEqual(obs.map((o) => o.kind === "observation" && o.observation.status), [
      "online",
      "online",
      "offline",
    ]);
  } finally {
    await sub.stop();
    await server.close();
  }
});

Deno.test("setChannels diff: adds and removes show on the server", async () => {
  const world = new World();
  const server = await startPusherServer({ world, key: KEY });
  const { sub } = setup(server);
  try {
    sub.setChannels([1, 2, 3]);
    sub.start();
    await waitFor(() => allSubscribed(sub), 5000, "initial subscriptions");
    const socketId = sub.snapshot()[0].socketId;
    sub.setChannels([2, 3, 4, 5, 5]);
    await waitFor(
      () => server.subscribedChannels().join() === "channel.2,channel.3,channel.4,channel.5",
      3000,
      "diff applied on the server",
    );
    await waitFor(() => allSubscribed(sub), 3000, "acks");
    assert.equal(sub.snapshot()[0].channels, 4);
    assert.equal(sub.snapshot()[0].socketId, socketId, "no reconnect for a diff");
    assert.equal(server.connectionsTotal, 1);
    assert.equal(sub.setChannels([2, 3, 4, 5, -2, 0, 1.5, NaN]), 4, "4 invalid ids skipped");
    assert.equal(sub.snapshot()[0].channels, 4, "invalid ids do not disturb valid ones");
  } finally {
    await sub.stop();
    await server.close();
  }
});

Deno.test("sharding: max 3 per connection, 7 channels → 3 sockets; empty shards close", async () => {
  const world = new World();
  const server = await startPusherServer({ world, key: KEY });
  const { sub } = setup(server, { maxChannelsPerConnection: 3 });
  try {
    sub.setChannels([11, 12, 13, 14, 15, 16, 17]);
    sub.start();
    await waitFor(
      () => allSubscribed(sub) && server.subscribedChannels().length === 7,
      5000,
      "7 subscriptions",
    );
    assert.equal(server.connections(), 3);
    assert.deepEqual(server.sockets().map((s) => s.channels).sort(), [1, 3, 3]);
    assert.deepEqual(sub.snapshot().map((s) => [s.index, s.channels]), [[0, 3], [1, 3], [2, 1]]);

    // Removing from a full shard leaves room that new channels fill first; channels that stay
    // keep their socket.
    const before = new Map(sub.snapshot().map((s) => [s.index, s.socketId]));
    sub.setChannels([11, 12, 14, 15, 16, 17, 18]);
    await waitFor(() => server.subscriberCount("channel.18") === 1, 3000, "channel 18");
    assert.equal(server.subscriberCount("channel.13"), 0);
    assert.deepEqual(sub.snapshot().map((s) => [s.index, s.channels]), [[0, 3], [1, 3], [2, 1]]);
    for (const s of sub.snapshot()) assert.equal(s.socketId, before.get(s.index));

    sub.setChannels([11, 12]);
    await waitFor(() => server.connections() === 1, 3000, "empty shards closed");
    assert.deepEqual(sub.snapshot().map((s) => [s.index, s.channels]), [[0, 2]]);
    assert.deepEqual(server.subscribedChannels(), ["channel.11", "channel.12"]);
  } finally {
    await sub.stop();
    await server.close();
  }
});

Deno.test("connect spacing: no attempt, first or after a cut, starts before its slot", async () => {
  // staggerMs is KICK_PUSHER_CONNECT_SPACING: 3 shards at 400 ms apart. Each attempt waits
  // for its slot before opening its socket, so the third connection cannot be up before
  // 2 × 400 ms after start(), nor after the drop (every shard reconnects through the slots).
  const spacing = 400;
  const world = new World();
  const server = await startPusherServer({ world, key: KEY });
  const { sub, rec } = setup(server, {
    maxChannelsPerConnection: 1,
    staggerMs: spacing,
    reconnectBaseMs: 1,
  });
  try {
    sub.setChannels([31, 32, 33]);
    const started = performance.now();
    sub.start();
    await waitFor(() => allSubscribed(sub) && rec.connected.length === 3, 8000, "3 connections");
    const firsts = rec.connected.map((c) => c.mono - started).sort((a, b) => a - b);
    assert.ok(firsts[1] >= spacing - 5, `second connection up ${firsts[1]} ms after start`);
    assert.ok(firsts[2] >= 2 * spacing - 5, `third connection up ${firsts[2]} ms after start`);

    const dropped = performance.now();
    assert.equal(server.dropAll(), 3);
    await waitFor(
      () => allSubscribed(sub) && rec.connected.filter((c) => c.reconnect).length === 3,
      8000,
      "3 reconnections",
    );
    const again = rec.connected.filter((c) => c.reconnect).map((c) => c.mono - dropped)
      .sort((a, b) => a - b);
    assert.ok(again[2] >= 2 * spacing - 5, `third reconnection up ${again[2]} ms after the cut`);
  } finally {
    await sub.stop();
    await server.close();
  }
});

Deno.test("dropAll (abrupt, 1006) → reconnects, re-subscribes everything, reconnect:true", async () => {
  const world = new World();
  const s = world.add({ userId: 1, slug: "a", channelId: 668 });
  const server = await startPusherServer({ world, key: KEY });
  const { sub, rec } = setup(server, { maxChannelsPerConnection: 2 });
  const globalsBefore = pusherGlobals();
  try {
    sub.setChannels([668, 669, 670, 671, 672]);
    sub.start();
    await waitFor(() => allSubscribed(sub), 5000, "subscriptions");
    assert.equal(server.connections(), 3);
    const first = new Set(sub.snapshot().map((x) => x.socketId));

    assert.equal(server.dropAll(), 3);
    await waitFor(() => rec.disconnected.length === 3, 3000, "3 disconnects");
    assert.ok(rec.disconnected.every((d) => d.code === 1006), JSON.stringify(rec.disconnected));
    await waitFor(
      () => allSubscribed(sub) && server.subscribedChannels().length === 5,
      8000,
      "re-subscription after the drop",
    );
    const reconnects = rec.connected.filter((c) => c.reconnect);
    assert.equal(reconnects.length, 3);
    assert.deepEqual(reconnects.map((c) => c.shard).sort(), [0, 1, 2]);
    for (const x of sub.snapshot()) {
      assert.ok(!first.has(x.socketId), "a new socket_id after reconnecting");
      assert.equal(x.reconnects, 1);
      assert.equal(x.lastCloseCode, 1006);
    }
    world.setLive(s.userId, true);
    await waitFor(
      () => rec.events.some((e) => e.channel === "channel.668"),
      3000,
      "event after reconnect",
    );
    assert.equal(pusherGlobals().instances, globalsBefore.instances + 3, "only live clients");
    assert.equal(pusherGlobals().online, globalsBefore.online + 3, "only live clients");
  } finally {
    await sub.stop();
    await server.close();
  }
  assert.deepEqual(pusherGlobals(), globalsBefore, "6 clients torn down without leftovers");
});

Deno.test("4200 close → reconnects at once (< 1.5 s) even with a long backoff base", async () => {
  const server = await startPusherServer({ world: new World(), key: KEY });
  const { sub, rec } = setup(server, { reconnectBaseMs: 20_000 });
  try {
    sub.setChannels([5, 6]);
    sub.start();
    await waitFor(() => allSubscribed(sub), 5000, "subscriptions");
    const t0 = performance.now();
    server.dropAll(4200);
    await waitFor(
      () => rec.connected.some((c) => c.reconnect),
      1500,
      "immediate reconnect after 4200",
    );
    const ms = rec.connected.find((c) => c.reconnect)!.mono - t0;
    assert.equal(rec.disconnected[0].code, 4200);
    await waitFor(() => allSubscribed(sub), 2000, "re-subscription");
    console.log(`reconnected ${ms.toFixed(0)} ms after a 4200 close`);
  } finally {
    await sub.stop();
    await server.close();
  }
});

Deno.test("4001 refusal → one attempt per refusedRetryMs window, error state 'refused'", async () => {
  const server = await startPusherServer({ world: new World(), key: KEY });
  server.rejectNewConnections(4001);
  const { sub, rec } = setup(server, { refusedRetryMs: 3000, reconnectBaseMs: 10 });
  try {
    sub.setChannels([7]);
    sub.start();
    await waitFor(() => sub.snapshot()[0].state === "refused", 3000, "refused state");
    const snap = sub.snapshot()[0];
    assert.equal(snap.lastCloseCode, 4001);
    assert.ok(snap.nextAttemptAt !== null && snap.nextAttemptAt - Date.now() > 2000);
    await sleep(2500);
    assert.equal(server.connectionsTotal, 1, "no second attempt inside the refusedRetryMs window");
    assert.equal(rec.disconnected.length, 0, "never connected, so no onDisconnected");

    server.rejectNewConnections(null); // e.g. the key was fixed
    await waitFor(() => allSubscribed(sub), 4000, "connection after the refusal window");
    assert.equal(server.connectionsTotal, 2);
    assert.equal(rec.connected.length, 1);
  } finally {
    await sub.stop();
    await server.close();
  }
});

Deno.test("wrong key (handshake refusal 4001) is classified as refused", async () => {
  const server = await startPusherServer({ world: new World(), key: KEY });
  const { sub } = setup(server, { key: "eb1d5f283081a78b932c", refusedRetryMs: 60_000 });
  try {
    sub.setChannels([7]);
    sub.start();
    await waitFor(() => sub.snapshot()[0].state === "refused", 3000, "refused state");
    assert.equal(sub.snapshot()[0].lastCloseCode, 4001);
    assert.match(sub.snapshot()[0].lastCloseReason ?? "", /not in this cluster/);
  } finally {
    await sub.stop(); // cancels the 60 s retry timer
    await server.close();
  }
});

Deno.test("silent server → shard declared dead and replaced; recovers when the server talks again", async () => {
  const world = new World();
  const s = world.add({ userId: 1, slug: "a", channelId: 668 });
  const server = await startPusherServer({ world, key: KEY, activityTimeoutSec: 2 });
  const { sub, rec } = setup(server, {
    pongTimeoutMs: 1000,
    connectTimeoutMs: 2000,
    reconnectBaseMs: 200,
    reconnectMaxMs: 1000,
  });
  try {
    sub.setChannels([668]);
    sub.start();
    await waitFor(() => allSubscribed(sub), 5000, "subscriptions");
    const attemptsBefore = server.connectionsTotal;
    const t0 = performance.now();
    server.setSilent(true);
    // activity timeout 2 s + pong timeout 1 s + a few s of slack.
    await waitFor(() => rec.disconnected.length === 1, 6000, "the deaf socket to be declared dead");
    await waitFor(() => server.connectionsTotal > attemptsBefore, 3000, "a replacement connection");
    console.log(
      `silent socket replaced after ${(performance.now() - t0).toFixed(0)} ms: ${
        rec.disconnected[0].reason
      }`,
    );
    server.setSilent(false);
    await waitFor(
      () => rec.connected.some((c) => c.reconnect) && allSubscribed(sub),
      8000,
      "recovery",
    );
    world.setLive(s.userId, true);
    await waitFor(() => rec.events.length === 1, 3000, "event after recovery");
  } finally {
    await sub.stop();
    await server.close();
  }
});

Deno.test("unreachable server: fast failures, backoff, onGiveUp after maxReconnectAttempts", async () => {
  const server = await startPusherServer({ world: new World(), key: KEY });
  const port = server.port;
  await server.close(); // nothing listens on the port any more
  const rec: Recorder = { events: [], connected: [], subscribed: [], disconnected: [], gaveUp: [] };
  const sub = new PusherSubscriber(
    {
      key: KEY,
      cluster: "us2",
      host: "127.0.0.1",
      port,
      tls: false,
      reconnectBaseMs: 50,
      reconnectMaxMs: 200,
      maxReconnectAttempts: 4,
    },
    { onEvent() {}, onGiveUp: (shard, attempts) => rec.gaveUp.push({ shard, attempts }) },
  );
  try {
    sub.setChannels([1]);
    sub.start();
    await waitFor(() => rec.gaveUp.length === 1, 5000, "give up");
    assert.deepEqual(rec.gaveUp, [{ shard: 0, attempts: 4 }]);
    const snap = sub.snapshot()[0];
    assert.equal(snap.state, "disconnected");
    assert.equal(snap.reconnects, 3);
    assert.equal(snap.lastCloseCode, 1006);
    await sleep(300);
    assert.equal(sub.snapshot()[0].reconnects, 3, "no attempts after giving up");
  } finally {
    await sub.stop();
  }
});

Deno.test("stop() while handshakes are pending leaves no timers or sockets", async () => {
  const server = await startPusherServer({ world: new World(), key: KEY });
  server.setSilent(true); // handshakes never complete
  const { sub } = setup(server, { maxChannelsPerConnection: 1 });
  sub.setChannels([1, 2, 3]);
  sub.start();
  await waitFor(() => server.connectionsTotal === 3, 3000, "3 pending connections");
  assert.ok(sub.snapshot().every((s) => s.state === "connecting"));
  await sub.stop();
  assert.ok(sub.snapshot().every((s) => s.state === "disconnected"));
  assert.throws(() => sub.start(), Error);
  await sub.stop(); // idempotent
  await server.close();
});

Deno.test("an exception in onEvent is contained", async () => {
  const world = new World();
  const s = world.add({ userId: 1, slug: "a", channelId: 9 });
  const server = await startPusherServer({ world, key: KEY });
  let calls = 0;
  const sub = new PusherSubscriber(
    { key: KEY, cluster: "us2", host: "127.0.0.1", port: server.port, tls: false },
    {
      onEvent() {
        calls++;
        throw new Error("boom");
      },
    },
  );
  try {
    sub.setChannels([9]);
    sub.start();
    await waitFor(() => allSubscribed(sub), 5000, "subscription");
    world.setLive(s.userId, true);
    world.setLive(s.userId, false);
    await waitFor(() => calls === 2, 3000, "both events despite the throw");
    assert.equal(sub.snapshot()[0].state, "connected");
  } finally {
    await sub.stop();
    await server.close();
  }
});

Deno.test("throughput: 2,000 channels over 4 shards at ~2,000 frames/s, nothing lost", async () => {
  const world = new World();
  const CH = 2000, RATE = 2000, SECONDS = 2, TICK_MS = 10;
  for (let i = 0; i < CH; i++) world.add({ userId: i + 1, slug: `s${i}`, channelId: 500_000 + i });
  const sentAt = new Map<string, number[]>();
  const server = await startPusherServer({
    world,
    key: KEY,
    onFrameSent: (channel, _event, _at, mono) => {
      let q = sentAt.get(channel);
      if (!q) sentAt.set(channel, q = []);
      q.push(mono);
    },
  });
  const latencies: number[] = [];
  const sub = new PusherSubscriber(
    {
      key: KEY,
      cluster: "us2",
      host: "127.0.0.1",
      port: server.port,
      tls: false,
      maxChannelsPerConnection: 500,
    },
    {
      onEvent(channel, event, data, at, mono) {
        const r = parsePusherEvent(channel, event, data, at, mono);
        if (r.kind !== "observation") throw new Error(`unexpected ${JSON.stringify(r)}`);
        latencies.push(mono - sentAt.get(channel)!.shift()!);
      },
    },
  );
  try {
    sub.setChannels(world.all().map((s) => s.channelId));
    sub.start();
    await waitFor(() => allSubscribed(sub), 10_000, "2,000 subscriptions");
    assert.equal(server.connections(), 4);
    const total = RATE * SECONDS;
    let n = 0;
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      // Paced by elapsed time, so timer drift does not lower the rate.
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - t0) * RATE) / 1000));
        for (; n < due; n++) world.setLive((n % CH) + 1, Math.floor(n / CH) % 2 === 0);
        if (n >= total) {
          clearInterval(timer);
          resolve();
        }
      }, TICK_MS);
    });
    await waitFor(() => latencies.length === total, 10_000, "every frame");
    const secs = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    const q = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
    console.log(
      `${total} frames in ${secs.toFixed(2)} s (${Math.round(total / secs)} frames/s): ` +
        `server send → onEvent latency p50 ${q(0.5).toFixed(2)} ms, p99 ${
          q(0.99).toFixed(2)
        } ms, ` +
        `max ${latencies[latencies.length - 1].toFixed(2)} ms`,
    );
  } finally {
    await sub.stop();
    await server.close();
  }
});

Deno.test("a busy socket that falls quiet pings, gets its pong and stays up (throttled activity timer)", async () => {
  // pusher-js re-arms its activity timer at most every min(1 s, timeout/10)
  // (pusher_shim.ts throttleActivityCheck): a burst of frames must neither make
  // it miss the pong after a quiet spell nor stop it pinging.
  const world = new World();
  world.add({ userId: 1, slug: "a", channelId: 668 });
  const server = await startPusherServer({ world, key: KEY, activityTimeoutSec: 2 });
  const { sub, rec } = setup(server, { pongTimeoutMs: 1000, reconnectBaseMs: 200 });
  const burst = async (n: number) => {
    for (let i = 0; i < n; i++) {
      server.publish("channel.668", "App\\Events\\FollowersUpdated", { followersCount: i });
      await sleep(20);
    }
  };
  try {
    sub.setChannels([668]);
    sub.start();
    await waitFor(() => allSubscribed(sub), 5000, "subscriptions");
    await burst(100); // ~2 s of frames every 20 ms: the timer is re-armed about every 200 ms
    // Quiet for 2 × (activity timeout + pong timeout): kickmon pings (it would
    // reconnect if the pong were not seen as activity), the server pings too.
    await sleep(6000);
    await burst(50);
    await waitFor(() => rec.events.length === 150, 3000, "all 150 frames delivered");
    assert.equal(rec.disconnected.length, 0, JSON.stringify(rec.disconnected));
    assert.equal(rec.connected.length, 1);
    assert.equal(server.connectionsTotal, 1);
  } finally {
    await sub.stop();
    await server.close();
  }
});
