/**
 * The official API client's endpoint capability record against the simulator
 * (issue 13 item 4): `getUsersLivestreams` batches, and v1 `/livestreams`
 * gone (404) or deprecated (RFC 9745/8594 headers) as `KickApi.capabilities`
 * records it. The record's own rules are unit-tested beside it
 * (`src/kick/official/capabilities_test.ts`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { World } from "../dev/simulator/world.ts";
import { startApiServer, V1_DEPRECATION_HEADERS } from "../dev/simulator/api_server.ts";
import { KickApi } from "../src/kick/official/api.ts";
import { KickApiError } from "../src/kick/official/api_error.ts";
import { TokenProvider } from "../src/kick/official/oauth.ts";

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
    // Live rows only: a malformed row is not skipped (it would read as offline), it fails.
    sim.failNext("/public/v1/users/livestreams", {
      status: 200,
      body: JSON.stringify({ data: [{ broadcaster_user: { id: "x" } }], message: "OK" }),
    });
    const e = await api.getUsersLivestreams(ids).then(() => null, (e) => e);
    assert.ok(e instanceof KickApiError && e.kind === "malformed", String(e));
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
