import assert from "node:assert/strict";
import { WebhookSender } from "../dev/simulator/webhook_sender.ts";
import {
  importKickPublicKey,
  KickPublicKeyError,
  verifyKickSignature,
} from "../src/kick/official/webhook_signature.ts";
import realDelivery from "./fixtures/webhook-livestream-status-updated-1.json" with {
  type: "json",
};
import kickKey from "./fixtures/kick-webhook-public-key.json" with { type: "json" };

const H = realDelivery.webhook.headers;
const RAW = realDelivery.webhook.raw_body;

// ---------------------------------------------------------------------------
// Mandatory test vector.

Deno.test("webhook: the real signed delivery verifies with Kick's published key", async () => {
  const key = await importKickPublicKey(kickKey.public_key_pem);
  const input = {
    messageId: H["Kick-Event-Message-Id"],
    timestamp: H["Kick-Event-Message-Timestamp"],
    rawBody: new TextEncoder().encode(RAW),
    signatureB64: H["Kick-Event-Signature"],
  };
  assert.equal(await verifyKickSignature(input, key), true);

  // Flip one byte of the body: no longer valid.
  for (const i of [0, 57, input.rawBody.length - 1]) {
    const flipped = new Uint8Array(input.rawBody);
    flipped[i] ^= 0x01;
    assert.equal(
      await verifyKickSignature({ ...input, rawBody: flipped }, key),
      false,
      `byte ${i}`,
    );
  }
  // Re-serialised JSON (whitespace) is different bytes: not valid.
  const reserialised = new TextEncoder().encode(JSON.stringify(JSON.parse(RAW), null, 1));
  assert.equal(await verifyKickSignature({ ...input, rawBody: reserialised }, key), false);
  // A different timestamp or message id: not valid.
  assert.equal(
    await verifyKickSignature({ ...input, timestamp: "2025-04-01T07:56:20Z" }, key),
    false,
  );
  assert.equal(
    await verifyKickSignature({ ...input, messageId: "01JQR5KV0QC94HMETWYNBWRW4Y" }, key),
    false,
  );
  // A wrong key: not valid.
  const other = await WebhookSender.create();
  assert.equal(await verifyKickSignature(input, other.publicKey), false);
  // Garbage signatures never throw.
  assert.equal(
    await verifyKickSignature({ ...input, signatureB64: "%%%not base64%%%" }, key),
    false,
  );
  assert.equal(await verifyKickSignature({ ...input, signatureB64: "" }, key), false);
  assert.equal(await verifyKickSignature({ ...input, signatureB64: "AAAA" }, key), false);
});

Deno.test("webhook: importKickPublicKey rejects non-PEM input", async () => {
  await assert.rejects(importKickPublicKey("text"), KickPublicKeyError);
  await assert.rejects(
    importKickPublicKey("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
    KickPublicKeyError,
  );
});
