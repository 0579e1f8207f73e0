import assert from "node:assert/strict";
import { LogRateLimiter } from "../../log/logging.ts";
import { ChannelSubscriptions, type SubscriptionOwner } from "./channel_subscriptions.ts";
import type { PusherClient } from "./pusher_shim.ts";

type Handler = (event: string, data: unknown) => void;

/** The slice of a pusher-js client the book uses, recording what it is asked to do. */
function fakePusher() {
  const channels = new Map<string, { handlers: Handler[]; subscribed: boolean }>();
  const calls: string[] = [];
  const client = {
    subscribe(name: string) {
      calls.push(`subscribe ${name}`);
      let ch = channels.get(name);
      if (!ch) channels.set(name, ch = { handlers: [], subscribed: false });
      return {
        bind_global: (h: Handler) => ch.handlers.push(h),
      };
    },
    unsubscribe(name: string) {
      calls.push(`unsubscribe ${name}`);
      channels.delete(name);
    },
    channel(name: string) {
      const ch = channels.get(name);
      return ch && {
        subscribed: ch.subscribed,
        subscribe: () => calls.push(`resubscribe ${name}`),
        unbind_global: (h: Handler) => (ch.handlers = ch.handlers.filter((x) => x !== h)),
      };
    },
  };
  const emit = (name: string, event: string, data: unknown = {}) => {
    for (const h of channels.get(name)?.handlers ?? []) h(event, data);
  };
  return { pusher: client as unknown as PusherClient, calls, emit, channels };
}

function owner(names: string[]) {
  const events: [string, string][] = [];
  let acked = 0;
  let retried = 0;
  const o: SubscriptionOwner = {
    index: 0,
    channels: new Set(names),
    handlers: { onEvent: (ch, ev) => events.push([ch, ev]) },
    limit: new LogRateLimiter(3, 60_000),
    running: true,
    allAcked: () => acked++,
    retried: () => retried++,
  };
  return { o, events, acked: () => acked, retried: () => retried };
}

Deno.test("ChannelSubscriptions: app events reach onEvent, pusher:* events do not", () => {
  const f = fakePusher();
  const w = owner(["channel.1"]);
  const subs = new ChannelSubscriptions(f.pusher, w.o);
  try {
    subs.add("channel.1");
    subs.add("channel.1"); // the handler is bound once
    assert.deepEqual(f.calls, ["subscribe channel.1", "subscribe channel.1"]);
    assert.equal(f.channels.get("channel.1")?.handlers.length, 1);
    f.emit("channel.1", "App\\Events\\StreamerIsLive");
    f.emit("channel.1", "pusher:pong");
    f.emit("channel.1", "pusher_internal:member_added");
    assert.deepEqual(w.events, [["channel.1", "App\\Events\\StreamerIsLive"]]);
  } finally {
    subs.dispose();
  }
});

Deno.test("ChannelSubscriptions: allAcked once the connection is up and every channel acked", () => {
  const f = fakePusher();
  const w = owner(["channel.1", "channel.2"]);
  const subs = new ChannelSubscriptions(f.pusher, w.o);
  try {
    subs.add("channel.1");
    subs.add("channel.2");
    f.emit("channel.1", "pusher:subscription_succeeded");
    f.emit("channel.2", "pusher:subscription_succeeded");
    assert.equal(w.acked(), 0, "not before the connection is established");
    subs.markConnected();
    subs.checkAllAcked();
    assert.equal(w.acked(), 1);
    assert.equal(subs.acked, 2);
    assert.equal(subs.oldestPendingMs(), 0);
    subs.checkAllAcked();
    assert.equal(w.acked(), 1, "reported once");

    (w.o.channels as Set<string>).add("channel.3");
    subs.add("channel.3", true);
    assert.ok(subs.oldestPendingMs() >= 0);
    f.emit("channel.3", "pusher:subscription_succeeded");
    assert.equal(w.acked(), 2, "again after a channel was added");
  } finally {
    subs.dispose();
  }
});

Deno.test("ChannelSubscriptions: remove unbinds and unsubscribes; dispose silences the handlers", () => {
  const f = fakePusher();
  const w = owner(["channel.1", "channel.2"]);
  const subs = new ChannelSubscriptions(f.pusher, w.o);
  subs.add("channel.1");
  subs.add("channel.2");
  (w.o.channels as Set<string>).delete("channel.1");
  subs.remove("channel.1");
  assert.ok(f.calls.includes("unsubscribe channel.1"));
  f.emit("channel.1", "App\\Events\\StreamerIsLive");
  subs.dispose();
  f.emit("channel.2", "App\\Events\\StreamerIsLive");
  assert.deepEqual(w.events, [], "nothing after remove or dispose");
});

Deno.test("ChannelSubscriptions: a refused subscription is sent again after ~1 s", async () => {
  const f = fakePusher();
  const w = owner(["channel.1"]);
  const subs = new ChannelSubscriptions(f.pusher, w.o);
  try {
    subs.add("channel.1");
    subs.markConnected();
    f.emit("channel.1", "pusher:subscription_error", { status: 403 });
    await new Promise((r) => setTimeout(r, 1400)); // 1 s ± 25 %
    assert.equal(w.retried(), 1);
    assert.ok(f.calls.includes("resubscribe channel.1"), f.calls.join(", "));
  } finally {
    subs.dispose();
  }
});

Deno.test("ChannelSubscriptions: channels placed after a refusal do not postpone its retry", async () => {
  const names = Array.from({ length: 1000 }, (_, i) => `channel.${i + 1}`);
  const f = fakePusher();
  const w = owner(names);
  const subs = new ChannelSubscriptions(f.pusher, w.o);
  try {
    subs.add(names[0]);
    subs.markConnected();
    f.emit(names[0], "pusher:subscription_error", { status: 403 }); // retry due in ~1 s
    // 999 more, each unanswered for now (their own retry is due after the 10 s ack timeout).
    for (const n of names.slice(1)) subs.add(n, true);
    await new Promise((r) => setTimeout(r, 1400)); // 1 s ± 25 %
    assert.equal(w.retried(), 1);
    assert.deepEqual(f.calls.filter((c) => c.startsWith("resubscribe")), [
      `resubscribe ${names[0]}`,
    ]);
  } finally {
    subs.dispose();
  }
});
