import assert from "node:assert/strict";
import { plausibleEventTime, StatusTracker } from "./tracker.ts";
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
  const at = Date.UTC(2025, 8, 14, 16, 11, 19);
  const d1 = t.observe(live(at, { eventTime: at - 100, livestreamId: 5 }));
  assert.equal(d1.kind, "transition");
  if (d1.kind !== "transition") return;
  assert.equal(d1.transition.previousStatus, "offline");
  assert.equal(d1.transition.eventTime, at - 100, "Kick's own time of the event");
  assert.equal(d1.transition.livestreamId, 5);
  assert.equal(t.observe(live(at + 1000)).kind, "duplicate");
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

const stop = (at: number, livestreamId: number): Observation => ({
  source: "pusher",
  key: { kind: "channel_id", channelId: 668 },
  status: "offline",
  observedAt: at,
  event: "App\\Events\\StopStreamBroadcast",
  livestreamId,
});

/** The statuses and livestream ids a decision commits, oldest first, with inferred ones marked. */
function steps(d: ReturnType<StatusTracker["observe"]>): string[] {
  if (d.kind !== "transition") return [d.kind];
  return [...(d.inferred ?? []), d.transition].map((t) =>
    `${t.status}:${t.livestreamId}${t.extra?.inferred ? "*" : ""}`
  );
}

Deno.test("tracker: a frame for a newer livestream infers the frames lost before it", () => {
  const t = new StatusTracker();
  t.replaceAll([rec()]);
  assert.deepEqual(steps(t.observe(live(1, { livestreamId: 10 }))), ["online:10"]);
  // StopStreamBroadcast(10) lost: StreamerIsLive(11) proves 10 ended.
  assert.deepEqual(steps(t.observe(live(2, { livestreamId: 11 }))), ["offline:10*", "online:11"]);
  assert.deepEqual(steps(t.observe(stop(3, 11))), ["offline:11"]);
  // StreamerIsLive(12) lost: its StopStreamBroadcast proves it started.
  assert.deepEqual(steps(t.observe(stop(4, 12))), ["online:12*", "offline:12"]);
  // Both frames of 13 lost and 14's stop seen while 14 was never seen: same rule.
  assert.deepEqual(steps(t.observe(live(5, { livestreamId: 15 }))), ["online:15"]);
  assert.deepEqual(steps(t.observe(stop(6, 16))), ["offline:15*", "online:16*", "offline:16"]);
  // Repeats and older livestreams infer nothing.
  assert.deepEqual(steps(t.observe(stop(7, 16))), ["duplicate"]);
  assert.deepEqual(steps(t.observe(stop(8, 9))), ["duplicate"]);
  const d = t.observe(live(9, { livestreamId: 17 }));
  assert.equal(d.kind === "transition" && d.transition.previousStatus, "offline");
  assert.equal(t.get(1)!.belief, "online");
});

Deno.test("tracker: no inference without a known livestream (start, or a source that names none)", () => {
  const t = new StatusTracker();
  t.replaceAll([rec({ status: "online" })]);
  // Believed online from the row: which livestream is unknown, so 20 is just a repeat.
  assert.deepEqual(steps(t.observe(live(1, { livestreamId: 20 }))), ["duplicate"]);
  // ...but it teaches the livestream: a later one infers the stop of 20.
  assert.deepEqual(steps(t.observe(live(2, { livestreamId: 21 }))), ["offline:20*", "online:21"]);
  // Reconciliation (no livestream id) says offline, then online: the stream is unknown again.
  const api = (at: number, status: "online" | "offline"): Observation => ({
    source: "reconcile",
    key: { kind: "broadcaster_user_id", userId: 676 },
    status,
    observedAt: at,
    event: "GET /channels",
  });
  assert.deepEqual(steps(t.observe(api(3, "offline"))), ["offline:undefined"]);
  assert.deepEqual(steps(t.observe(api(4, "online"))), ["online:undefined"]);
  assert.deepEqual(steps(t.observe(stop(5, 30))), ["offline:30"]);
});

Deno.test("tracker: livestreams remembered from history enable inference after a restart", () => {
  const t = new StatusTracker();
  t.replaceAll([rec({ status: "online" }), rec({ id: 2, kickUserId: 2, kickChannelId: 2 })]);
  const n = t.rememberLivestreams(
    new Map([
      [1, { status: "online" as const, livestreamId: 40 }],
      [2, { status: "online" as const, livestreamId: 7 }], // belief is offline: not taken
      [3, { status: "offline" as const, livestreamId: 9 }], // unknown streamer
    ]),
  );
  assert.equal(n, 1);
  assert.deepEqual(steps(t.observe(live(1, { livestreamId: 41 }))), ["offline:40*", "online:41"]);
  // A streamer that already learned its livestream from a frame keeps it.
  assert.equal(t.rememberLivestreams(new Map([[1, { status: "online", livestreamId: 3 }]])), 0);
});

Deno.test("plausibleEventTime: before Kick existed or far in the future is not Kick's time", () => {
  const now = Date.UTC(2026, 11, 1);
  assert.equal(plausibleEventTime(Date.UTC(2025, 8, 14), now), Date.UTC(2025, 8, 14));
  assert.equal(plausibleEventTime(now + 60_000, now), now + 60_000, "a minute of clock skew");
  for (const bad of [Date.UTC(9999, 11, 31), 0, Date.UTC(100, 0, 1), now + 10 * 60_000, NaN]) {
    assert.equal(plausibleEventTime(bad, now), undefined, String(bad));
  }
  assert.equal(plausibleEventTime(undefined, now), undefined);
});
