import assert from "node:assert/strict";
import { World } from "../../../dev/simulator/world.ts";
import { startApiServer, V1_DEPRECATION_HEADERS } from "../../../dev/simulator/api_server.ts";
import { KickApi } from "./api.ts";
import { KickApiError } from "./api_error.ts";
import {
  classifyAnswer,
  EndpointCapabilities,
  type EndpointCapability,
  TRACKED_ENDPOINTS,
} from "./capabilities.ts";
import { TokenProvider } from "./oauth.ts";

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

function setup(opts: { v1LivestreamsGone?: boolean; v1LivestreamsDeprecated?: boolean } = {}) {
  const world = new World();
  for (let i = 0; i < 130; i++) {
    world.add({ userId: 1000 + i, slug: `s${i}`, channelId: 50_000 + i, live: i % 3 === 0 });
  }
  const sim = startApiServer({ world, clientId: "cid", clientSecret: "cs", ...opts });
  const tokens = new TokenProvider({ oauthUrl: sim.oauthUrl, clientId: "cid", clientSecret: "cs" });
  const changes: string[] = [];
  const api = new KickApi({
    baseUrl: sim.apiUrl,
    tokens,
    maxRequestsPerMinute: 60_000,
    onCapabilityChange: (e, c) => changes.push(`${e} ${c.state}`),
  });
  return {
    world,
    sim,
    api,
    changes,
    close: async () => {
      api.close();
      tokens.close();
      await sim.close();
    },
  };
}

Deno.test("api: getUsersLivestreams asks 100 user ids a request and returns the live ones", async () => {
  const { world, sim, api, close } = setup();
  try {
    const ids = world.all().map((s) => s.userId);
    const live = await api.getUsersLivestreams(ids);
    assert.equal(sim.requests("GET /public/v1/users/livestreams"), 2); // 100 + 30
    assert.deepEqual(
      live.map((l) => l.broadcasterUserId),
      world.all().filter((s) => s.live).map((s) => s.userId),
    );
    assert.equal(live[0].slug, "s0");
    assert.match(live[0].livestreamId!, /^[0-9a-f-]{36}$/);
    assert.equal(typeof live[0].startedAt, "number");
    assert.deepEqual(await api.getUsersLivestreams([]), []);
    assert.equal(sim.requests("GET /public/v1/users/livestreams"), 2, "empty input: no request");
    assert.equal(api.capabilities.get("GET /users/livestreams").state, "available");
  } finally {
    await close();
  }
});

Deno.test("api: v1 /livestreams 404 marks it gone; Deprecation headers mark it deprecated", async () => {
  const gone = setup({ v1LivestreamsGone: true });
  try {
    const e = await gone.api.getLivestreams([1000]).then(() => null, (e) => e);
    assert.ok(e instanceof KickApiError && e.kind === "not_found", String(e));
    assert.equal(gone.api.capabilities.get("GET /livestreams").state, "gone");
    assert.equal(gone.api.capabilities.get("GET /livestreams").status, 404);
    assert.equal((await gone.api.getUsersLivestreams([1000])).length, 1, "its successor answers");
    assert.deepEqual(gone.changes, ["GET /livestreams gone", "GET /users/livestreams available"]);
  } finally {
    await gone.close();
  }
  const old = setup({ v1LivestreamsDeprecated: true });
  try {
    const [l] = await old.api.getLivestreams([1000]);
    assert.equal(l.channelId, 50_000, "still answers with channel ids");
    const cap = old.api.capabilities.get("GET /livestreams");
    assert.equal(cap.state, "deprecated");
    assert.equal(cap.deprecation, V1_DEPRECATION_HEADERS.deprecation);
    assert.equal(cap.sunset, V1_DEPRECATION_HEADERS.sunset);
  } finally {
    await old.close();
  }
});
