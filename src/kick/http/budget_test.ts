import assert from "node:assert/strict";
import { RequestBudget } from "./budget.ts";

Deno.test("budget: a burst goes out at once, the next request waits its interval", async () => {
  const budget = new RequestBudget({ maxRequestsPerMinute: 120, burst: 2 }); // one per 500 ms
  const never = new AbortController().signal;
  const started = performance.now();
  assert.equal(await budget.take(never), true);
  assert.equal(await budget.take(never), true);
  assert.ok(performance.now() - started < 250, "the burst waited");
  assert.equal(await budget.take(never), true);
  assert.ok(performance.now() - started >= 490, "the third request did not wait");
});

Deno.test("budget: pause() holds back every caller; an abort ends a wait with false", async () => {
  const budget = new RequestBudget({ maxRequestsPerMinute: 6000 });
  const never = new AbortController().signal;
  budget.pause(150);
  const started = performance.now();
  assert.equal(await budget.take(never), true);
  assert.ok(performance.now() - started >= 140, "the pause was not honoured");

  budget.pause(10_000);
  const stop = new AbortController();
  const waiting = budget.take(stop.signal);
  stop.abort();
  assert.equal(await waiting, false);
  assert.throws(() => new RequestBudget({ maxRequestsPerMinute: 0 }), TypeError);
});
