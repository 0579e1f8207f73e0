import assert from "node:assert/strict";
import { World } from "./world.ts";
import {
  type ApiRequestInfo,
  type ApiServerOptions,
  CLOUDFLARE_403_BODY,
  startApiServer,
} from "./api_server.ts";
import { WebhookSender } from "./webhook_sender.ts";
import channelsFx from "../../tests/fixtures/api-channels-1.json" with { type: "json" };
import livestreamsFx from "../../tests/fixtures/api-livestreams-1.json" with { type: "json" };
import subsEmptyFx from "../../tests/fixtures/api-events-subscriptions-empty-1.json" with {
  type: "json",
};
import subsItemFx from "../../tests/fixtures/api-events-subscriptions-list-item-1.json" with {
  type: "json",
};
import subsLimitFx from "../../tests/fixtures/api-error-subscription-limit-1.json" with {
  type: "json",
};
import cloudflareFx from "../../tests/fixtures/api-error-cloudflare-403-1.json" with {
  type: "json",
};
import oauthErrorFx from "../../tests/fixtures/api-oauth-error-1.json" with { type: "json" };
import tokenFx from "../../tests/fixtures/api-oauth-token-client-credentials-1.json" with {
  type: "json",
};
import publicKeyFx from "../../tests/fixtures/api-public-key-1.json" with { type: "json" };

/** The nested key structure of a JSON value (arrays by their first element), in key order. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length ? [shape(v[0])] : [];
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]));
  }
  return typeof v;
}

function setup(extra: Partial<ApiServerOptions> = {}) {
  const world = new World();
  const live = world.add({
    userId: 2570626,
    slug: "bossmanjack",
    channelId: 2515504,
    live: true,
    title: "slots",
  });
  const off = world.add({ userId: 4809577, slug: "fusedchat", channelId: 4700000 });
  const sim = startApiServer({ world, clientId: "cid", clientSecret: "sec", ...extra });
  const token = async (): Promise<string> => {
    const r = await fetch(`${sim.oauthUrl}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&client_id=cid&client_secret=sec",
    });
    return (await r.json()).access_token;
  };
  const get = async (path: string, tok?: string, init: RequestInit = {}) => {
    const r = await fetch(`${sim.origin}${path}`, {
      ...init,
      headers: { ...(tok ? { authorization: `Bearer ${tok}` } : {}), ...init.headers },
    });
    const text = await r.text();
    return { status: r.status, text, headers: r.headers, json: () => JSON.parse(text) };
  };
  return { world, live, off, sim, token, get };
}

Deno.test("api_server: POST /oauth/token — success, wrong client, bad form", async () => {
  const { sim } = setup({ tokenLifetimeSec: 3600 });
  try {
    const post = (body: string) =>
      fetch(`${sim.oauthUrl}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body,
      });
    const ok = await post("grant_type=client_credentials&client_id=cid&client_secret=sec");
    const okBody = await ok.json();
    assert.equal(ok.status, 200);
    assert.deepEqual(Object.keys(okBody), Object.keys(tokenFx.api_response));
    assert.equal(okBody.token_type, "Bearer");
    assert.equal(okBody.expires_in, 3600);

    const bad = await post("grant_type=client_credentials&client_id=cid&client_secret=nope");
    assert.equal(bad.status, 401);
    const badBody = await bad.json();
    assert.equal(badBody.error, "invalid_client");
    assert.equal(typeof badBody.error_description, "string");

    const malformed = await post("grant_type=password");
    assert.equal(malformed.status, oauthErrorFx.http_status);
    assert.deepEqual(await malformed.json(), oauthErrorFx.api_response);
  } finally {
    await sim.close();
  }
});

Deno.test("api_server: /channels — bearer required, fixture shape, is_live from the world, no channel id", async () => {
  const { sim, token, get, live, off, world } = setup();
  try {
    const noAuth = await get("/public/v1/channels?broadcaster_user_id=2570626");
    assert.equal(noAuth.status, 401);
    assert.deepEqual(noAuth.json(), { message: "unauthorized" });
    assert.equal((await get("/public/v1/channels?slug=x", "not-a-token")).status, 401);

    const tok = await token();
    const r = await get(
      `/public/v1/channels?broadcaster_user_id=${live.userId}&broadcaster_user_id=${off.userId}&broadcaster_user_id=1`,
      tok,
    );
    assert.equal(r.status, 200);
    const body = r.json();
    assert.deepEqual(Object.keys(body), ["data", "message"]);
    assert.equal(body.data.length, 2);
    for (const el of body.data) {
      assert.deepEqual(
        {
          ...shape(el) as object,
          stream: { ...(shape(el) as { stream: object }).stream, custom_tags: [] },
        },
        {
          ...shape(channelsFx.api_response) as object,
          stream: {
            ...(shape(channelsFx.api_response) as { stream: object }).stream,
            custom_tags: [],
          },
        },
      );
      assert.ok(!("channel_id" in el) && !("id" in el));
    }
    assert.equal(body.data[0].stream.is_live, true);
    assert.equal(body.data[0].stream.start_time, live.startedAt);
    assert.equal(body.data[0].stream_title, "slots");
    assert.equal(body.data[1].stream.is_live, false);
    assert.equal(body.data[1].stream.start_time, "0001-01-01T00:00:00Z");

    world.setLive(off.userId, true, { publish: false });
    const bySlug = (await get("/public/v1/channels?slug=FusedChat", tok)).json();
    assert.equal(bySlug.data[0].stream.is_live, true);

    const tooMany = Array.from({ length: 51 }, (_, i) => `broadcaster_user_id=${i + 1}`).join("&");
    assert.equal((await get(`/public/v1/channels?${tooMany}`, tok)).status, 400);

    sim.expireAllTokens();
    assert.equal((await get("/public/v1/channels?slug=fusedchat", tok)).status, 401);
  } finally {
    await sim.close();
  }
});

Deno.test("api_server: /livestreams — only live streamers, fixture shape incl. channel_id", async () => {
  const { sim, token, get, live, off } = setup();
  try {
    const tok = await token();
    const body = (await get(
      `/public/v1/livestreams?broadcaster_user_id=${live.userId}&broadcaster_user_id=${off.userId}&limit=100`,
      tok,
    )).json();
    assert.equal(body.data.length, 1);
    const el = body.data[0];
    const fxShape = shape(livestreamsFx.api_response) as Record<string, unknown>;
    assert.deepEqual({ ...shape(el) as object, custom_tags: [] }, { ...fxShape, custom_tags: [] });
    assert.equal(el.channel_id, live.channelId);
    assert.equal(el.broadcaster_user_id, live.userId);
    assert.equal((await get("/public/v1/livestreams?limit=101", tok)).status, 400);
    assert.equal((await get("/public/v1/livestreams", tok)).json().data.length, 1);
  } finally {
    await sim.close();
  }
});

Deno.test("api_server: /users/livestreams — live rows only, v2 shape, user_id required", async () => {
  const { sim, token, get, live, off } = setup();
  try {
    const tok = await token();
    const body = (await get(
      `/public/v1/users/livestreams?user_id=${live.userId}&user_id=${off.userId}`,
      tok,
    )).json();
    assert.equal(body.data.length, 1);
    assert.equal(body.data[0].broadcaster_user.id, live.userId);
    assert.equal(body.data[0].channel_id, undefined, "v2 rows carry no channel id");
    assert.equal((await get("/public/v1/users/livestreams", tok)).status, 400);
    assert.equal(
      (await get(`/public/v1/users/livestreams?user_id=${live.userId}`, "")).status,
      401,
    );
  } finally {
    await sim.close();
  }
});

Deno.test("api_server: /events/subscriptions — stateful, fixture shapes, limit body verbatim", async () => {
  const { sim, token, get } = setup({ subscriptionLimit: 1 });
  try {
    const tok = await token();
    assert.deepEqual(
      (await get("/public/v1/events/subscriptions", tok)).json(),
      subsEmptyFx.api_response,
    );
    const post = (uid: number) =>
      get("/public/v1/events/subscriptions", tok, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          broadcaster_user_id: uid,
          events: [{ name: "livestream.status.updated", version: 1 }],
          method: "webhook",
        }),
      });
    const created = await post(2570626);
    assert.equal(created.status, 200);
    const item = created.json().data[0];
    assert.deepEqual(Object.keys(item).sort(), ["error", "name", "subscription_id", "version"]);
    assert.equal(item.error, "");
    // Same subscription again is idempotent (no new entry, same id).
    assert.equal((await post(2570626)).json().data[0].subscription_id, item.subscription_id);

    const over = await post(4809577);
    assert.equal(over.status, 400);
    assert.deepEqual(over.json(), subsLimitFx.api_response);

    const list = (await get("/public/v1/events/subscriptions", tok)).json();
    assert.equal(list.data.length, 1);
    assert.deepEqual(Object.keys(list.data[0]).sort(), Object.keys(subsItemFx.api_response).sort());
    assert.equal(list.data[0].id, item.subscription_id);
    assert.equal(list.data[0].method, "webhook");

    const del = await get(
      `/public/v1/events/subscriptions?id=${item.subscription_id}&id=unknown`,
      tok,
      {
        method: "DELETE",
      },
    );
    assert.equal(del.status, 204);
    assert.equal(del.text, "");
    assert.deepEqual(sim.subscriptions(), []);

    const invalid = await get("/public/v1/events/subscriptions", tok, {
      method: "POST",
      body: '{"event":"x"}',
    });
    assert.equal(invalid.status, 400);
  } finally {
    await sim.close();
  }
});

Deno.test("api_server: /public-key serves the sender's PEM in the fixture shape", async () => {
  const sender = await WebhookSender.create();
  const { sim, get } = setup({ webhookPublicKeyPem: sender.publicKeyPem });
  try {
    const body = (await get("/public/v1/public-key")).json();
    assert.deepEqual(Object.keys(body.data), Object.keys(publicKeyFx.api_response));
    assert.equal(body.data.public_key, sender.publicKeyPem);
    assert.equal(body.message, "OK");
    const other = await WebhookSender.create();
    sim.setWebhookPublicKeyPem(other.publicKeyPem);
    assert.equal((await get("/public/v1/public-key")).json().data.public_key, other.publicKeyPem);
  } finally {
    await sim.close();
  }
});

Deno.test("api_server: /api/v2/channels/{slug} — ids without auth; Cloudflare 403 when blocked", async () => {
  const { sim, get, live } = setup();
  try {
    const ok = await get("/api/v2/channels/bossmanjack");
    assert.equal(ok.status, 200);
    const b = ok.json();
    assert.equal(b.id, live.channelId);
    assert.equal(b.user_id, live.userId);
    assert.equal(b.slug, "bossmanjack");
    assert.equal(b.livestream.id, live.livestreamId);
    assert.equal((await get("/api/v2/channels/nobody")).status, 404);

    sim.setUnofficialBlocked("json");
    const blocked = await get("/api/v2/channels/bossmanjack");
    assert.equal(blocked.status, cloudflareFx.http_status);
    assert.deepEqual(blocked.json(), cloudflareFx.api_response);
    assert.equal(blocked.text, CLOUDFLARE_403_BODY);
    assert.ok(blocked.headers.has("cf-ray"));

    sim.setUnofficialBlocked("html");
    const html = await get("/api/v2/channels/bossmanjack");
    assert.equal(html.status, 403);
    assert.match(html.headers.get("content-type")!, /text\/html/);
    assert.match(html.text, /Just a moment\.\.\./);
  } finally {
    await sim.close();
  }
});

Deno.test("api_server: failNext (times, method prefix, path prefix), requests(), onRequest", async () => {
  const seen: ApiRequestInfo[] = [];
  const { sim, get, token } = setup({ onRequest: (i) => void seen.push(i) });
  try {
    const tok = await token();
    sim.failNext(
      "/public/v1/channels",
      { status: 429, body: "", headers: { "retry-after": "7" } },
      2,
    );
    const a = await get("/public/v1/channels?slug=a", tok);
    const b = await get("/public/v1/channels?slug=a", tok);
    const c = await get("/public/v1/channels?slug=a", tok);
    assert.deepEqual([a.status, b.status, c.status], [429, 429, 200]);
    assert.equal(a.headers.get("retry-after"), "7");

    sim.failNext("POST /public/v1/events/subscriptions", { status: 500, body: "boom" });
    assert.equal((await get("/public/v1/events/subscriptions", tok)).status, 200); // GET unaffected
    sim.failNext("/api/v2/channels/", {
      status: 200,
      body: "<html>",
      headers: { "content-type": "text/html" },
    });
    const h = await get("/api/v2/channels/whatever");
    assert.equal(h.text, "<html>");

    assert.equal(sim.requests("/public/v1/channels"), 3);
    assert.equal(sim.requests("GET /public/v1/channels"), 3);
    assert.equal(sim.requests("POST /oauth/token"), 1);
    assert.equal(sim.requests("/nothing"), 0);
    assert.deepEqual(
      seen.filter((i) => i.path === "/public/v1/channels").map((i) => i.status),
      [429, 429, 200],
    );
  } finally {
    await sim.close();
  }
});

Deno.test("api_server: setDelay delays responses", async () => {
  const { sim, get } = setup();
  try {
    sim.setDelay("/public/v1/public-key", 400);
    const t0 = performance.now();
    await get("/public/v1/public-key");
    assert.ok(performance.now() - t0 >= 390);
    sim.setDelay("/public/v1/public-key", 0);
    const t1 = performance.now();
    await get("/public/v1/public-key");
    assert.ok(performance.now() - t1 < 390);
  } finally {
    await sim.close();
  }
});

Deno.test("api_server: holdNext — a held response reports the world as it was when requested", async () => {
  const { sim, get, token, off, world } = setup();
  try {
    const tok = await token();
    const hold = sim.holdNext("/public/v1/channels");
    const pending = get(`/public/v1/channels?broadcaster_user_id=${off.userId}`, tok);
    await hold.reached;
    // A newer event happens while the reconciliation response is in flight.
    world.setLive(off.userId, true);
    hold.release();
    const r = await pending;
    assert.equal(r.json().data[0].stream.is_live, false); // stale snapshot, delivered late
    // The next request sees the new truth.
    const now = (await get(`/public/v1/channels?broadcaster_user_id=${off.userId}`, tok)).json();
    assert.equal(now.data[0].stream.is_live, true);
  } finally {
    await sim.close();
  }
});

Deno.test("api_server: close() releases held responses and aborts delays", async () => {
  const { sim, get } = setup();
  sim.holdNext("/public/v1/public-key");
  sim.setDelay("/api/v2/channels/", 60_000);
  const held = get("/public/v1/public-key");
  const delayed = get("/api/v2/channels/bossmanjack");
  await new Promise((r) => setTimeout(r, 50));
  const t0 = performance.now();
  await sim.close();
  assert.equal((await held).status, 200);
  assert.equal((await delayed).status, 200);
  assert.ok(performance.now() - t0 < 5000);
});

Deno.test("api_server: requestsBy counts each OAuth client's API requests apart", async () => {
  const { sim, token, get } = setup();
  try {
    sim.addClient("cid-b", "sec-b");
    const r = await fetch(`${sim.oauthUrl}/oauth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&client_id=cid-b&client_secret=sec-b",
    });
    const b = (await r.json()).access_token as string;
    const a = await token();
    await get("/public/v1/channels?broadcaster_user_id=2570626", a);
    await get("/public/v1/channels?broadcaster_user_id=2570626", b);
    await get("/public/v1/livestreams", b);
    await get("/public/v1/channels?broadcaster_user_id=1"); // no token
    assert.equal(sim.requestsBy("cid", "/public/v1/channels"), 1);
    assert.equal(sim.requestsBy("cid-b", "/public/v1/channels"), 1);
    assert.equal(sim.requestsBy("cid-b", "GET /public/v1/livestreams"), 1);
    assert.equal(sim.requestsBy("cid-b"), 2);
    assert.equal(sim.requestsBy("cid"), 1);
    assert.equal(sim.requestsBy("nobody"), 0);
  } finally {
    await sim.close();
  }
});
