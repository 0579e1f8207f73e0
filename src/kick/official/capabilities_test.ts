import assert from "node:assert/strict";
import {
  classifyAnswer,
  EndpointCapabilities,
  type EndpointCapability,
  TRACKED_ENDPOINTS,
} from "./capabilities.ts";

Deno.test("capabilities: 404/410 are gone, 2xx available, Deprecation/Sunset deprecated, the rest decides nothing", () => {
  assert.equal(classifyAnswer(404, new Headers()), "gone");
  assert.equal(classifyAnswer(410, new Headers()), "gone");
  assert.equal(classifyAnswer(200, new Headers()), "available");
  assert.equal(classifyAnswer(204, new Headers()), "available");
  assert.equal(classifyAnswer(200, new Headers({ deprecation: "@1782172800" })), "deprecated");
  assert.equal(classifyAnswer(200, new Headers({ deprecation: "true" })), "deprecated");
  assert.equal(
    classifyAnswer(200, new Headers({ sunset: "Thu, 31 Dec 2026 23:59:59 GMT" })),
    "deprecated",
  );
  for (const s of [400, 401, 403, 429, 500, 503]) {
    assert.equal(classifyAnswer(s, new Headers()), null);
  }
});

Deno.test("capabilities: a change is reported once, with the deciding answer and when", () => {
  let now = 1000;
  const changes: [string, EndpointCapability, EndpointCapability][] = [];
  const caps = new EndpointCapabilities({
    now: () => now,
    onChange: (e, c, b) => changes.push([e, c, b]),
  });
  assert.deepEqual(Object.keys(caps.snapshot()), [...TRACKED_ENDPOINTS]);
  assert.equal(caps.get("GET /livestreams").state, "unknown");
  caps.record("GET /livestreams", 200, new Headers());
  now = 2000;
  caps.record("GET /livestreams", 404, new Headers());
  now = 3000;
  caps.record("GET /livestreams", 404, new Headers()); // the same: no second report
  caps.record("GET /livestreams", 503, new Headers()); // decides nothing
  caps.record("GET /unofficial", 404, new Headers()); // not tracked
  assert.deepEqual(changes.map(([e, c, b]) => `${e}: ${b.state} -> ${c.state}`), [
    "GET /livestreams: unknown -> available",
    "GET /livestreams: available -> gone",
  ]);
  assert.deepEqual(caps.get("GET /livestreams"), {
    state: "gone",
    status: 404,
    deprecation: null,
    sunset: null,
    since: 2000,
    checkedAt: 3000,
  });
  assert.equal(caps.get("GET /unofficial").state, "unknown");
  now = 4000;
  caps.record("GET /livestreams", 200, new Headers({ deprecation: "@1782172800" }));
  assert.equal(caps.get("GET /livestreams").state, "deprecated");
  assert.equal(caps.get("GET /livestreams").deprecation, "@1782172800");
  assert.equal(changes.length, 3);
});
