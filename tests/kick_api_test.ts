import assert from "node:assert/strict";
import { World } from "../dev/simulator/world.ts";
import { CLOUDFLARE_CHALLENGE_HTML, startApiServer } from "../dev/simulator/api_server.ts";
import { TokenProvider } from "../src/kick/official/oauth.ts";
import { KickApi, type KickApiOptions } from "../src/kick/official/api.ts";
import { KickApiError } from "../src/kick/official/api_error.ts";
import cloudflare403 from "./fixtures/api-error-cloudflare-403-1.json" with {
  type: "json",
};
import subscriptionLimit from "./fixtures/api-error-subscription-limit-1.json" with {
  type: "json",
};
import channelsFixture from "./fixtures/api-channels-1.json" with { type: "json" };

const CLIENT_ID = "cid";
const SECRET = "csecret";

function setup(n = 3, apiOpts: Partial<KickApiOptions> = {}) {
  const world = new World();
  for (let i = 0; i < n; i++) {
    world.add({ userId: 1000 + i, slug: `streamer${i}`, channelId: 50_000 + i, live: i % 2 === 0 });
  }
  const sim = startApiServer({ world, clientId: CLIENT_ID, clientSecret: SECRET });
  const tokens = new TokenProvider({
    oauthUrl: sim.oauthUrl,
    clientId: CLIENT_ID,
    clientSecret: SECRET,
  });
  const calls: [string, number | "error", number][] = [];
  const api = new KickApi({
    baseUrl: sim.apiUrl,
    unofficialBaseUrl: sim.unofficialUrl,
    tokens,
    maxRequestsPerMinute: 60_000,
    timeoutMs: 2000,
    backoffBaseMs: 10,
    backoffMaxMs: 50,
    onRequest: (e, s, d) => calls.push([e, s, d]),
    ...apiOpts,
  });
  return { world, sim, tokens, api, calls };
}

async function errorOf(p: Promise<unknown>): Promise<KickApiError> {
  const e = await p.then(() => undefined, (e) => e);
  assert.ok(e instanceof KickApiError, `expected KickApiError, got ${e}`);
  return e;
}

Deno.test("api: getChannels by ids and slugs, batches of 50, is_live from the world", async () => {
  const { world, sim, api, calls } = setup(120);
  try {
    const ids = world.all().map((s) => s.userId);
    const chans = await api.getChannels({ broadcasterUserIds: ids });
    assert.equal(chans.length, 120);
    assert.equal(sim.requests("GET /public/v1/channels"), 3); // 50 + 50 + 20
    assert.deepEqual(chans.map((c) => c.broadcasterUserId), ids);
    for (const c of chans) {
      const s = world.byUserId(c.broadcasterUserId)!;
      assert.equal(c.isLive, s.live);
      assert.equal(c.slug, s.slug);
      if (s.live) {
        assert.equal(c.streamTitle, s.title);
        assert.equal(c.startTime, Date.parse(s.startedAt!));
      } else {
        assert.equal(c.startTime, undefined); // 0001-01-01T00:00:00Z is not a time
        assert.equal(c.streamTitle, undefined);
      }
    }
    const bySlug = await api.getChannels({ slugs: ["streamer1", "STREAMER2", "nobody"] });
    assert.deepEqual(bySlug.map((c) => c.slug), ["streamer1", "streamer2"]);
    assert.deepEqual(await api.getChannels({}), []);
    assert.equal(sim.requests("GET /public/v1/channels"), 4);
    // onRequest saw every API request with its status and a duration.
    const chanCalls = calls.filter(([e]) => e === "GET /channels");
    assert.equal(chanCalls.length, 4);
    assert.ok(chanCalls.every(([, s, d]) => s === 200 && d >= 0));
  } finally {
    await sim.close();
  }
});

Deno.test("api: the fixture's channel element parses (wire schema matches the captured shape)", async () => {
  const { sim, api } = setup(0);
  try {
    sim.failNext("/public/v1/channels", {
      status: 200,
      body: JSON.stringify({ data: [channelsFixture.api_response], message: "OK" }),
    });
    const [c] = await api.getChannels({ broadcasterUserIds: [1] });
    assert.deepEqual(c, {
      broadcasterUserId: 1,
      slug: "text",
      isLive: true,
      streamTitle: "text",
      startTime: Date.parse("2025-01-01T11:00:00+11:00"),
    });
  } finally {
    await sim.close();
  }
});

Deno.test("api: getLivestreams returns only live streamers with channel ids (limit=100, batches of 50)", async () => {
  const { world, sim, api } = setup(60);
  try {
    const ids = world.all().map((s) => s.userId);
    const live = await api.getLivestreams(ids);
    assert.equal(sim.requests("GET /public/v1/livestreams"), 2);
    const expected = world.all().filter((s) => s.live);
    assert.equal(live.length, expected.length);
    for (const l of live) {
      const s = world.byUserId(l.broadcasterUserId)!;
      assert.equal(l.channelId, s.channelId);
      assert.equal(l.slug, s.slug);
      assert.equal(l.title, s.title);
      assert.equal(l.startedAt, Date.parse(s.startedAt!));
    }
    assert.deepEqual(await api.getLivestreams([]), []);
  } finally {
    await sim.close();
  }
});

Deno.test("api: 401 → invalidate, refresh once, retry once", async () => {
  const { sim, api, calls } = setup();
  try {
    await api.getChannels({ broadcasterUserIds: [1000] });
    assert.equal(sim.requests("/oauth/token"), 1);
    sim.expireAllTokens();
    const [c] = await api.getChannels({ broadcasterUserIds: [1000] });
    assert.equal(c.broadcasterUserId, 1000);
    assert.equal(sim.requests("/oauth/token"), 2);
    assert.deepEqual(calls.slice(-2).map(([, s]) => s), [401, 200]);

    // A 401 that persists after the refresh → unauthorized, no third attempt.
    const before = sim.requests("/public/v1/channels");
    sim.failNext("/public/v1/channels", { status: 401, body: '{"message":"unauthorized"}' }, 5);
    const err = await errorOf(api.getChannels({ broadcasterUserIds: [1000] }));
    assert.equal(err.kind, "unauthorized");
    assert.equal(err.status, 401);
    assert.equal(err.endpoint, "GET /channels");
    assert.equal(sim.requests("/public/v1/channels") - before, 2);
  } finally {
    await sim.close();
  }
});

Deno.test("api: 429 honours Retry-After (seconds) and then succeeds", async () => {
  const { sim, api } = setup(3, { backoffMaxMs: 5000 });
  try {
    sim.failNext("/public/v1/channels", { status: 429, body: "", headers: { "retry-after": "1" } });
    const t0 = performance.now();
    const chans = await api.getChannels({ broadcasterUserIds: [1000, 1001] });
    const elapsed = performance.now() - t0;
    assert.equal(chans.length, 2);
    assert.ok(elapsed >= 950, `waited only ${elapsed} ms`);
    assert.ok(elapsed < 5000, `waited ${elapsed} ms`);
  } finally {
    await sim.close();
  }
});

Deno.test("api: 429 honours Retry-After as an HTTP date", async () => {
  const { sim, api } = setup(3, { backoffMaxMs: 5000 });
  try {
    // HTTP dates have 1 s resolution: ask for 2 s ahead so the wait is 1–2 s.
    const when = new Date(Date.now() + 2000).toUTCString();
    sim.failNext("/public/v1/livestreams", {
      status: 429,
      body: "",
      headers: { "retry-after": when },
    });
    const t0 = performance.now();
    await api.getLivestreams([1000]);
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 900 && elapsed < 5000, `waited ${elapsed} ms`);
  } finally {
    await sim.close();
  }
});

Deno.test("api: 429 without Retry-After is retried a bounded number of times, then rate_limited", async () => {
  const { sim, api } = setup(3, { maxRetries: 2 });
  try {
    sim.failNext(
      "/public/v1/channels",
      { status: 429, body: '{"message":"Too Many Requests"}' },
      10,
    );
    const err = await errorOf(api.getChannels({ broadcasterUserIds: [1000] }));
    assert.equal(err.kind, "rate_limited");
    assert.equal(err.status, 429);
    assert.ok(err.retryAfterMs !== undefined && err.retryAfterMs > 0);
    assert.equal(sim.requests("/public/v1/channels"), 3);
  } finally {
    await sim.close();
  }
});

Deno.test("api: 5xx on GET is retried; on POST it is not", async () => {
  const { sim, api } = setup();
  try {
    sim.failNext("/public/v1/channels", { status: 502, body: "" }, 2);
    assert.equal((await api.getChannels({ broadcasterUserIds: [1000] })).length, 1);
    assert.equal(sim.requests("/public/v1/channels"), 3);
    sim.failNext("POST /public/v1/events/subscriptions", { status: 500, body: "" });
    const err = await errorOf(api.createEventSubscription(1000));
    assert.equal(err.kind, "server");
    assert.equal(sim.requests("POST /public/v1/events/subscriptions"), 1);
  } finally {
    await sim.close();
  }
});

Deno.test("api: Cloudflare 403 (JSON and HTML challenge) → blocked with a back-off hint", async () => {
  const { sim, api } = setup();
  try {
    sim.failNext("/public/v1/channels", {
      status: cloudflare403.http_status,
      body: JSON.stringify(cloudflare403.api_response),
      headers: { "cf-ray": "8f1234567890abcd-FRA" },
    });
    const e1 = await errorOf(api.getChannels({ broadcasterUserIds: [1000] }));
    assert.equal(e1.kind, "blocked");
    assert.equal(e1.status, 403);
    assert.match(e1.message, /Cloudflare/);
    assert.match(e1.message, /9e4db7e3/);
    assert.ok(e1.retryAfterMs! >= 60_000);

    sim.failNext("/public/v1/livestreams", {
      status: 403,
      body: CLOUDFLARE_CHALLENGE_HTML,
      headers: { "content-type": "text/html; charset=UTF-8" },
    });
    const e2 = await errorOf(api.getLivestreams([1000]));
    assert.equal(e2.kind, "blocked");
    assert.match(e2.message, /Just a moment/);

    // An HTML page with 200 is not data either.
    sim.failNext("/public/v1/channels", { status: 200, body: "<html><body>hi</body></html>" });
    assert.equal((await errorOf(api.getChannels({ slugs: ["streamer0"] }))).kind, "blocked");
  } finally {
    await sim.close();
  }
});

Deno.test("api: event subscriptions: create, list, delete, limit", async () => {
  const { sim, api } = setup(4);
  try {
    assert.deepEqual(await api.listEventSubscriptions(), []);
    const a = await api.createEventSubscription(1000);
    const b = await api.createEventSubscription(1001, "livestream.status.updated", 1);
    assert.match(a.subscriptionId, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(a.name, "livestream.status.updated");
    assert.equal(a.version, 1);
    const list = await api.listEventSubscriptions();
    assert.deepEqual(list.map((s) => [s.id, s.broadcasterUserId, s.event, s.version, s.method]), [
      [a.subscriptionId, 1000, "livestream.status.updated", 1, "webhook"],
      [b.subscriptionId, 1001, "livestream.status.updated", 1, "webhook"],
    ]);
    assert.ok(list[0].createdAt! > 0);

    sim.setSubscriptionLimit(2);
    const err = await errorOf(api.createEventSubscription(1002));
    assert.equal(err.kind, "subscription_limit");
    assert.equal(err.status, 400);

    // The captured body verbatim, too.
    sim.failNext("POST /public/v1/events/subscriptions", {
      status: 400,
      body: JSON.stringify(subscriptionLimit.api_response),
    });
    assert.equal((await errorOf(api.createEventSubscription(1003))).kind, "subscription_limit");

    await api.deleteEventSubscriptions([a.subscriptionId, b.subscriptionId]);
    assert.deepEqual(await api.listEventSubscriptions(), []);
    await api.deleteEventSubscriptions([]); // no request
    assert.equal(sim.requests("DELETE /public/v1/events/subscriptions"), 1);

    // Per-item error (e.g. webhooks disabled) → subscription_rejected.
    sim.failNext("POST /public/v1/events/subscriptions", {
      status: 200,
      body: JSON.stringify({
        data: [{
          error: "webhooks are not enabled for app",
          name: "livestream.status.updated",
          version: 1,
        }],
        message: "OK",
      }),
    });
    const rej = await errorOf(api.createEventSubscription(1000));
    assert.equal(rej.kind, "subscription_rejected");
    assert.match(rej.message, /webhooks are not enabled/);
  } finally {
    await sim.close();
  }
});

Deno.test("api: getPublicKey returns the PEM; a placeholder is malformed", async () => {
  const { sim, api } = setup();
  try {
    const pem = await api.getPublicKey();
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n/);
    sim.failNext("/public/v1/public-key", {
      status: 200,
      body: '{"data":{"public_key":"text"},"message":"OK"}',
    });
    const err = await errorOf(api.getPublicKey());
    assert.equal(err.kind, "malformed");
    assert.equal(err.issuePath, "data.public_key");
  } finally {
    await sim.close();
  }
});

Deno.test("api: timeouts → kind timeout", async () => {
  const { sim, api } = setup(3, { timeoutMs: 100 });
  try {
    sim.setDelay("/public/v1/channels", 500);
    const err = await errorOf(api.getChannels({ broadcasterUserIds: [1000] }));
    assert.equal(err.kind, "timeout");
    assert.equal(err.status, undefined);
    assert.ok(err.cause instanceof DOMException);
  } finally {
    await sim.close();
  }
});

Deno.test("api: malformed bodies → kind malformed with the zod issue path, never a crash", async () => {
  const { sim, api, calls } = setup();
  try {
    sim.failNext("/public/v1/channels", { status: 200, body: "this is not json" });
    const e1 = await errorOf(api.getChannels({ broadcasterUserIds: [1000] }));
    assert.equal(e1.kind, "malformed");
    assert.match(e1.message, /non-JSON/);
    assert.ok(e1.cause instanceof SyntaxError);

    sim.failNext("/public/v1/channels", {
      status: 200,
      body: JSON.stringify({ data: { not: "a list" }, message: "OK" }),
    });
    const e2 = await errorOf(api.getChannels({ broadcasterUserIds: [1000] }));
    assert.equal(e2.kind, "malformed");
    assert.equal(e2.issuePath, "data");

    sim.failNext("/public/v1/livestreams", { status: 200, body: '{"message":"OK"}' });
    const e3 = await errorOf(api.getLivestreams([1000]));
    assert.equal(e3.issuePath, "data");
    assert.ok(calls.length >= 3);
  } finally {
    await sim.close();
  }
});

Deno.test("api: getUnofficialChannel: ok, 404, Cloudflare JSON 403, HTML challenge", async () => {
  const { sim, api, world } = setup();
  try {
    const s = world.byUserId(1001)!;
    assert.deepEqual(await api.getUnofficialChannel("streamer1"), {
      channelId: s.channelId,
      userId: s.userId,
      slug: "streamer1",
    });
    assert.equal((await errorOf(api.getUnofficialChannel("nobody"))).kind, "not_found");
    sim.setUnofficialBlocked("json");
    const e1 = await errorOf(api.getUnofficialChannel("streamer1"));
    assert.equal(e1.kind, "blocked");
    assert.equal(e1.endpoint, "GET unofficial /channels/{slug}");
    assert.match(e1.message, /Request blocked by security policy/);
    sim.setUnofficialBlocked("html");
    const e2 = await errorOf(api.getUnofficialChannel("streamer1"));
    assert.equal(e2.kind, "blocked");
    assert.match(e2.message, /Just a moment/);
    // The unofficial endpoint never gets a bearer token.
    assert.equal(sim.requests("/oauth/token"), 0);
  } finally {
    await sim.close();
  }
});

Deno.test("api: the token bucket spaces requests (shared across callers)", async () => {
  // 1200/min = one every 50 ms, burst 1: 7 concurrent requests need ≥ 300 ms.
  const { sim, api } = setup(3, { maxRequestsPerMinute: 1200, burst: 1 });
  try {
    await api.getChannels({ broadcasterUserIds: [1000] }); // token fetched, first slot used
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 6 }, () => api.getChannels({ broadcasterUserIds: [1001] })),
    );
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 270, `6 requests took only ${elapsed} ms`);
    assert.ok(elapsed < 3000, `6 requests took ${elapsed} ms`);
  } finally {
    await sim.close();
  }
});

Deno.test("api: a 429 pauses the whole shared budget", async () => {
  const { sim, api } = setup(3, { backoffMaxMs: 5000 });
  try {
    await api.getChannels({ broadcasterUserIds: [1000] });
    const hold = sim.holdNext("/public/v1/channels");
    sim.failNext("/public/v1/channels", { status: 429, body: "", headers: { "retry-after": "1" } });
    const first = api.getChannels({ broadcasterUserIds: [1000] });
    await hold.reached;
    hold.release();
    await new Promise((r) => setTimeout(r, 50)); // let the 429 land
    const t0 = performance.now();
    await api.getLivestreams([1000]); // another caller, another endpoint
    const waited = performance.now() - t0;
    assert.ok(waited >= 800, `second caller waited only ${waited} ms`);
    await first;
  } finally {
    await sim.close();
  }
});

Deno.test("api: a token failure propagates as the OAuth error", async () => {
  const world = new World();
  const sim = startApiServer({ world, clientId: CLIENT_ID, clientSecret: SECRET });
  try {
    const tokens = new TokenProvider({
      oauthUrl: sim.oauthUrl,
      clientId: CLIENT_ID,
      clientSecret: "wrong",
    });
    const api = new KickApi({ baseUrl: sim.apiUrl, tokens });
    const err = await api.getChannels({ broadcasterUserIds: [1] }).then(() => undefined, (e) => e);
    assert.equal(err?.name, "InvalidCredentialsError");
    assert.equal(sim.requests("/public/v1/channels"), 0);
  } finally {
    await sim.close();
  }
});

Deno.test("api: close() aborts waits; later calls reject with kind closed", async () => {
  const { sim, api } = setup(3, { maxRequestsPerMinute: 1, burst: 1 });
  try {
    await api.getChannels({ broadcasterUserIds: [1000] });
    const waiting = api.getChannels({ broadcasterUserIds: [1000] }); // would wait ~60 s
    api.close();
    assert.equal((await errorOf(waiting)).kind, "closed");
    assert.equal((await errorOf(api.getLivestreams([1]))).kind, "closed");
  } finally {
    await sim.close();
  }
});

Deno.test("api: one malformed element of a list answer is skipped, never its batch", async () => {
  const skipped: string[] = [];
  const { sim, api } = setup(3, {
    onMalformedRow: (endpoint, issue) => skipped.push(`${endpoint} ${issue}`),
  });
  try {
    const good = { broadcaster_user_id: 7, slug: "good", stream: { is_live: true } };
    sim.failNext("/public/v1/channels", {
      status: 200,
      body: JSON.stringify({
        data: [
          { broadcaster_user_id: 1, slug: "a", stream: null },
          { broadcaster_user_id: 2, slug: "b", stream: {} },
          { broadcaster_user_id: null, slug: "c", stream: { is_live: false } },
          { broadcaster_user_id: 4, slug: null, stream: { is_live: false } },
          good,
        ],
        message: "OK",
      }),
    });
    const r = await api.getChannels({ broadcasterUserIds: [1, 2, 3, 4, 7] });
    assert.deepEqual(r.map((c) => [c.broadcasterUserId, c.isLive]), [[7, true]]);
    assert.equal(skipped.length, 4);
    assert.match(skipped[0], /GET \/channels data\[0\]\.stream/);
    sim.failNext("/public/v1/livestreams", { status: 200, body: '{"data":null,"message":"OK"}' });
    assert.deepEqual(await api.getLivestreams([7]), [], "data: null is an empty list");
  } finally {
    await sim.close();
  }
});

Deno.test("api: an answer over MAX_API_BODY_BYTES is refused unread", async () => {
  const { sim, api } = setup();
  try {
    const row = { broadcaster_user_id: 1, slug: "a".repeat(1000), stream: { is_live: true } };
    const body = JSON.stringify({ data: Array(5000).fill(row), message: "OK" }); // ~5 MB
    sim.failNext("/public/v1/channels", { status: 200, body });
    const e = await errorOf(api.getChannels({ broadcasterUserIds: [1000] }));
    assert.equal(e.kind, "malformed");
    assert.match(e.message, /over 4194304 bytes/);
    assert.equal((await api.getChannels({ broadcasterUserIds: [1000] })).length, 1);
  } finally {
    await sim.close();
  }
});
