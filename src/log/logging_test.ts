import assert from "node:assert/strict";
import { LogRateLimiter, redactSecrets, registerSecret } from "./logging.ts";

Deno.test("redactSecrets replaces registered secrets, raw and URL-encoded", () => {
  registerSecret("p@ss w0rd");
  registerSecret("ab"); // too short to register: would redact ordinary text
  assert.equal(
    redactSecrets("dsn postgres://u:p%40ss%20w0rd@h/db and p@ss w0rd; ab"),
    "dsn postgres://u:[REDACTED]@h/db and [REDACTED]; ab",
  );
});

Deno.test("LogRateLimiter allows N lines per key per window and counts the rest", () => {
  const l = new LogRateLimiter(2, 1000);
  assert.deepEqual([l.allow("a", 0), l.allow("a", 10), l.allow("a", 20)], [true, true, false]);
  assert.equal(l.suppressed("a"), 1);
  assert.equal(l.allow("b", 20), true, "keys are independent");
  assert.equal(l.allow("a", 1000), true, "a new window starts");
  assert.equal(l.suppressed("a"), 0);
});
