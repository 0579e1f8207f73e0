import assert from "node:assert/strict";
import { UNOFFICIAL_RETRY_MAX_MS, unofficialRetryDelayMs } from "./reconciler.ts";

Deno.test("unofficial lookup retries: one interval, doubling, capped at 6 h", () => {
  assert.deepEqual(
    [1, 2, 3, 4].map((n) => unofficialRetryDelayMs(n, 60_000)),
    [60_000, 120_000, 240_000, 480_000],
  );
  assert.equal(unofficialRetryDelayMs(9, 60_000), 256 * 60_000);
  assert.equal(unofficialRetryDelayMs(10, 60_000), UNOFFICIAL_RETRY_MAX_MS);
  assert.equal(unofficialRetryDelayMs(10_000, 60_000), UNOFFICIAL_RETRY_MAX_MS);
});
