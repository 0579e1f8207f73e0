import assert from "node:assert/strict";
import { ConnectSlots } from "./connect_slots.ts";

Deno.test("connect slots: 200 attempts at once are spaced by the spacing, no closer", () => {
  let t = 1_000;
  const slots = new ConnectSlots(20, () => t);
  const starts = Array.from({ length: 200 }, () => t + slots.reserve(0));
  for (let i = 1; i < starts.length; i++) {
    assert.ok(
      starts[i] - starts[i - 1] >= 20,
      `attempt ${i} only ${starts[i] - starts[i - 1]} ms after ${i - 1}`,
    );
  }
  // 200 connections (50,000 channels at 250 each): the last attempt starts 3.98 s after the first.
  assert.equal(starts[199] - starts[0], 199 * 20);
  t += 10_000;
  assert.equal(slots.reserve(0), 0, "a later attempt is not held back by old slots");
});

Deno.test("connect slots: a backoff longer than the spacing is kept; reconnects queue behind it", () => {
  let t = 0;
  const slots = new ConnectSlots(100, () => t);
  assert.equal(slots.reserve(0), 0);
  assert.equal(slots.reserve(0), 100);
  assert.equal(slots.reserve(1_000), 1_000, "own backoff 1 s: the slot after it");
  assert.equal(slots.reserve(0), 1_100, "the next attempt waits for the spacing after that slot");
  t = 1_050;
  assert.equal(slots.reserve(0), 150, "waits relative to now");
});

Deno.test("connect slots: spacing 0 lets every attempt start at once; a negative one is refused", () => {
  const slots = new ConnectSlots(0, () => 5);
  assert.deepEqual([slots.reserve(0), slots.reserve(0), slots.reserve(0)], [0, 0, 0]);
  assert.throws(() => new ConnectSlots(-1), RangeError);
  assert.throws(() => new ConnectSlots(Number.NaN), RangeError);
});
