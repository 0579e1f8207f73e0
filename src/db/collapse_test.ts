import assert from "node:assert/strict";
import type { Transition } from "../core/types.ts";
import { collapseLastTwo, netPerStreamer } from "./collapse.ts";

function t(streamerId: number, n: number, extra?: Record<string, unknown>): Transition {
  return {
    streamerId,
    status: n % 2 === 1 ? "online" : "offline",
    previousStatus: n % 2 === 1 ? "offline" : "online",
    observedAt: 1_700_000_000_000 + n,
    eventTime: 1_700_000_000_000 + n,
    source: "pusher",
    event: "App\\Events\\StreamerIsLive",
    ...(extra ? { extra } : {}),
  };
}

Deno.test("collapse: the last two pending of a streamer fold into the newest, counted", () => {
  const a1 = t(1, 1), b1 = t(2, 1), a2 = t(1, 2), a3 = t(1, 3, { collapsed: 2 });
  const queue = [a1, b1, a2, a3];
  const r = collapseLastTwo(queue, 0, t(1, 5), "why");
  assert.ok(r);
  assert.deepEqual(queue, [a1, b1]);
  assert.deepEqual(r.removed, [a3, a2]);
  // a3 stood for 2 more: 2 + the two removed.
  assert.deepEqual(r.next.extra, { collapsed: 4, collapsed_because: "why" });
  assert.equal(r.next.observedAt, t(1, 5).observedAt);
});

Deno.test("collapse: nothing in flight is touched; fewer than two pending is no collapse", () => {
  const a1 = t(1, 1), a2 = t(1, 2);
  const queue = [a1, a2];
  assert.equal(collapseLastTwo(queue, 1, t(1, 3), "why"), null);
  assert.deepEqual(queue, [a1, a2]);
});

Deno.test("collapse: net per streamer keeps an odd run's newest, an even run's last flip and back", () => {
  const odd = [t(1, 1), t(1, 2), t(1, 3)];
  const even = [t(2, 1), t(2, 2), t(2, 3), t(2, 4)];
  const short = [t(3, 1), t(3, 2)];
  const tail = [odd[0], even[0], short[0], odd[1], even[1], short[1], odd[2], even[2], even[3]];
  const { kept, dropped } = netPerStreamer(tail, "bound");
  assert.deepEqual(kept.map((k) => [k.streamerId, k.observedAt, k.extra?.collapsed]), [
    [3, short[0].observedAt, undefined],
    [3, short[1].observedAt, undefined],
    [1, odd[2].observedAt, 2],
    [2, even[2].observedAt, 2],
    [2, even[3].observedAt, undefined],
  ]);
  assert.equal(dropped.length, 2 + 2);
  // Every transition is either kept or counted in a kept one's `collapsed`.
  const counted = kept.reduce((n, k) => n + 1 + Number(k.extra?.collapsed ?? 0), 0);
  assert.equal(counted, tail.length);
});
