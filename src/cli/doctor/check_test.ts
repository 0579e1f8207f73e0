import assert from "node:assert/strict";
import {
  type CheckResult,
  envSecrets,
  errText,
  formatCheck,
  mask,
  result,
  round,
} from "./check.ts";

Deno.test("doctor check: a line keeps its remedy only on warn and fail", () => {
  const t = performance.now();
  assert.equal(result("x", t, "ok", "fine", "never shown").remedy, undefined);
  assert.equal(result("x", t, "warn", "hm", "do this").remedy, "do this");
  assert.equal(result("x", t, "fail", "bad", "do that").remedy, "do that");
  assert.ok(result("x", t, "ok", "fine").ms >= 0);
  assert.equal(round(12.345), 12.3);
});

Deno.test("doctor check: errText appends a cause that adds something", () => {
  assert.equal(
    errText(new Error("fetch failed", { cause: new Error("connection refused") })),
    "fetch failed: connection refused",
  );
  assert.equal(errText(new Error("x: boom", { cause: new Error("boom") })), "x: boom");
  assert.equal(errText("plain"), "plain");
});

Deno.test("doctor check: secrets are masked in detail and remedy, short ones left alone", () => {
  const checks: CheckResult[] = [
    { name: "a", status: "fail", detail: "token abc123 refused", remedy: "not abc123", ms: 1 },
    { name: "b", status: "ok", detail: "ab is too short to mask", ms: 2 },
  ];
  assert.deepEqual(mask(checks, ["abc123", "ab"]), [
    { name: "a", status: "fail", detail: "token *** refused", remedy: "not ***", ms: 1 },
    { name: "b", status: "ok", detail: "ab is too short to mask", ms: 2 },
  ]);
  assert.deepEqual(
    envSecrets({
      KICK_CLIENT_SECRET: "s3cret",
      DATABASE_PASSWORD: "pw",
      DATABASE_URL: "postgres://u:hunter%202@db/kickmon",
    }),
    ["s3cret", "hunter 2"],
  );
  assert.deepEqual(envSecrets({ DATABASE_URL: "not a url" }), []);
});

Deno.test("doctor check: one report line, with the remedy after an arrow", () => {
  assert.equal(
    formatCheck({ name: "oauth token", status: "ok", detail: "token obtained", ms: 12 }),
    "ok    oauth token             token obtained (12 ms)",
  );
  assert.equal(
    formatCheck({ name: "api /channels", status: "warn", detail: "d", remedy: "r", ms: 1 }),
    "warn  api /channels           d (1 ms) → r",
  );
});
