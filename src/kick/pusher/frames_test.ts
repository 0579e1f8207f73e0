import assert from "node:assert/strict";
import {
  channelName,
  MALFORMED_REASONS,
  MAX_DATA_BYTES,
  parseChannelName,
  parseKickTimestamp,
  parsePusherEvent,
  STOP_STREAM_BROADCAST,
  StopStreamBroadcastDataSchema,
  STREAMER_IS_LIVE,
  StreamerIsLiveDataSchema,
} from "./frames.ts";

const FIXTURES = new URL("../../../tests/fixtures/", import.meta.url);

interface FixtureFrame {
  event: string;
  data: unknown;
  channel?: string;
}

async function readFixture(name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(new URL(name, FIXTURES)));
}

async function listFixtures(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(FIXTURES)) {
    if (e.isFile && e.name.startsWith(prefix) && e.name.endsWith(".json")) out.push(e.name);
  }
  return out.sort();
}

/** Builds the frame a fixture describes (docs/kick-protocol.md §8 shapes). */
function frameOf(fx: Record<string, unknown>, channelId?: number): FixtureFrame {
  if (fx.pusher_frame) return fx.pusher_frame as FixtureFrame;
  if (fx.pusher_frame_data_decoded) return fx.pusher_frame_data_decoded as FixtureFrame;
  // Decoded data only: rebuild the frame as the fixture note says.
  assert.ok(channelId !== undefined, "need a channel id to rebuild the frame");
  return {
    event: fx.event as string,
    data: JSON.stringify(fx.pusher_data_decoded),
    channel: `channel.${channelId}`,
  };
}

const NOW = 1_760_000_000_000;

Deno.test("every captured StreamerIsLive fixture parses to an online observation", async () => {
  const files = await listFixtures("streamer-is-live-");
  assert.equal(files.length, 6);
  for (const f of files) {
    const fx = await readFixture(f);
    const decoded = (fx.pusher_data_decoded ??
      JSON.parse((fx.pusher_frame as FixtureFrame).data as string)) as {
        livestream: { id: number; channel_id: number; created_at: string; session_title: string };
      };
    const ls = decoded.livestream;
    const frame = frameOf(fx, ls.channel_id);
    for (const data of [frame.data, JSON.parse(frame.data as string)]) {
      // Both the raw string and the pusher-js-parsed object form.
      const r = parsePusherEvent(frame.channel, frame.event, data, NOW, 12.5);
      assert.equal(r.kind, "observation", `${f}: ${JSON.stringify(r)}`);
      if (r.kind !== "observation") continue;
      const o = r.observation;
      assert.equal(o.status, "online");
      assert.equal(o.source, "pusher");
      assert.equal(o.event, STREAMER_IS_LIVE);
      assert.deepEqual(o.key, { kind: "channel_id", channelId: ls.channel_id });
      assert.equal(o.channelId, ls.channel_id);
      assert.equal(o.livestreamId, ls.id);
      assert.equal(o.observedAt, NOW);
      assert.equal(o.receivedMono, 12.5);
      assert.equal(o.eventTime, Date.parse(ls.created_at.replace(".000000Z", ".000Z")));
      assert.equal(o.extra?.session_title, ls.session_title);
    }
  }
});

Deno.test("the raw captured StreamerIsLive frame gives exact values", async () => {
  const fx = await readFixture("streamer-is-live-1.json");
  const frame = fx.pusher_frame as FixtureFrame;
  const r = parsePusherEvent(frame.channel, frame.event, frame.data, NOW);
  assert.deepEqual(r, {
    kind: "observation",
    observation: {
      source: "pusher",
      key: { kind: "channel_id", channelId: 2587387 },
      status: "online",
      observedAt: NOW,
      eventTime: Date.UTC(2025, 8, 14, 16, 11, 18),
      event: "App\\Events\\StreamerIsLive",
      livestreamId: 74265904,
      channelId: 2587387,
      extra: { session_title: "4HEAD | NOPIXEL 4.0 | TTS" },
    },
  });
});

Deno.test("every captured StopStreamBroadcast fixture parses to an offline observation", async () => {
  const files = await listFixtures("stop-stream-broadcast-");
  assert.equal(files.length, 4);
  for (const f of files) {
    const fx = await readFixture(f);
    const ls = (fx.pusher_data_decoded as {
      livestream: { id: number; channel: { id: number; is_banned: boolean } };
    }).livestream;
    const frame = frameOf(fx, ls.channel.id);
    for (const data of [frame.data, JSON.parse(frame.data as string)]) {
      const r = parsePusherEvent(frame.channel, frame.event, data, NOW);
      assert.equal(r.kind, "observation", `${f}: ${JSON.stringify(r)}`);
      if (r.kind !== "observation") continue;
      assert.deepEqual(r.observation, {
        source: "pusher",
        key: { kind: "channel_id", channelId: ls.channel.id },
        status: "offline",
        observedAt: NOW,
        event: STOP_STREAM_BROADCAST,
        livestreamId: ls.id,
        channelId: ls.channel.id,
        extra: { is_banned: false },
      });
    }
  }
});

Deno.test("live/offline fixture pairs name the same livestream", async () => {
  for (
    const [live, stop] of [["streamer-is-live-1.json", "stop-stream-broadcast-1.json"], [
      "streamer-is-live-2.json",
      "stop-stream-broadcast-2.json",
    ]]
  ) {
    const lf = await readFixture(live);
    const sf = await readFixture(stop);
    const lframe = lf.pusher_frame ? frameOf(lf) : frameOf(
      lf,
      (lf.pusher_data_decoded as { livestream: { channel_id: number } }).livestream.channel_id,
    );
    const sid = (sf.pusher_data_decoded as { livestream: { channel: { id: number } } }).livestream
      .channel.id;
    const a = parsePusherEvent(lframe.channel, lframe.event, lframe.data, NOW);
    const sframe = frameOf(sf, sid);
    const b = parsePusherEvent(sframe.channel, sframe.event, sframe.data, NOW);
    assert.ok(a.kind === "observation" && b.kind === "observation");
    assert.equal(a.observation.livestreamId, b.observation.livestreamId);
    assert.equal(a.observation.channelId, b.observation.channelId);
  }
});

Deno.test("the older flat StopStreamBroadcast form (§3.2, kick.py) is accepted", () => {
  const r = parsePusherEvent(
    "channel.3612810",
    STOP_STREAM_BROADCAST,
    '{"livestream":{"id":5274636,"channel_id":3612810,"is_banned":true}}',
    NOW,
  );
  assert.equal(r.kind, "observation");
  if (r.kind === "observation") {
    assert.equal(r.observation.status, "offline");
    assert.equal(r.observation.channelId, 3612810);
    assert.deepEqual(r.observation.extra, { is_banned: true });
  }
});

Deno.test("every other captured frame is ignored", async () => {
  const names = [
    ...(await listFixtures("chat-message-event-")),
    "followers-updated-1.json",
    "gifts-leaderboard-updated-1.json",
    "goal-progress-update-1.json",
    "message-deleted-event-1.json",
    "livestream-updated-1.json",
    "livestream-updated-2.json",
    "updated-live-stream-event-1.json",
    "pusher-subscribe-client-1.json",
    "pusher-subscription-succeeded-1.json",
  ];
  assert.ok(names.length >= 13);
  for (const n of names) {
    const frame = frameOf(await readFixture(n));
    const r = parsePusherEvent(frame.channel, frame.event, frame.data, NOW);
    assert.equal(r.kind, "ignored", `${n}: ${JSON.stringify(r)}`);
  }
  const pusherish = [
    ["pusher:connection_established", '{"socket_id":"1.2","activity_timeout":120}'],
    ["pusher:pong", "{}"],
    ["pusher:error", { code: 4001, message: "x" }],
    ["pusher:subscription_succeeded", {}],
    ["pusher_internal:subscription_succeeded", "{}"],
  ] as const;
  for (const [ev, data] of pusherish) {
    assert.deepEqual(parsePusherEvent(undefined, ev, data, NOW), {
      kind: "ignored",
      reason: "pusher_protocol",
    });
  }
});

Deno.test("bare event names without the App\\Events\\ prefix are accepted", () => {
  const r = parsePusherEvent(
    "channel.668",
    "StopStreamBroadcast",
    { livestream: { id: 1, channel: { id: 668, is_banned: false } } },
    NOW,
  );
  assert.equal(r.kind, "observation");
});

Deno.test("mutated status frames are malformed with the right reason", () => {
  const live = (ls: Record<string, unknown>) => JSON.stringify({ livestream: ls });
  const good = {
    id: 74265904,
    channel_id: 2587387,
    session_title: "x",
    source: null,
    created_at: "2025-09-14T16:11:18.000000Z",
  };
  const cases: [string | undefined, string, unknown, string][] = [
    ["channel.2587387", STREAMER_IS_LIVE, "{not json", "invalid_json"],
    ["channel.2587387", STREAMER_IS_LIVE, "", "invalid_json"],
    ["channel.2587387", STREAMER_IS_LIVE, live({ ...good, channel_id: "abc" }), "schema"],
    ["channel.2587387", STREAMER_IS_LIVE, live({ ...good, channel_id: -5 }), "schema"],
    ["channel.2587387", STREAMER_IS_LIVE, live({ ...good, channel_id: 1.5 }), "schema"],
    ["channel.2587387", STREAMER_IS_LIVE, live({ ...good, id: null }), "schema"],
    ["channel.2587387", STREAMER_IS_LIVE, live({ ...good, session_title: 42 }), "schema"],
    ["channel.2587387", STREAMER_IS_LIVE, '{"livestream":null}', "schema"],
    ["channel.2587387", STREAMER_IS_LIVE, "[]", "schema"],
    ["channel.2587387", STREAMER_IS_LIVE, "null", "schema"],
    ["channel.2587387", STREAMER_IS_LIVE, null, "schema"],
    ["channel.2587387", STREAMER_IS_LIVE, 7, "schema"],
    ["channel.999", STREAMER_IS_LIVE, live(good), "channel_mismatch"],
    ["channel_2587387", STREAMER_IS_LIVE, live(good), "channel_mismatch"],
    ["chatrooms.2587387.v2", STREAMER_IS_LIVE, live(good), "channel_mismatch"],
    [undefined, STREAMER_IS_LIVE, live(good), "no_channel"],
    ["channel.1", STOP_STREAM_BROADCAST, '{"livestream":{"id":1}}', "schema"],
    [
      "channel.1",
      STOP_STREAM_BROADCAST,
      '{"livestream":{"id":1,"channel":{"id":1},"channel_id":2}}',
      "channel_mismatch",
    ],
    [
      "channel.2",
      STOP_STREAM_BROADCAST,
      '{"livestream":{"id":1,"channel":{"id":1}}}',
      "channel_mismatch",
    ],
    [
      "channel.1",
      STOP_STREAM_BROADCAST,
      '{"livestream":{"id":1,"channel":{"id":1,"is_banned":"no"}}}',
      "schema",
    ],
    [
      "channel.2587387",
      STREAMER_IS_LIVE,
      live({ ...good, session_title: "x".repeat(MAX_DATA_BYTES) }),
      "too_large",
    ],
    [
      "channel.2587387",
      STREAMER_IS_LIVE,
      { livestream: { ...good, session_title: "é".repeat(MAX_DATA_BYTES / 2 + 1) } },
      "too_large",
    ],
  ];
  for (const [ch, ev, data, reason] of cases) {
    const r = parsePusherEvent(ch, ev, data, NOW);
    assert.equal(r.kind, "malformed", `${ch} ${String(data).slice(0, 80)} → ${JSON.stringify(r)}`);
    if (r.kind === "malformed") {
      assert.equal(r.reason, reason, `${String(data).slice(0, 80)}: ${r.detail}`);
      assert.ok(MALFORMED_REASONS.includes(r.reason));
      assert.ok(r.detail.length > 0 && r.detail.length <= 300);
    }
  }
});

Deno.test("an unparseable created_at keeps the observation but no eventTime", () => {
  const r = parsePusherEvent(
    "channel.5",
    STREAMER_IS_LIVE,
    '{"livestream":{"id":9,"channel_id":5,"session_title":"t","source":null,"created_at":"yesterday"}}',
    NOW,
  );
  assert.equal(r.kind, "observation");
  if (r.kind === "observation") {
    assert.equal(r.observation.eventTime, undefined);
    assert.equal(r.observation.extra?.created_at_raw, "yesterday");
  }
});

Deno.test("parseKickTimestamp handles Kick's formats and rejects impossible dates", () => {
  assert.equal(
    parseKickTimestamp("2025-09-14T16:11:18.000000Z"),
    Date.UTC(2025, 8, 14, 16, 11, 18),
  );
  assert.equal(
    parseKickTimestamp("2025-09-14T16:11:18.123456Z"),
    Date.UTC(2025, 8, 14, 16, 11, 18, 123),
  );
  assert.equal(parseKickTimestamp("2025-09-14T16:11:18Z"), Date.UTC(2025, 8, 14, 16, 11, 18));
  assert.equal(parseKickTimestamp("2024-02-06 19:10:40"), Date.UTC(2024, 1, 6, 19, 10, 40));
  assert.equal(parseKickTimestamp("2025-01-01T11:00:00+11:00"), Date.UTC(2025, 0, 1, 0, 0, 0));
  assert.equal(parseKickTimestamp("2025-01-01T11:00:00-0130"), Date.UTC(2025, 0, 1, 12, 30, 0));
  for (
    const bad of ["", "2025-02-31T00:00:00Z", "2025-13-01T00:00:00Z", "2025-09-14", "1757866278"]
  ) {
    assert.equal(parseKickTimestamp(bad), undefined, bad);
  }
});

Deno.test("channelName / parseChannelName round-trip and reject junk", () => {
  assert.equal(channelName(2587387), "channel.2587387");
  assert.equal(parseChannelName(channelName(668)), 668);
  for (
    const bad of [
      "channel_668",
      "channel.",
      "channel.0",
      "channel.01",
      "channel.-1",
      "x",
      "",
      5,
      null,
    ]
  ) {
    assert.equal(parseChannelName(bad), undefined, String(bad));
  }
  for (const bad of [0, -1, 1.5, NaN, Number.MAX_SAFE_INTEGER + 2]) {
    assert.throws(() => channelName(bad), RangeError);
  }
});

// ---------------------------------------------------------------------------
// Property test: never throws
// ---------------------------------------------------------------------------

/** mulberry32: small seeded PRNG so failures are reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("property: parsePusherEvent never throws on random and mutated input", async () => {
  const rnd = prng(0xC0FFEE);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const seeds: unknown[] = [];
  for (
    const f of [
      ...(await listFixtures("streamer-is-live-")),
      ...(await listFixtures("stop-stream-")),
    ]
  ) {
    seeds.push(
      (await readFixture(f)).pusher_data_decoded ??
        JSON.parse(((await readFixture(f)).pusher_frame as FixtureFrame).data as string),
    );
  }
  const atoms: unknown[] = [
    JSON.parse('{"__proto__":{"livestream":1}}'),
    null,
    undefined,
    true,
    false,
    0,
    -1,
    1.5,
    NaN,
    Infinity,
    2 ** 60,
    "",
    "x",
    "668",
    "0",
    "2025-09-14T16:11:18.000000Z",
    "9".repeat(40),
    [],
    {},
    "\u0000",
    "\ud800",
  ];
  const randomValue = (depth: number): unknown => {
    const r = rnd();
    if (depth > 3 || r < 0.4) return pick(atoms);
    if (r < 0.7) {
      const o: Record<string, unknown> = {};
      const n = Math.floor(rnd() * 4);
      for (let i = 0; i < n; i++) {
        o[pick(["livestream", "id", "channel_id", "channel", "is_banned", "created_at", "x"])] =
          randomValue(depth + 1);
      }
      return o;
    }
    return Array.from({ length: Math.floor(rnd() * 3) }, () => randomValue(depth + 1));
  };
  const mutate = (v: unknown, depth = 0): unknown => {
    if (v === null || typeof v !== "object" || depth > 4) return rnd() < 0.3 ? randomValue(2) : v;
    const copy: Record<string, unknown> = Array.isArray(v)
      ? [...v] as unknown as Record<string, unknown>
      : { ...v as Record<string, unknown> };
    for (const k of Object.keys(copy)) {
      const r = rnd();
      if (r < 0.15) delete copy[k];
      else if (r < 0.35) copy[k] = randomValue(2);
      else copy[k] = mutate(copy[k], depth + 1);
    }
    if (rnd() < 0.1) copy[pick(["extra", "channel", "channel_id"])] = randomValue(1);
    return copy;
  };
  const mutateText = (s: string): string => {
    const chars = [...s];
    const n = 1 + Math.floor(rnd() * 4);
    for (let i = 0; i < n && chars.length; i++) {
      const at = Math.floor(rnd() * chars.length);
      const r = rnd();
      if (r < 0.33) chars.splice(at, 1);
      else if (r < 0.66) {
        chars.splice(at, 0, pick(['"', "{", "}", ",", ":", "\\", "0", "-", "\u00e9"]));
      } else chars[at] = String.fromCharCode(Math.floor(rnd() * 0x3000));
    }
    return chars.join("");
  };
  const events = [
    STREAMER_IS_LIVE,
    STOP_STREAM_BROADCAST,
    "StreamerIsLive",
    "pusher:error",
    "x",
    "",
  ];
  const counts = { observation: 0, ignored: 0, malformed: 0 };
  const N = 5000;
  for (let i = 0; i < N; i++) {
    const seed = pick(seeds);
    let data: unknown;
    const r = rnd();
    if (r < 0.1) data = rnd() < 0.5 ? seed : JSON.stringify(seed);
    else if (r < 0.3) data = mutate(seed);
    else if (r < 0.6) data = JSON.stringify(mutate(seed));
    else if (r < 0.8) data = mutateText(JSON.stringify(seed));
    else data = rnd() < 0.5 ? randomValue(0) : JSON.stringify(randomValue(0)) ?? "";
    const own = (seed as { livestream: { channel_id?: number; channel?: { id: number } } })
      .livestream;
    const ch = rnd() < 0.7
      ? `channel.${own.channel_id ?? own.channel?.id}`
      : rnd() < 0.6
      ? `channel.${pick([668, 2587387, 5541527, 1])}`
      : pick([undefined, "", "channel_668", "channel.x", null as unknown as string]);
    const ev = rnd() < 0.9 ? pick(events.slice(0, 3)) : pick(events);
    let res;
    try {
      res = parsePusherEvent(ch, ev, data, NOW);
    } catch (e) {
      assert.fail(
        `threw on input #${i}: ${ch} ${ev} ${String(JSON.stringify(data)).slice(0, 200)}: ${e}`,
      );
    }
    assert.ok(res.kind in counts);
    counts[res.kind]++;
    if (res.kind === "observation") {
      assert.ok(Number.isSafeInteger(res.observation.channelId));
      assert.equal(parseChannelName(ch), res.observation.channelId);
    }
  }
  // The generator must exercise both outcomes, or the test proves little.
  assert.ok(counts.observation > 50, JSON.stringify(counts));
  assert.ok(counts.malformed > 1000, JSON.stringify(counts));
});

Deno.test("the schema-free path of status frames agrees with the zod schemas (§3.1, §3.2)", () => {
  // parsePusherEvent checks Kick's exact shape by hand and falls back to the
  // schemas for anything else: whatever it accepts, the schema must accept too.
  const big = Number.MAX_SAFE_INTEGER + 1;
  const lives: unknown[] = [
    { livestream: { id: 1, channel_id: 2, created_at: null, session_title: null } },
    { livestream: { id: 1, channel_id: 2, source: [1], extra: { x: 1 } } },
    { livestream: { id: "1", channel_id: "2" } },
    { livestream: { id: 1, channel_id: big } },
    { livestream: { id: 0, channel_id: 2 } },
    { livestream: { id: 1, channel_id: 2, created_at: 5 } },
    { livestream: [1, 2] },
    { livestream: { id: 1, channel_id: 2 }, other: "ignored" },
  ];
  const stops: unknown[] = [
    { livestream: { id: 1, channel: { id: 2, is_banned: null } } },
    { livestream: { id: 1, channel: { id: 2 }, is_banned: true } },
    { livestream: { id: 1, channel: null, channel_id: 2 } },
    { livestream: { id: 1, channel_id: 2, is_banned: null } },
    { livestream: { id: 1, channel_id: "2" } },
    { livestream: { id: 1, channel: { id: "2", is_banned: false } } },
    { livestream: { id: 1, channel: [2], channel_id: 2 } },
    { livestream: { id: 1, channel_id: 2, is_banned: "yes" } },
  ];
  const check = (
    event: string,
    schema: { safeParse(d: unknown): { success: boolean } },
    data: unknown,
  ) => {
    const ok = schema.safeParse(data).success;
    const r = parsePusherEvent("channel.2", event, JSON.stringify(data), NOW);
    const why = `${event} ${JSON.stringify(data)} → ${JSON.stringify(r)}`;
    if (ok) assert.equal(r.kind, "observation", why);
    else {assert.deepEqual(
        [r.kind, r.kind === "malformed" && r.reason],
        ["malformed", "schema"],
        why,
      );}
    if (r.kind === "observation") assert.equal(r.observation.channelId, 2, why);
  };
  for (const d of lives) check(STREAMER_IS_LIVE, StreamerIsLiveDataSchema, d);
  for (const d of stops) check(STOP_STREAM_BROADCAST, StopStreamBroadcastDataSchema, d);
  const banned = parsePusherEvent(
    "channel.2",
    STOP_STREAM_BROADCAST,
    '{"livestream":{"id":1,"channel":{"id":2,"is_banned":true}}}',
    NOW,
  );
  assert.deepEqual(banned.kind === "observation" && banned.observation.extra, { is_banned: true });
});
