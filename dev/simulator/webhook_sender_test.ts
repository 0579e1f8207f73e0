import assert from "node:assert/strict";
import { World } from "./world.ts";
import { rfc3339Seconds, ulid, WebhookSender } from "./webhook_sender.ts";
import {
  importKickPublicKey,
  verifyKickSignature,
} from "../../src/kick/official/webhook_signature.ts";
import realDelivery from "../../tests/fixtures/webhook-livestream-status-updated-1.json" with {
  type: "json",
};

interface Captured {
  headers: Headers;
  raw: Uint8Array;
}

function startCapture(status = 200) {
  const got: Captured[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    got.push({ headers: req.headers, raw: new Uint8Array(await req.arrayBuffer()) });
    return new Response("ok", { status });
  });
  return {
    got,
    url: `http://127.0.0.1:${server.addr.port}/webhooks/kick`,
    close: () => server.shutdown(),
  };
}

function keysDeep(v: unknown): unknown {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    return Object.entries(v).map(([k, x]) => [k, keysDeep(x)]);
  }
  return null;
}

Deno.test("webhook_sender: ulid and RFC 3339 helpers", () => {
  // The real message id 01JQR5KV0Q… encodes 2025-04-01T07:56:19.863Z.
  const id = ulid(Date.parse("2025-04-01T07:56:19.863Z"));
  assert.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.equal(id.slice(0, 10), "01JQR5KV0Q");
  assert.notEqual(ulid(), ulid());
  assert.equal(rfc3339Seconds(Date.UTC(2025, 3, 1, 7, 56, 19, 999)), "2025-04-01T07:56:19Z");
});

Deno.test("webhook_sender: real-shaped delivery, verifiable with the published PEM", async () => {
  const sender = await WebhookSender.create();
  assert.match(
    sender.publicKeyPem,
    /^-----BEGIN PUBLIC KEY-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END PUBLIC KEY-----\n$/,
  );
  const cap = startCapture();
  try {
    const world = new World();
    const s = world.add({
      userId: 4809577,
      slug: "fusedchat",
      channelId: 4700000,
      live: true,
      title: "Multiplatform bot!",
    });
    const r = await sender.deliver(cap.url, { kind: "live", streamer: s });
    assert.equal(r.status, 200);
    assert.equal(r.responseBody, "ok");
    const { headers, raw } = cap.got[0];

    // Headers as in §4.8.
    assert.equal(headers.get("Kick-Event-Type"), "livestream.status.updated");
    assert.equal(headers.get("Kick-Event-Version"), "1");
    assert.equal(headers.get("Kick-Event-Message-Id"), r.messageId);
    assert.match(headers.get("Kick-Event-Message-Id")!, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.match(headers.get("Kick-Event-Subscription-Id")!, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.match(headers.get("Kick-Event-Message-Timestamp")!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    // Body: same keys, same order, same types as the real delivery.
    const body = JSON.parse(new TextDecoder().decode(raw));
    assert.deepEqual(keysDeep(body), keysDeep(realDelivery.webhook.body));
    assert.equal(body.broadcaster.user_id, 4809577);
    assert.equal(body.broadcaster.channel_slug, "fusedchat");
    assert.equal(body.broadcaster.is_verified, null);
    assert.equal(body.is_live, true);
    assert.equal(body.title, "Multiplatform bot!");
    assert.equal(body.started_at, rfc3339Seconds(Date.parse(s.startedAt!)));
    assert.equal(body.ended_at, null);

    // Signature verifies with the PEM the sender publishes.
    const key = await importKickPublicKey(sender.publicKeyPem);
    const input = {
      messageId: headers.get("Kick-Event-Message-Id")!,
      timestamp: headers.get("Kick-Event-Message-Timestamp")!,
      rawBody: raw,
      signatureB64: headers.get("Kick-Event-Signature")!,
    };
    assert.equal(await verifyKickSignature(input, key), true);
    // ...and not with Kick's real key.
    const other = await WebhookSender.create();
    assert.equal(await verifyKickSignature(input, other.publicKey), false);
  } finally {
    await cap.close();
  }
});

Deno.test("webhook_sender: tamper, fixed message id/timestamp, offline body", async () => {
  const sender = await WebhookSender.create();
  const key = sender.publicKey;
  const world = new World();
  const s = world.add({ userId: 1, slug: "one", channelId: 11 });
  world.setLive(1, true, { publish: false });
  const startedAt = s.startedAt!;

  const live = await sender.build({ kind: "live", streamer: { ...s } }, {
    messageId: "01JQR5KV0QC94HMETWYNBWRW4Z",
    timestamp: "2025-04-01T07:56:19Z",
  });
  assert.equal(live.headers["Kick-Event-Message-Id"], "01JQR5KV0QC94HMETWYNBWRW4Z");
  assert.equal(live.headers["Kick-Event-Message-Timestamp"], "2025-04-01T07:56:19Z");
  const verify = (d: typeof live) =>
    verifyKickSignature({
      messageId: d.headers["Kick-Event-Message-Id"],
      timestamp: d.headers["Kick-Event-Message-Timestamp"],
      rawBody: d.rawBody,
      signatureB64: d.headers["Kick-Event-Signature"],
    }, key);
  assert.equal(await verify(live), true);
  assert.equal(
    await verify(await sender.build({ kind: "live", streamer: s }, { tamper: true })),
    false,
  );

  world.setLive(1, false, { publish: false });
  const off = await sender.build({ kind: "offline", streamer: { ...s } });
  const body = JSON.parse(new TextDecoder().decode(off.rawBody));
  assert.equal(body.is_live, false);
  assert.equal(body.started_at, rfc3339Seconds(Date.parse(startedAt))); // remembered from the live change
  assert.match(body.ended_at, /Z$/);
  // One subscription id per broadcaster, like a real subscription.
  assert.equal(
    off.headers["Kick-Event-Subscription-Id"],
    live.headers["Kick-Event-Subscription-Id"],
  );
});

Deno.test("webhook_sender: attach delivers every published world change in order", async () => {
  const sender = await WebhookSender.create();
  const cap = startCapture();
  try {
    const world = new World();
    const a = world.add({ userId: 10, slug: "ten", channelId: 100 });
    const b = world.add({ userId: 20, slug: "twenty", channelId: 200 });
    const detach = sender.attach(world, cap.url);
    world.setLive(a.userId, true);
    world.setLive(b.userId, true);
    world.setLive(a.userId, false);
    world.setLive(b.userId, false, { publish: false }); // not published → not delivered
    await detach();
    world.setLive(b.userId, true); // after detach → not delivered
    const bodies = cap.got.map((c) => JSON.parse(new TextDecoder().decode(c.raw)));
    assert.deepEqual(bodies.map((x) => [x.broadcaster.user_id, x.is_live]), [
      [10, true],
      [20, true],
      [10, false],
    ]);
    assert.equal(bodies[2].started_at, bodies[0].started_at);
    assert.equal(new Set(cap.got.map((c) => c.headers.get("Kick-Event-Message-Id"))).size, 3);
  } finally {
    await cap.close();
  }
});

Deno.test("webhook_sender: custom string body is sent verbatim and signed", async () => {
  const sender = await WebhookSender.create();
  const d = await sender.build({ body: "{not json", type: "chat.message.sent", version: "2" });
  assert.equal(new TextDecoder().decode(d.rawBody), "{not json");
  assert.equal(d.headers["Kick-Event-Type"], "chat.message.sent");
  assert.equal(d.headers["Kick-Event-Version"], "2");
  assert.equal(
    await verifyKickSignature({
      messageId: d.messageId,
      timestamp: d.headers["Kick-Event-Message-Timestamp"],
      rawBody: d.rawBody,
      signatureB64: d.headers["Kick-Event-Signature"],
    }, sender.publicKey),
    true,
  );
});
