import assert from "node:assert/strict";
import { parseBenchArgs } from "./args.ts";

Deno.test("bench args: --two-instances runs N = 10,000, R = 2,000 three times into two_instances.json", () => {
  const a = parseBenchArgs(["--two-instances", "--duration", "15"]);
  assert.equal(a.mode, "two-instances");
  assert.equal(a.twoInstances, true);
  assert.deepEqual([a.ns, a.rates, a.runs, a.durationSec], [[10_000], [2_000], 3, 15]);
  assert.match(a.out, /bench\/results\/two_instances\.json$/);
  assert.throws(() => parseBenchArgs(["--two-instances", "--quick"]), /runs alone/);
  assert.throws(() => parseBenchArgs(["--two-instances", "--compare", "main"]), /--compare/);
});

Deno.test("bench args: --connect-spacing takes 0 and up; absent means kickmon's default", () => {
  assert.equal(parseBenchArgs([]).connectSpacingMs, null);
  assert.equal(parseBenchArgs(["--connect-spacing", "0"]).connectSpacingMs, 0);
  assert.equal(parseBenchArgs(["--connect-spacing=100"]).connectSpacingMs, 100);
  assert.throws(() => parseBenchArgs(["--connect-spacing", "-5"]), /connect-spacing/);
});
