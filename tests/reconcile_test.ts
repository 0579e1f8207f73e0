/**
 * Issue 3: the database converges to the official API's truth whatever
 * happens to the socket. Runs in the simulator API mode named by
 * `KICKMON_TEST_SIM_API` (`helpers/api_modes.ts`); the scenarios shared with
 * `api_move_test.ts` are in `helpers/reconcile_scenarios.ts`.
 */
import assert from "node:assert/strict";
import { waitFor } from "./helpers/database.ts";
import { simApiMode, simApiOptions } from "./helpers/api_modes.ts";
import { type Rig, startRig } from "./helpers/harness.ts";
import { gapScenario, raceScenario, usernameOnlyScenario } from "./helpers/reconcile_scenarios.ts";
import type { SimStreamer } from "../dev/simulator/world.ts";

Deno.test("gap: transitions while no socket is up are corrected by reconciliation", () =>
  gapScenario(simApiMode()));

Deno.test("race: a reconciliation answer requested before a newer event cannot undo it", () =>
  raceScenario(simApiMode()));

Deno.test("identity: a streamer inserted with only a username is resolved and subscribed", () =>
  usernameOnlyScenario(simApiMode()));

Deno.test("API faults: 429, Cloudflare 403, 401 and malformed bodies leave kickmon running", async () => {
  const rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "1" }, simApiOptions());
  try {
    const s = rig.sim.world.add({ userId: 3131, slug: "faulty", channelId: 3232 });
    const id = await rig.insert({ username: "faulty", userId: 3131, channelId: 3232 });
    await rig.waitStatus(id, "offline", 5000);
    const api = rig.sim.api;
    api.failNext("/public/v1/channels", {
      status: 429,
      body: '{"message":"Too Many Attempts."}',
      headers: { "retry-after": "1" },
    });
    api.failNext("/public/v1/channels", {
      status: 403,
      body: '{"error":"Request blocked by security policy.","reference":"9e4db7e3"}',
    }, 1);
    await waitFor(() => rig.kickmon.lines.some((l) => /blocked|security policy/i.test(l)), {
      timeoutMs: 10_000,
      message: "a log line about the Cloudflare block",
    });
    api.failNext("/public/v1/channels", {
      status: 200,
      body: `{"data":[{"slug":5}],"message":"OK"}`,
    });
    await waitFor(() => rig.kickmon.lines.some((l) => /malformed/i.test(l)), {
      timeoutMs: 20_000,
      message: "a log line about the malformed body",
    });
    api.expireAllTokens(); // next call gets 401, refreshes once, retries
    rig.sim.world.setLive(s.userId, true, { publish: false });
    await rig.waitStatus(id, "online", 15_000);
    assert.ok(api.requests("/oauth/token") >= 2, "token refreshed after the 401");
    // Still running, and it logged each fault.
    const exited = await Promise.race([
      rig.kickmon.status.then(() => true),
      Promise.resolve(false),
    ]);
    assert.equal(exited, false);
  } finally {
    await rig.close();
  }
});

Deno.test("identity: KICK_UNOFFICIAL_CHANNEL_LOOKUP finds the channel id before the first stream; a Cloudflare page is reported", async () => {
  const rig = await startRig({
    MONITORING_RECONCILE_INTERVAL: "1",
    KICK_UNOFFICIAL_CHANNEL_LOOKUP: "true",
  }, simApiOptions());
  try {
    await rig.sql`ALTER TABLE streamers ALTER COLUMN kick_user_id DROP NOT NULL`;
    rig.sim.world.add({ userId: 1212, slug: "earlybird", channelId: 3434 });
    const id = await rig.insert({ username: "earlybird" });
    await waitFor(async () => {
      const r = await rig.identity(id);
      return r.kickChannelId === 3434 && r.kickUserId === 1212;
    }, { timeoutMs: 5000, message: "channel id from kick.com/api/v2 while offline" });
    await waitFor(() => rig.sim.pusher.subscriberCount("channel.3434") === 1, { timeoutMs: 3000 });

    rig.sim.api.setUnofficialBlocked("html");
    rig.sim.world.add({ userId: 5656, slug: "blocked", channelId: 7878 });
    const b = await rig.insert({ username: "blocked" });
    await waitFor(() => rig.kickmon.lines.some((l) => /unofficial lookup of \W*blocked/.test(l)), {
      timeoutMs: 5000,
      message: "the blocked lookup is logged",
    });
    await rig.waitStatus(b, "offline", 5000); // still watched by reconciliation
    assert.equal((await rig.identity(b)).kickChannelId, null);
    // Cloudflare lets requests through again: a later pass retries (backoff from
    // the 1 s reconciliation interval), and the channel gets watched on Pusher.
    const blockedRequests = rig.sim.api.requests("/api/v2/channels/blocked");
    rig.sim.api.setUnofficialBlocked(false);
    await waitFor(async () => {
      return (await rig.identity(b)).kickChannelId === 7878;
    }, { timeoutMs: 10_000, message: "channel id found by a retry after the block" });
    await waitFor(() => rig.sim.pusher.subscriberCount("channel.7878") === 1, { timeoutMs: 3000 });
    assert.ok(blockedRequests >= 1, "the blocked lookup reached the simulator");
  } finally {
    await rig.close();
  }
});

/**
 * Withholds the StopStreamBroadcast of a live streamer's stream and sends the
 * next stream's StreamerIsLive; waits for the third history row.
 *
 * @returns the history and the two livestream ids.
 */
async function loseStopThenGoLiveAgain(rig: Rig, s: SimStreamer, id: number) {
  const first = s.livestreamId;
  rig.sim.world.setLive(s.userId, false, { publish: false });
  rig.sim.world.setLive(s.userId, true);
  const second = s.livestreamId;
  await waitFor(async () => (await rig.events(id)).length === 3, { timeoutMs: 5000 });
  const ev = await rig.events(id);
  assert.deepEqual(ev.map((e) => `${e.event_type}/${e.details.livestream_id}`), [
    `online/${first}`,
    `offline/${first}`,
    `online/${second}`,
  ]);
  return ev;
}

Deno.test("lost frames: a frame for a newer livestream records the stream boundary it proves", async () => {
  const rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "3600" }, simApiOptions());
  try {
    const { streamer: s, id } = await rig.watch({ userId: 5101, slug: "lossy", channelId: 7101 });
    await rig.waitStatus(id, "offline");
    rig.sim.world.setLive(s.userId, true);
    await rig.waitStatus(id, "online");
    const ev = await loseStopThenGoLiveAgain(rig, s, id);
    assert.equal(ev[1].details.inferred, true);
    assert.equal(ev[2].details.inferred, undefined);
    assert.equal(ev[1].details.previous_status, "online");
    assert.equal(await rig.status(id), "online");
  } finally {
    await rig.close();
  }
});

Deno.test("lost frames after a restart: the last livestream is taken from history", async () => {
  const rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "3600" }, simApiOptions());
  try {
    const { streamer: s, id } = await rig.watch({
      userId: 5201,
      slug: "restarted",
      channelId: 7201,
    });
    rig.sim.world.setLive(s.userId, true);
    await rig.waitStatus(id, "online");
    await rig.restart();
    await rig.kickmon.waitForLine(/livestream ids of 1 streamers taken from history/, 10_000);
    await waitFor(() => rig.sim.pusher.subscriberCount("channel.7201") === 1, { timeoutMs: 5000 });
    // The first frame this process sees for the streamer is the next stream's.
    const ev = await loseStopThenGoLiveAgain(rig, s, id);
    assert.equal(ev[1].details.inferred, true);
  } finally {
    await rig.close();
  }
});

Deno.test("API faults: one malformed /channels element is skipped, not its batch of 50", async () => {
  const rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "3600" }, simApiOptions());
  try {
    const a = await rig.watch({ userId: 3301, slug: "brokenrow", channelId: 3401 });
    const b = await rig.watch({ userId: 3302, slug: "goodrow", channelId: 3402 });
    await rig.waitStatus(a.id, "offline", 5000);
    await rig.waitStatus(b.id, "offline", 5000);
    rig.sim.world.setLive(3301, true, { publish: false });
    rig.sim.world.setLive(3302, true, { publish: false });
    rig.sim.api.failNext("/public/v1/channels", {
      status: 200,
      body: JSON.stringify({
        data: [
          { broadcaster_user_id: 3301, slug: "brokenrow", stream: null },
          { broadcaster_user_id: 3302, slug: "goodrow", stream: { is_live: true } },
        ],
        message: "OK",
      }),
    });
    // A new row makes kickmon reconcile at once; that pass gets the answer above.
    rig.sim.world.add({ userId: 3303, slug: "newrow", channelId: 3403 });
    await rig.insert({ username: "newrow", userId: 3303, channelId: 3403 });
    await rig.waitStatus(b.id, "online", 5000);
    assert.equal(await rig.status(a.id), "offline", "the malformed element says nothing");
    await waitFor(() => rig.kickmon.lines.some((l) => /skipped a malformed element/.test(l)), {
      timeoutMs: 2000,
    });
  } finally {
    await rig.close();
  }
});
