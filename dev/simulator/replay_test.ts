import assert from "node:assert/strict";
import { CaptureRecorder } from "../../src/kick/capture.ts";
import { loadReplay } from "./replay.ts";
import type { PusherServer } from "./pusher_server.ts";

const T0 = Date.parse("2026-12-02T05:00:00Z");

/** A capture directory: two answers to one query, one to another path, two frames. */
async function captureDir(): Promise<string> {
  const dir = await Deno.makeTempDir();
  const rec = new CaptureRecorder({ source: "replay test", startedAt: T0 });
  const answer = (url: string, body: string, at: number) =>
    rec.addExchange({
      endpoint: "GET /channels",
      method: "GET",
      url,
      status: 200,
      headers: { "content-type": "application/json" },
      body,
      sentAt: T0 + at,
      durationMs: 1,
      removed: [],
    });
  answer("https://api.kick.com/public/v1/channels?slug=a", "first", 1);
  answer("https://api.kick.com/public/v1/channels?slug=a", "second", 2);
  answer("https://api.kick.com/public/v1/livestreams?broadcaster_user_id=1", "live", 3);
  rec.addFrame(
    '{"event":"pusher_internal:subscription_succeeded","channel":"channel.1"}',
    T0 + 10,
    "x",
  );
  rec.addFrame(
    '{"event":"App\\\\Events\\\\StreamerIsLive","data":"{}","channel":"channel.1"}',
    T0 + 30,
    "x",
  );
  rec.addFrame('{"event":"pusher:pong","data":"{}"}', T0 + 40, "x");
  await rec.write(dir, {
    kickmon_version: "0",
    ended_at: new Date(T0 + 50).toISOString(),
    ended_because: "duration",
    pusher: { url: "wss://x", key: "k" },
    api_url: "https://api.kick.com/public/v1",
    oauth_url: "https://id.kick.com",
    streamers: [],
    channels: ["channel.1"],
    notes: [],
  });
  return dir;
}

Deno.test("replay: answers by method, path and query in capture order, the last repeated; else by path", async () => {
  const dir = await captureDir();
  try {
    const r = await loadReplay({ dir });
    const body = (u: string, method = "GET") => r.answer(method, new URL(u))?.body;
    assert.equal(body("http://127.0.0.1:1/public/v1/channels?slug=a"), "first");
    assert.equal(body("http://127.0.0.1:1/public/v1/channels?slug=a"), "second");
    assert.equal(body("http://127.0.0.1:1/public/v1/channels?slug=a"), "second");
    assert.equal(body("http://127.0.0.1:1/public/v1/channels?slug=b"), "second", "by path");
    assert.equal(body("http://127.0.0.1:1/public/v1/users"), undefined, "the world answers");
    assert.equal(body("http://127.0.0.1:1/public/v1/channels?slug=a", "POST"), undefined);
    assert.equal(r.answersGiven, 4);
    assert.deepEqual(r.frames.map((f) => f.event), ["App\\Events\\StreamerIsLive"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replay: frames wait for the subscriber and for every captured API path, then go verbatim", async () => {
  const dir = await captureDir();
  try {
    const r = await loadReplay({ dir, speed: Infinity });
    const sent: [string | null, string][] = [];
    let subscribers = 0;
    const server = {
      subscriberCount: () => subscribers,
      publishRaw: (channel: string | null, text: string) => (sent.push([channel, text]), 1),
    } as unknown as PusherServer;
    const done = r.play(server);
    subscribers = 1;
    await new Promise((ok) => setTimeout(ok, 100));
    assert.equal(sent.length, 0, "not before /channels and /livestreams were asked for");
    r.answer("GET", new URL("http://sim/public/v1/channels?slug=zzz"));
    r.answer("GET", new URL("http://sim/public/v1/livestreams?broadcaster_user_id=1"));
    await done;
    assert.deepEqual(sent, [[
      "channel.1",
      '{"event":"App\\\\Events\\\\StreamerIsLive","data":"{}","channel":"channel.1"}',
    ]]);
    assert.equal(r.framesSent, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
