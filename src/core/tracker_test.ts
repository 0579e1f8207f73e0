import assert from "node:assert/strict";
import { StatusTracker } from "./tracker.ts";
import type { Observation, StreamerRecord } from "./types.ts";

const rec = (over: Partial<StreamerRecord> = {}): StreamerRecord => ({
  id: 1,
  username: "xqc",
  kickUserId: 676,
  kickChannelId: 668,
  status: "offline",
  isActive: true,
  statusObservedAt: null,
  ...over,
});

const live = (at: number, over: Partial<Observation> = {}): Observation => ({
  source: "pusher",
  key: { kind: "channel_id", channelId: 668 },
  status: "online",
  observedAt: at,
  event: "App\\Events\\StreamerIsLive",
  ...over,
});

Deno.test("tracker: a change is a transition, a repeat is a duplicate", () => {
  const t = new StatusTracker();
  t.replaceAll([rec()]);
  const d1 = t.observe(live(1000, { eventTime: 900, livestreamId: 5 }));
  assert.equal(d1.kind, "transition");
  if (d1.kind !== "transition") return;
  assert.equal(d1.transition.previousStatus, "offline");
  assert.equal(d1.transition.eventTime, 900);
  assert.equal(d1.transition.livestreamId, 5);
  assert.equal(t.observe(live(2000)).kind, "duplicate");
});

Deno.test("tracker: events for unknown or inactive streamers are refused", () => {
  const t = new StatusTracker();
  t.replaceAll([rec({ isActive: false })]);
  assert.equal(t.observe(live(1)).kind, "inactive");
  assert.equal(
    t.observe(live(1, { key: { kind: "channel_id", channelId: 999 } })).kind,
    "unknown_streamer",
  );
});

Deno.test("tracker: a reconcile result older than a newer event is stale", () => {
  const t = new StatusTracker();
  t.replaceAll([rec()]);
  assert.equal(t.observe(live(2000)).kind, "transition");
  const stale = t.observe({
    source: "reconcile",
    key: { kind: "broadcaster_user_id", userId: 676 },
    status: "offline",
    observedAt: 1500, // request sent before the Pusher event arrived
    event: "GET /channels",
  });
  assert.equal(stale.kind, "stale");
  const fresh = t.observe({
    source: "reconcile",
    key: { kind: "broadcaster_user_id", userId: 676 },
    status: "offline",
    observedAt: 2500,
    event: "GET /channels",
  });
  assert.equal(fresh.kind, "transition");
});

Deno.test("tracker: ids carried by payloads are learned once", () => {
  const t = new StatusTracker();
  t.replaceAll([rec({ kickChannelId: null })]);
  assert.deepEqual(t.channelIds(), []);
  const d = t.observe({
    source: "reconcile",
    key: { kind: "broadcaster_user_id", userId: 676 },
    status: "online",
    observedAt: 10,
    event: "GET /livestreams",
    channelId: 668,
  });
  assert.equal(d.kind, "transition");
  assert.deepEqual(d.kind === "transition" ? d.learned : null, {
    streamerId: 1,
    kickChannelId: 668,
    kickUserId: undefined,
  });
});

Deno.test("tracker: a resync keeps a belief that is ahead of the database", () => {
  const t = new StatusTracker();
  t.replaceAll([rec()]);
  const d = t.observe(live(10));
  assert.equal(d.kind, "transition");
  t.replaceAll([rec()]); // database still says offline: the write is pending
  assert.equal(t.get(1)?.belief, "online");
  if (d.kind === "transition") t.settle(d.transition, true);
  t.replaceAll([rec({ status: "online" })]);
  assert.equal(t.get(1)?.belief, "online");
  assert.deepEqual(t.counts(), { online: 1, offline: 0, unknown: 0, inactive: 0 });
  t.remove(1);
  assert.equal(t.size, 0);
  assert.equal(t.observe(live(20)).kind, "unknown_streamer");
});
