/**
 * Issue 3: Kick's official webhooks as a second real-time source, through a
 * real `kickmon start` process.
 */
import type { Sql } from "../src/db/client.ts";
import { deleteStreamers } from "../src/db/streamers_repo.ts";
import assert from "node:assert/strict";
import { WebhookSender } from "../dev/simulator/webhook_sender.ts";
import { freePort, waitFor } from "./helpers/database.ts";
import { startRig } from "./helpers/harness.ts";

Deno.test("webhooks: signed deliveries write; tampered, foreign-key, stale and replayed ones do not", async () => {
  const port = freePort();
  const rig = await startRig({
    KICK_WEBHOOK_ENABLED: "true",
    KICK_WEBHOOK_LISTEN: `127.0.0.1:${port}`,
    MONITORING_RECONCILE_INTERVAL: "3600",
  });
  const url = `http://127.0.0.1:${port}/webhooks/kick`;
  try {
    const s = rig.sim.world.add({ userId: 4809577, slug: "fusedchat", channelId: 4700001 });
    const id = await rig.insert({ username: "fusedchat", userId: 4809577, status: "offline" });
    // kickmon ensures one livestream.status.updated subscription per active streamer.
    await waitFor(
      () => rig.sim.api.subscriptions().some((x) => x.broadcaster_user_id === 4809577),
      { timeoutMs: 5000, message: "webhook subscription created" },
    );
    const live = {
      kind: "live" as const,
      streamer: { ...s, live: true, startedAt: new Date().toISOString() },
    };

    // Rejected: body tampered after signing; signed with another key; stale timestamp.
    assert.equal((await rig.sim.webhooks.deliver(url, live, { tamper: true })).status, 401);
    const stranger = await WebhookSender.create();
    assert.equal((await stranger.deliver(url, live)).status, 401);
    const stale = new Date(Date.now() - 6 * 60_000).toISOString().replace(/\.\d+Z$/, "Z");
    assert.equal((await rig.sim.webhooks.deliver(url, live, { timestamp: stale })).status, 401);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await rig.status(id), "offline");
    assert.equal((await rig.events(id)).length, 0);

    // Accepted, then replayed with the same message id: one row.
    const ok = await rig.sim.webhooks.deliver(url, live);
    assert.equal(ok.status, 200);
    await rig.waitStatus(id, "online", 3000);
    const replay = await rig.sim.webhooks.deliver(url, live, { messageId: ok.messageId });
    assert.equal(replay.status, 200);
    // Unknown event type: ignored with 204.
    const other = await rig.sim.webhooks.deliver(url, {
      body: { hello: "world" },
      type: "chat.message.sent",
    });
    assert.equal(other.status, 204);
    const off = { kind: "offline" as const, streamer: { ...s, live: false } };
    assert.equal((await rig.sim.webhooks.deliver(url, off)).status, 200);
    await rig.waitStatus(id, "offline", 3000);
    const ev = await rig.events(id);
    assert.deepEqual(ev.map((e) => `${e.event_type}/${e.source}`), [
      "online/webhook",
      "offline/webhook",
    ]);

    // A streamer leaving the table loses its subscription.
    await deleteStreamers(rig.sql as unknown as Sql, { ids: [id] });
    await waitFor(
      () => !rig.sim.api.subscriptions().some((x) => x.broadcaster_user_id === 4809577),
      { timeoutMs: 5000, message: "webhook subscription removed" },
    );
  } finally {
    await rig.close();
  }
});

/** RFC 3339 in whole seconds, as Kick sends `Kick-Event-Message-Timestamp`. */
const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");

Deno.test("webhooks: a late delivery loses against a newer Pusher event; a replay after a restart is a duplicate", async () => {
  const port = freePort();
  const healthPort = freePort();
  const rig = await startRig({
    KICK_WEBHOOK_ENABLED: "true",
    KICK_WEBHOOK_LISTEN: `127.0.0.1:${port}`,
    HEALTH_CHECK_ENABLED: "true",
    HEALTH_CHECK_LISTEN: `127.0.0.1:${healthPort}`,
    MONITORING_RECONCILE_INTERVAL: "3600",
  });
  const url = `http://127.0.0.1:${port}/webhooks/kick`;
  try {
    const { streamer: s, id } = await rig.watch({
      userId: 4809578,
      slug: "latecomer",
      channelId: 4700002,
    });
    await waitFor(
      () => rig.sim.api.subscriptions().some((x) => x.broadcaster_user_id === s.userId),
      { timeoutMs: 5000, message: "webhook subscription created" },
    );
    rig.sim.world.setLive(s.userId, true);
    await rig.waitStatus(id, "online");
    rig.sim.world.setLive(s.userId, false);
    await rig.waitStatus(id, "offline");
    // Kick sent this "live" two minutes ago; it arrives only now (a retry).
    const late = await rig.sim.webhooks.deliver(url, {
      kind: "live",
      streamer: { ...s, live: true, startedAt: rfc3339(Date.now() - 180_000) },
    }, { timestamp: rfc3339(Date.now() - 120_000) });
    assert.equal(late.status, 200);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await rig.status(id), "offline", "the late webhook does not undo the newer state");

    // Accepted now, then replayed verbatim after a restart: one row.
    rig.sim.world.setLive(s.userId, true, { publish: false }); // the API agrees after the restart
    const fresh = { kind: "live" as const, streamer: { ...s, live: true } };
    const ts = rfc3339(Date.now());
    const first = await rig.sim.webhooks.deliver(url, fresh, { timestamp: ts });
    assert.equal(first.status, 200);
    await rig.waitStatus(id, "online", 3000);
    await rig.restart();
    const replay = await rig.sim.webhooks.deliver(url, fresh, {
      messageId: first.messageId,
      timestamp: ts,
    });
    assert.equal(replay.status, 200);
    const metrics = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
    assert.match(metrics, /kickmon_webhook_deliveries_total\{outcome="duplicate"\} 1/);
    const ev = await rig.events(id);
    assert.deepEqual(ev.map((e) => `${e.event_type}/${e.source}`), [
      "online/pusher",
      "offline/pusher",
      "online/webhook",
    ]);
  } finally {
    await rig.close();
  }
});
