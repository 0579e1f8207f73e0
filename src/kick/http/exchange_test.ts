import assert from "node:assert/strict";
import { keptHeaders, REDACTED_TOKEN, redactExchangeBody } from "./exchange.ts";

Deno.test("redactExchangeBody: token values are replaced, every other byte kept", () => {
  const body = '{ "access_token" : "a\\"b", "x":1, "n":{"refresh_token":"r1"},"id_token":"" }';
  const { body: out, removed } = redactExchangeBody(body);
  assert.equal(
    out,
    `{ "access_token" : "${REDACTED_TOKEN}", "x":1, "n":{"refresh_token":"${REDACTED_TOKEN}"},` +
      `"id_token":"${REDACTED_TOKEN}" }`,
  );
  assert.deepEqual(removed, ['a\\"b', "r1"]);
});

Deno.test("redactExchangeBody: a redacted body is a fixed point (a replay re-captures it unchanged)", () => {
  const once = redactExchangeBody('{"access_token":"tok","expires_in":7200}').body;
  const twice = redactExchangeBody(once);
  assert.equal(twice.body, once);
  assert.deepEqual(twice.removed, []);
});

Deno.test("redactExchangeBody: a body without token fields (HTML, API lists) is untouched", () => {
  for (const b of ["<html>Just a moment...</html>", '{"data":[{"slug":"x"}],"message":"OK"}', ""]) {
    assert.deepEqual(redactExchangeBody(b), { body: b, removed: [] });
  }
});

Deno.test("keptHeaders: format, limits, deprecation and Cloudflare headers; never cookies", () => {
  const h = new Headers({
    "content-type": "text/html",
    "set-cookie": "__cf_bm=secret",
    "cf-ray": "8f00-AMS",
    "x-ratelimit-remaining": "99",
    deprecation: "true",
    date: "Wed, 02 Dec 2026 05:00:00 GMT",
  });
  assert.deepEqual(keptHeaders(h), {
    "cf-ray": "8f00-AMS",
    "content-type": "text/html",
    deprecation: "true",
    "x-ratelimit-remaining": "99",
  });
});
