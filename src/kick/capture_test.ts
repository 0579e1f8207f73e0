import assert from "node:assert/strict";
import { apiFileBase, CaptureRecorder, frameFileBase, readCapture } from "./capture.ts";

Deno.test("capture: file names follow tests/fixtures/ (event and endpoint in kebab case)", () => {
  assert.equal(frameFileBase("App\\Events\\StreamerIsLive"), "streamer-is-live");
  assert.equal(frameFileBase("App\\Events\\StopStreamBroadcast"), "stop-stream-broadcast");
  assert.equal(frameFileBase("pusher:connection_established"), "pusher-connection-established");
  assert.equal(
    frameFileBase("pusher_internal:subscription_succeeded"),
    "pusher-subscription-succeeded",
  );
  assert.equal(frameFileBase("GoalProgressUpdateEvent"), "goal-progress-update-event");
  assert.equal(frameFileBase(null), "pusher-unparsed");
  assert.equal(apiFileBase("GET /channels"), "api-channels");
  assert.equal(apiFileBase("POST /oauth/token"), "api-oauth-token");
  assert.equal(apiFileBase("GET unofficial /channels/{slug}"), "api-unofficial-channels-slug");
});

Deno.test("capture: a written capture reads back verbatim and in order, secrets scrubbed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const t0 = Date.parse("2026-12-02T05:00:00Z");
    const rec = new CaptureRecorder({ source: "kickmon capture test", startedAt: t0 });
    rec.addSecrets(["client-secret-value", "ab"]);
    const live =
      '{"event":"App\\\\Events\\\\StreamerIsLive","data":"{\\"x\\":1}","channel":"channel.7"}';
    rec.addFrame(live, t0 + 20, "ws://sim, shard 0");
    rec.addFrame("not json client-secret-value", t0 + 30, "ws://sim, shard 0");
    rec.addExchange({
      endpoint: "GET /channels",
      method: "GET",
      url: "http://sim/public/v1/channels?slug=x",
      status: 200,
      headers: { "content-type": "application/json" },
      body: '{"data":[],"echo":"tok-seen"}',
      sentAt: t0 + 10,
      durationMs: 3,
      removed: ["tok-seen"],
    });
    const m = await rec.write(dir, {
      kickmon_version: "0.0.0",
      ended_at: new Date(t0 + 1000).toISOString(),
      ended_because: "duration",
      pusher: { url: "ws://sim", key: "k" },
      api_url: "http://sim/public/v1",
      oauth_url: "http://sim",
      streamers: [],
      channels: ["channel.7"],
      notes: [],
    });
    assert.deepEqual(m.files.map((f) => f.file), [
      "api-channels-1.json",
      "streamer-is-live-1.json",
      "pusher-unparsed-1.json",
    ]);
    const { frames, answers } = await readCapture(dir);
    assert.equal(frames[0].text, live, "the frame text is kept byte for byte");
    assert.equal(frames[0].channel, "channel.7");
    assert.equal(frames[1].text, "not json [REDACTED]");
    assert.equal(answers[0].body, '{"data":[],"echo":"[REDACTED]"}');
    assert.equal(answers[0].url.search, "?slug=x");
    let all = "";
    for await (const e of Deno.readDir(dir)) all += await Deno.readTextFile(`${dir}/${e.name}`);
    assert.ok(!all.includes("client-secret-value") && !all.includes("tok-seen"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
