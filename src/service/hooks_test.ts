import assert from "node:assert/strict";
import { Hook } from "./hooks.ts";

Deno.test("hook: subscribers run in order; unsubscribe removes exactly one", () => {
  const hook = new Hook<number>();
  const seen: string[] = [];
  const f = (n: number) => seen.push(`f${n}`);
  const offA = hook.subscribe(f);
  hook.subscribe((n) => seen.push(`g${n}`));
  const offB = hook.subscribe(f);
  hook.emit(1);
  assert.deepEqual(seen, ["f1", "g1", "f1"]);
  offA();
  offA();
  seen.length = 0;
  hook.emit(2);
  assert.deepEqual(seen, ["g2", "f2"]);
  offB();
  assert.deepEqual(hook.size, 1);
});

Deno.test("hook: unsubscribing during emit does not skip the others; a throw reaches emit", () => {
  const hook = new Hook();
  const seen: string[] = [];
  let offFirst = () => {};
  offFirst = hook.subscribe(() => {
    seen.push("first");
    offFirst();
  });
  hook.subscribe(() => seen.push("second"));
  hook.emit();
  hook.emit();
  assert.deepEqual(seen, ["first", "second", "second"]);
  hook.subscribe(() => {
    throw new Error("boom");
  });
  assert.throws(() => hook.emit(), /boom/);
});
