import assert from "node:assert/strict";
import type { Observation } from "../src/core/types.ts";
import {
  parseLivestreamStatusUpdated,
  WebhookPayloadError,
} from "../src/kick/official/webhook_payload.ts";
import realDelivery from "./fixtures/webhook-livestream-status-updated-1.json" with {
  type: "json",
};
import docsStarted from "./fixtures/webhook-livestream-status-updated-2.json" with {
  type: "json",
};
import docsEnded from "./fixtures/webhook-livestream-status-updated-3.json" with {
  type: "json",
};

const H = realDelivery.webhook.headers;
const RAW = realDelivery.webhook.raw_body;

Deno.test("webhook: parseLivestreamStatusUpdated on the real delivery and the docs examples", () => {
  const obs = parseLivestreamStatusUpdated(JSON.parse(RAW), {
    messageId: H["Kick-Event-Message-Id"],
    observedAt: 1234,
    receivedMono: 5.5,
  });
  assert.deepEqual(
    obs,
    {
      source: "webhook",
      key: { kind: "broadcaster_user_id", userId: 4809577 },
      status: "online",
      observedAt: 1234,
      eventTime: Date.parse("2025-04-01T07:56:18Z"),
      event: "livestream.status.updated",
      broadcasterUserId: 4809577,
      extra: { message_id: "01JQR5KV0QC94HMETWYNBWRW4Z", channel_slug: "fusedchat" },
      receivedMono: 5.5,
    } satisfies Observation,
  );

  const started = parseLivestreamStatusUpdated(docsStarted.webhook.body);
  assert.equal(started.status, "online");
  assert.equal(started.eventTime, Date.parse("2025-01-01T11:00:00+11:00"));
  const ended = parseLivestreamStatusUpdated(docsEnded.webhook.body);
  assert.equal(ended.status, "offline");
  assert.equal(ended.eventTime, Date.parse("2025-01-01T15:00:00+11:00"));
  assert.equal(ended.broadcasterUserId, 123456789);
  assert.equal(ended.extra?.channel_slug, "broadcaster_channel");
});

Deno.test("webhook: invalid payloads throw WebhookPayloadError with the issue path", () => {
  const body = JSON.parse(RAW);
  for (
    const [bad, path] of [
      [{ ...body, is_live: "true" }, "is_live"],
      [
        { ...body, broadcaster: { ...body.broadcaster, user_id: "4809577" } },
        "broadcaster.user_id",
      ],
      [{}, "broadcaster"],
      [null, "(root)"],
    ] as const
  ) {
    const e = (() => {
      try {
        parseLivestreamStatusUpdated(bad);
      } catch (e) {
        return e;
      }
    })();
    assert.ok(e instanceof WebhookPayloadError, `no error for ${JSON.stringify(bad)}`);
    assert.equal(e.issuePath, path);
  }
});
