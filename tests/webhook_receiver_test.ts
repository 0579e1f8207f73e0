import assert from "node:assert/strict";
import { captureLogs } from "./helpers/logs.ts";
import type { Observation } from "../src/core/types.ts";
import { World } from "../dev/simulator/world.ts";
import { startApiServer } from "../dev/simulator/api_server.ts";
import { WebhookSender } from "../dev/simulator/webhook_sender.ts";
import { TokenProvider } from "../src/kick/official/oauth.ts";
import { KickApi } from "../src/kick/official/api.ts";
import { WebhookReceiver } from "../src/kick/official/webhook.ts";
import realDelivery from "./fixtures/webhook-livestream-status-updated-1.json" with {
  type: "json",
};
import kickKey from "./fixtures/kick-webhook-public-key.json" with { type: "json" };

const H = realDelivery.webhook.headers;
const RAW = realDelivery.webhook.raw_body;
/** The real delivery's own time, so the 5-minute window accepts it. */
const REAL_NOW = () => Date.parse(H["Kick-Event-Message-Timestamp"]) + 1_000;

function realRequest(
  opts: {
    body?: Uint8Array<ArrayBuffer>;
    headers?: Record<string, string | null>;
    method?: string;
    path?: string;
  } = {},
): Request {
  const headers = new Headers({ "content-type": "application/json" });
  for (const [k, v] of Object.entries({ ...H, ...opts.headers })) {
    if (v !== null) headers.set(k, v);
  }
  return new Request(`http://127.0.0.1/${(opts.path ?? "/webhooks/kick").replace(/^\//, "")}`, {
    method: opts.method ?? "POST",
    headers,
    body: opts.method === "GET" ? undefined : (opts.body ?? new TextEncoder().encode(RAW)),
  });
}

// ---------------------------------------------------------------------------
// Receiver with the real delivery (injected clock).

function realReceiver(extra: Partial<ConstructorParameters<typeof WebhookReceiver>[0]> = {}) {
  const got: Observation[] = [];
  const outcomes: string[] = [];
  const receiver = new WebhookReceiver({
    publicKeyPem: kickKey.public_key_pem,
    onObservation: (o) => {
      got.push(o);
    },
    onOutcome: (o) => outcomes.push(o),
    now: REAL_NOW,
    ...extra,
  });
  return { receiver, got, outcomes };
}

Deno.test("webhook receiver: accepts the real delivery once; a replay is 200 but not delivered", async () => {
  const { receiver, got } = realReceiver();
  const r1 = await receiver.handle(realRequest());
  assert.equal(r1.status, 200);
  assert.equal(await r1.text(), "accepted");
  assert.equal(got.length, 1);
  assert.equal(got[0].status, "online");
  assert.equal(got[0].broadcasterUserId, 4809577);
  assert.equal(got[0].extra?.message_id, H["Kick-Event-Message-Id"]);
  assert.equal(got[0].extra?.subscription_id, H["Kick-Event-Subscription-Id"]);
  // Kick's message time (whole seconds, so up to its last millisecond), not the receipt time:
  // a late or retried delivery must lose against anything observed after Kick sent it.
  assert.equal(
    got[0].observedAt,
    Math.min(Date.parse(H["Kick-Event-Message-Timestamp"]) + 999, REAL_NOW()),
  );
  assert.equal(typeof got[0].receivedMono, "number");

  const r2 = await receiver.handle(realRequest());
  assert.equal(r2.status, 200);
  assert.equal(await r2.text(), "duplicate");
  assert.equal(got.length, 1);
  assert.deepEqual(receiver.stats(), { accepted: 1, duplicate: 1, ignored: {}, rejected: {} });
});

Deno.test("webhook receiver: rejections and their status codes", async () => {
  const { receiver, got, outcomes } = realReceiver();
  const flipped = new TextEncoder().encode(RAW);
  flipped[20] ^= 0x01;
  const cases: [Request, number, string][] = [
    [realRequest({ body: flipped }), 401, "bad_signature"],
    [realRequest({ headers: { "Kick-Event-Signature": "AAAA" } }), 401, "bad_signature"],
    [realRequest({ headers: { "Kick-Event-Signature": null } }), 400, "missing_headers"],
    [realRequest({ headers: { "Kick-Event-Message-Id": null } }), 400, "missing_headers"],
    [
      realRequest({ headers: { "Kick-Event-Message-Timestamp": "yesterday" } }),
      400,
      "bad_timestamp",
    ],
    [realRequest({ method: "GET" }), 405, "method_not_allowed"],
    [realRequest({ path: "/other" }), 404, "not_found"],
    [realRequest({ body: new Uint8Array(70 * 1024) }), 413, "too_large"],
  ];
  for (const [req, status, outcome] of cases) {
    const res = await receiver.handle(req);
    await res.body?.cancel();
    assert.equal(res.status, status, outcome);
    assert.equal(outcomes.at(-1), outcome);
  }
  assert.equal(got.length, 0);
  const st = receiver.stats();
  assert.equal(st.accepted, 0);
  assert.deepEqual(st.rejected, {
    bad_signature: 2,
    missing_headers: 2,
    bad_timestamp: 1,
    method_not_allowed: 1,
    not_found: 1,
    too_large: 1,
  });
  // A bad-signature attempt did not poison the dedupe set: the genuine delivery still goes through.
  assert.equal((await receiver.handle(realRequest())).status, 200);
  assert.equal(got.length, 1);
});

Deno.test("webhook receiver: rejection log lines are rate-limited per outcome; counters are not", async () => {
  const logs = await captureLogs();
  const records = logs.records;
  try {
    const { receiver, outcomes } = realReceiver();
    for (let i = 0; i < 12; i++) {
      const req = realRequest({ headers: { "Kick-Event-Signature": "AAAA" } });
      await (await receiver.handle(req)).body?.cancel();
    }
    for (let i = 0; i < 7; i++) {
      const req = realRequest({ headers: { "Kick-Event-Message-Id": null } });
      await (await receiver.handle(req)).body?.cancel();
    }
    assert.equal(outcomes.length, 19);
    assert.deepEqual(receiver.stats().rejected, { bad_signature: 12, missing_headers: 7 });
    const warned = (outcome: string) =>
      records.filter((r) => r.level === "warning" && r.properties.outcome === outcome).length;
    assert.equal(warned("bad_signature"), 5);
    assert.equal(warned("missing_headers"), 5);
  } finally {
    await logs.restore();
  }
});

Deno.test("webhook receiver: 5-minute window on Kick-Event-Message-Timestamp → 401", async () => {
  const ts = Date.parse(H["Kick-Event-Message-Timestamp"]);
  for (
    const [offset, ok] of [[-5 * 60_000 + 1000, true], [5 * 60_000 - 1000, true], [
      6 * 60_000,
      false,
    ], [-6 * 60_000, false]] as const
  ) {
    const { receiver } = realReceiver({ now: () => ts + offset });
    const res = await receiver.handle(realRequest());
    await res.body?.cancel();
    assert.equal(res.status, ok ? 200 : 401, `offset ${offset}`);
  }
  // With the real clock the 2025 delivery is a stale replay.
  const { receiver } = realReceiver({ now: Date.now });
  const res = await receiver.handle(realRequest());
  assert.equal(res.status, 401);
  assert.equal(await res.text(), "stale_timestamp");
});

Deno.test("webhook receiver: unknown type or version → 204 ignored (after authentication)", async () => {
  const sender = await WebhookSender.create();
  const got: Observation[] = [];
  const receiver = new WebhookReceiver({
    publicKeyPem: sender.publicKeyPem,
    onObservation: (o) => void got.push(o),
  });
  const d1 = await sender.build({ body: { anything: 1 }, type: "chat.message.sent" });
  const r1 = await receiver.handle(
    new Request("http://x/webhooks/kick", {
      method: "POST",
      headers: d1.headers,
      body: d1.rawBody,
    }),
  );
  assert.equal(r1.status, 204);
  const d2 = await sender.build({ body: JSON.parse(RAW), version: "2" });
  const r2 = await receiver.handle(
    new Request("http://x/webhooks/kick", {
      method: "POST",
      headers: d2.headers,
      body: d2.rawBody,
    }),
  );
  assert.equal(r2.status, 204);
  // Unknown type with a bad signature is still a 401.
  const d3 = await sender.build({ body: { anything: 1 }, type: "chat.message.sent" }, {
    tamper: true,
  });
  const r3 = await receiver.handle(
    new Request("http://x/webhooks/kick", {
      method: "POST",
      headers: d3.headers,
      body: d3.rawBody,
    }),
  );
  await r3.body?.cancel();
  assert.equal(r3.status, 401);
  assert.equal(got.length, 0);
  assert.deepEqual(receiver.stats().ignored, { ignored_type: 1, ignored_version: 1 });
});

Deno.test("webhook receiver: signed but malformed body → 400; handler throw → 500 and retry accepted", async () => {
  const sender = await WebhookSender.create();
  let fail = true;
  const got: Observation[] = [];
  const receiver = new WebhookReceiver({
    publicKeyPem: sender.publicKeyPem,
    onObservation: (o) => {
      if (fail) throw new Error("queue full");
      got.push(o);
    },
  });
  const post = (d: { headers: Record<string, string>; rawBody: Uint8Array<ArrayBuffer> }) =>
    receiver.handle(
      new Request("http://x/webhooks/kick", {
        method: "POST",
        headers: d.headers,
        body: d.rawBody,
      }),
    );

  const bad = await post(await sender.build({ body: "{not json" }));
  assert.equal(bad.status, 400);
  assert.equal(await bad.text(), "malformed_body");
  const bad2 = await post(
    await sender.build({ body: { broadcaster: { user_id: 1 }, is_live: "no" } }),
  );
  assert.equal(bad2.status, 400);
  await bad2.body?.cancel();

  const world = new World();
  const s = world.add({ userId: 77, slug: "seventyseven", channelId: 7700, live: true });
  const d = await sender.build({ kind: "live", streamer: s });
  const r1 = await post(d);
  await r1.body?.cancel();
  assert.equal(r1.status, 500);
  fail = false;
  const r2 = await post(d); // Kick's retry of the same message id
  await r2.body?.cancel();
  assert.equal(r2.status, 200);
  assert.equal(got.length, 1);
  assert.equal(got[0].broadcasterUserId, 77);
});

Deno.test("webhook receiver: answers 200 without waiting for a slow onObservation", async () => {
  const sender = await WebhookSender.create();
  let finish!: () => void;
  const slow = new Promise<void>((r) => (finish = r));
  let called = 0;
  const receiver = new WebhookReceiver({
    publicKeyPem: sender.publicKeyPem,
    onObservation: () => {
      called++;
      return slow; // e.g. a database write that has not finished
    },
  });
  const world = new World();
  const s = world.add({ userId: 5, slug: "five", channelId: 55, live: true });
  const d = await sender.build({ kind: "live", streamer: s });
  const res = await receiver.handle(
    new Request("http://x/webhooks/kick", { method: "POST", headers: d.headers, body: d.rawBody }),
  );
  assert.equal(res.status, 200);
  assert.equal(called, 1);
  await res.body?.cancel();
  finish();
});

Deno.test("webhook receiver: the dedupe set is bounded", async () => {
  const sender = await WebhookSender.create();
  const got: Observation[] = [];
  const receiver = new WebhookReceiver({
    publicKeyPem: sender.publicKeyPem,
    dedupeMaxEntries: 2,
    onObservation: (o) => void got.push(o),
  });
  const world = new World();
  const s = world.add({ userId: 9, slug: "nine", channelId: 99, live: true });
  const ds = [];
  for (let i = 0; i < 3; i++) ds.push(await sender.build({ kind: "live", streamer: s }));
  for (const d of ds) {
    const r = await receiver.handle(
      new Request("http://x/webhooks/kick", {
        method: "POST",
        headers: d.headers,
        body: d.rawBody,
      }),
    );
    await r.body?.cancel();
  }
  // ds[0] was evicted, ds[2] is remembered.
  const again0 = await receiver.handle(
    new Request("http://x/webhooks/kick", {
      method: "POST",
      headers: ds[0].headers,
      body: ds[0].rawBody,
    }),
  );
  const again2 = await receiver.handle(
    new Request("http://x/webhooks/kick", {
      method: "POST",
      headers: ds[2].headers,
      body: ds[2].rawBody,
    }),
  );
  assert.equal(await again0.text(), "accepted");
  assert.equal(await again2.text(), "duplicate");
});

// ---------------------------------------------------------------------------
// End to end over real HTTP: simulator key endpoint + Deno.serve + sender.

Deno.test("webhook e2e: key from KickApi.getPublicKey, real HTTP, world changes, key rotation", async () => {
  const senderA = await WebhookSender.create();
  const senderB = await WebhookSender.create();
  const world = new World();
  const s = world.add({ userId: 2570626, slug: "bossmanjack", channelId: 2515504 });
  const sim = startApiServer({
    world,
    clientId: "c",
    clientSecret: "s",
    webhookPublicKeyPem: senderA.publicKeyPem,
  });
  const tokens = new TokenProvider({ oauthUrl: sim.oauthUrl, clientId: "c", clientSecret: "s" });
  const api = new KickApi({ baseUrl: sim.apiUrl, tokens });
  const got: Observation[] = [];
  const receiver = new WebhookReceiver({
    keySource: api,
    keyRefetchIntervalMs: 0,
    onObservation: (o) => void got.push(o),
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    receiver.handler,
  );
  const url = `http://127.0.0.1:${server.addr.port}/webhooks/kick`;
  try {
    const detach = senderA.attach(world, url);
    world.setLive(s.userId, true);
    world.setLive(s.userId, false);
    await detach();
    assert.deepEqual(got.map((o) => o.status), ["online", "offline"]);
    assert.ok(got.every((o) => o.broadcasterUserId === 2570626 && o.source === "webhook"));
    assert.equal(got[1].eventTime !== undefined && got[1].eventTime >= got[0].eventTime!, true);
    assert.equal(sim.requests("/public/v1/public-key"), 1); // cached

    const tampered = await senderA.deliver(url, { kind: "live", streamer: s }, { tamper: true });
    assert.equal(tampered.status, 401);

    // Kick rotates its key: the first B-signed delivery triggers one refetch.
    sim.setWebhookPublicKeyPem(senderB.publicKeyPem);
    world.setLive(s.userId, true, { publish: false });
    const r = await senderB.deliver(url, { kind: "live", streamer: s });
    assert.equal(r.status, 200);
    assert.equal(got.length, 3);
    assert.ok(sim.requests("/public/v1/public-key") >= 2);
  } finally {
    await server.shutdown();
    await sim.close();
  }
});

Deno.test("webhook receiver: key source failing → 503 (so Kick retries), then recovers", async () => {
  const sender = await WebhookSender.create();
  let fail = true;
  const receiver = new WebhookReceiver({
    keySource: {
      getPublicKey: () =>
        fail ? Promise.reject(new Error("api down")) : Promise.resolve(sender.publicKeyPem),
    },
    keyRetryMs: 0,
    onObservation: () => {},
  });
  const world = new World();
  const s = world.add({ userId: 3, slug: "three", channelId: 33, live: true });
  const d = await sender.build({ kind: "live", streamer: s });
  const post = () =>
    receiver.handle(
      new Request("http://x/webhooks/kick", {
        method: "POST",
        headers: d.headers,
        body: d.rawBody,
      }),
    );
  const r1 = await post();
  await r1.body?.cancel();
  assert.equal(r1.status, 503);
  fail = false;
  const r2 = await post();
  await r2.body?.cancel();
  assert.equal(r2.status, 200);
  assert.deepEqual(receiver.stats().rejected, { key_unavailable: 1 });
});
