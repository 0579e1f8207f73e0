import assert from "node:assert/strict";
import { cpuModelOf, measureWakeCost } from "./machine.ts";

Deno.test("cpuModelOf: x86 model name, else an ARM line, else unknown", () => {
  assert.equal(cpuModelOf("processor\t: 0\nmodel name\t: AMD  EPYC 7B13\n"), "AMD EPYC 7B13");
  assert.equal(cpuModelOf("Hardware\t: BCM2835\n"), "BCM2835");
  assert.equal(cpuModelOf(""), "unknown");
});

Deno.test({
  name: "measureWakeCost: a child Deno reports CPU per timer wake, more than a system call's",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const w = await measureWakeCost(40, 1);
    assert.ok(w, "the probe ran");
    assert.equal(w.wakes, 40);
    // Any real wake costs more than 1 µs of CPU and less than a few ms.
    assert.ok(w.denoTimerWakeUs > 1 && w.denoTimerWakeUs < 5000, String(w.denoTimerWakeUs));
  },
});
