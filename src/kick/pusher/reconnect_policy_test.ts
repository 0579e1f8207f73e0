import assert from "node:assert/strict";
import {
  closeCodeClass,
  reconnectDecision,
  type ReconnectPolicyOptions,
  refusalCause,
  SUBSCRIBE_ACK_TIMEOUT_MS,
  subscribeRetryDelayMs,
} from "./reconnect_policy.ts";

/** The subscriber's defaults (reconnectBaseMs 1 s, cap 30 s, refused 60 s, retry forever). */
const DEFAULTS: ReconnectPolicyOptions = {
  reconnectBaseMs: 1000,
  reconnectMaxMs: 30_000,
  refusedRetryMs: 60_000,
  maxReconnectAttempts: 0,
};

/** A jitter source that always returns `x`, counting its calls. */
function fixed(x: number): { random: () => number; calls: () => number } {
  let n = 0;
  return {
    random: () => {
      n++;
      return x;
    },
    calls: () => n,
  };
}

Deno.test("closeCodeClass: every class of the Pusher protocol (docs/kick-protocol.md §1.4)", async (t) => {
  await t.step("4000–4099 refused", () => {
    for (const c of [4000, 4001, 4003, 4004, 4009, 4050, 4099]) {
      assert.equal(closeCodeClass(c), "refused", String(c));
    }
  });
  await t.step("4100–4199 backoff", () => {
    for (const c of [4100, 4150, 4199]) assert.equal(closeCodeClass(c), "backoff", String(c));
  });
  await t.step("4200–4299 immediate", () => {
    for (const c of [4200, 4201, 4202, 4299]) {
      assert.equal(closeCodeClass(c), "immediate", String(c));
    }
  });
  await t.step("1000-range, abnormal, 4300+ and no code: other", () => {
    for (const c of [1000, 1001, 1005, 1006, 1011, 3999, 4300, 4301, 0]) {
      assert.equal(closeCodeClass(c), "other", String(c));
    }
    assert.equal(closeCodeClass(undefined), "other");
  });
});

Deno.test("reconnectDecision: 4000–4099 do not reconnect before refusedRetryMs (+ ≤ 10 %)", () => {
  for (const code of [4000, 4001, 4099]) {
    for (const failures of [1, 2, 10]) {
      assert.deepEqual(reconnectDecision(failures, code, DEFAULTS, () => 0), {
        state: "refused",
        delay: 60_000,
      });
      const d = reconnectDecision(failures, code, DEFAULTS, () => 0.999999);
      assert.equal(d.state, "refused");
      assert.ok(d.delay >= 60_000 && d.delay < 66_000, String(d.delay));
    }
  }
});

Deno.test("reconnectDecision: 4100–4199 reconnect after reconnectBaseMs + backoff", () => {
  // No jitter: exactly the base.
  assert.deepEqual(reconnectDecision(1, 4100, DEFAULTS, () => 0), {
    state: "backoff",
    delay: 1000,
  });
  // Full jitter on top of the base: base + random × min(cap, base × 2^(failures−1)).
  assert.deepEqual(reconnectDecision(1, 4150, DEFAULTS, () => 0.5), {
    state: "backoff",
    delay: 1500,
  });
  assert.deepEqual(reconnectDecision(3, 4199, DEFAULTS, () => 0.5), {
    state: "backoff",
    delay: 3000,
  });
  // Never above reconnectMaxMs.
  assert.deepEqual(reconnectDecision(20, 4100, DEFAULTS, () => 0.999), {
    state: "backoff",
    delay: 30_000,
  });
});

Deno.test("reconnectDecision: 4200–4299 reconnect at once for the first 3 failures", () => {
  for (const code of [4200, 4201, 4299]) {
    for (const failures of [1, 2, 3]) {
      const j = fixed(0.5);
      assert.deepEqual(reconnectDecision(failures, code, DEFAULTS, j.random), {
        state: "backoff",
        delay: 0,
      });
      assert.equal(j.calls(), 0, "no jitter drawn for an immediate reconnect");
    }
    // From the 4th consecutive failure on: normal full-jitter backoff (failures 4 → cap 8 s).
    assert.deepEqual(reconnectDecision(4, code, DEFAULTS, () => 0.5), {
      state: "backoff",
      delay: 4000,
    });
  }
});

Deno.test("reconnectDecision: 1000-range and abnormal closes back off with full jitter", async (t) => {
  for (const code of [1000, 1005, 1006, 1011, 4300, undefined]) {
    await t.step(`code ${code}`, () => {
      // random × min(reconnectMaxMs, reconnectBaseMs × 2^(failures−1))
      assert.deepEqual(reconnectDecision(1, code, DEFAULTS, () => 0.5), {
        state: "backoff",
        delay: 500,
      });
      assert.deepEqual(reconnectDecision(2, code, DEFAULTS, () => 0.5), {
        state: "backoff",
        delay: 1000,
      });
      assert.deepEqual(reconnectDecision(5, code, DEFAULTS, () => 0.5), {
        state: "backoff",
        delay: 8000,
      });
      assert.deepEqual(reconnectDecision(6, code, DEFAULTS, () => 0.5), {
        state: "backoff",
        delay: 15_000, // cap 30 s reached
      });
      assert.deepEqual(reconnectDecision(100, code, DEFAULTS, () => 0.5), {
        state: "backoff",
        delay: 15_000, // the exponent is bounded: no Infinity
      });
      assert.deepEqual(reconnectDecision(3, code, DEFAULTS, () => 0), {
        state: "backoff",
        delay: 0,
      });
    });
  }
});

Deno.test("reconnectDecision: the backoff numbers follow the options", () => {
  const o = { ...DEFAULTS, reconnectBaseMs: 200, reconnectMaxMs: 1000 };
  assert.equal(reconnectDecision(1, 1006, o, () => 0.999).delay < 200, true);
  assert.equal(reconnectDecision(3, 1006, o, () => 0.5).delay, 400);
  assert.equal(reconnectDecision(4, 1006, o, () => 0.5).delay, 500); // cap 1000
  assert.equal(reconnectDecision(1, 4100, o, () => 0.5).delay, 300);
  assert.equal(reconnectDecision(4, 4100, o, () => 0.9).delay, 1000); // base + 900 → cap
  assert.deepEqual(reconnectDecision(1, 4001, { ...o, refusedRetryMs: 5000 }, () => 0.5), {
    state: "refused",
    delay: 5250,
  });
});

Deno.test("reconnectDecision: maxReconnectAttempts gives up, whatever the code", () => {
  const o = { ...DEFAULTS, maxReconnectAttempts: 3 };
  for (const code of [1006, 4001, 4100, 4200, undefined]) {
    assert.notEqual(reconnectDecision(2, code, o, () => 0.5).state, "disconnected");
    assert.deepEqual(reconnectDecision(3, code, o, () => 0.5), { state: "disconnected", delay: 0 });
    assert.deepEqual(reconnectDecision(4, code, o, () => 0.5), { state: "disconnected", delay: 0 });
  }
  // 0 = retry forever.
  assert.equal(reconnectDecision(1_000, 1006, DEFAULTS, () => 0.5).state, "backoff");
});

Deno.test("reconnectDecision: default jitter stays within its bounds", () => {
  for (let i = 0; i < 200; i++) {
    const d = reconnectDecision(2, 1006, DEFAULTS).delay;
    assert.ok(d >= 0 && d < 2000, String(d));
    const r = reconnectDecision(1, 4001, DEFAULTS).delay;
    assert.ok(r >= 60_000 && r <= 66_000, String(r));
  }
});

Deno.test("subscribeRetryDelayMs: 1 s doubling to 60 s, ±25 % jitter", () => {
  assert.equal(SUBSCRIBE_ACK_TIMEOUT_MS, 10_000);
  assert.equal(subscribeRetryDelayMs(0, () => 0.5), 1000);
  assert.equal(subscribeRetryDelayMs(1, () => 0.5), 1000);
  assert.equal(subscribeRetryDelayMs(2, () => 0.5), 2000);
  assert.equal(subscribeRetryDelayMs(6, () => 0.5), 32_000);
  assert.equal(subscribeRetryDelayMs(7, () => 0.5), 60_000);
  assert.equal(subscribeRetryDelayMs(50, () => 0.5), 60_000);
  assert.equal(subscribeRetryDelayMs(1, () => 0), 750);
  assert.equal(subscribeRetryDelayMs(1, () => 1), 1250);
  for (let i = 0; i < 100; i++) {
    const d = subscribeRetryDelayMs(3);
    assert.ok(d >= 3000 && d <= 5000, String(d));
  }
});

Deno.test("refusalCause names the likely cause of each refusal", () => {
  assert.match(refusalCause(4000), /TLS/);
  assert.match(refusalCause(4001), /KICK_PUSHER_KEY/);
  assert.match(refusalCause(4003), /disabled/);
  assert.match(refusalCause(4004), /quota/);
  assert.match(refusalCause(4005), /path/);
  for (const c of [4006, 4007, 4008]) assert.match(refusalCause(c), /protocol/);
  assert.equal(refusalCause(4009), "unauthorized");
  assert.equal(refusalCause(4050), "refused by the server");
});
