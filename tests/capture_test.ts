/**
 * `kickmon capture` → replay, end to end with real processes (issue 13 item 3): a real
 * `kickmon capture` process records the simulator's frames and answers; the simulator replays
 * that directory and a second capture of the replay is byte-identical; SIGINT ends a capture
 * cleanly; no secret is written; a replayed capture drives a real `kickmon start` to the right
 * committed rows.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import type { Sql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { insertStreamer } from "../src/db/streamers_repo.ts";
import type { CaptureManifest } from "../src/kick/capture.ts";
import { REDACTED_TOKEN } from "../src/kick/http/exchange.ts";
import { baseEnv, spawnKickmon, spawnProcess } from "../dev/kickmon_process.ts";
import { type Simulator, startSimulator } from "../dev/simulator/simulator.ts";
import { createTestDatabase, freePort, type TestDatabase, waitFor } from "./helpers/database.ts";

/** Two made-up streamers: A goes live during the capture, B (live at its start) goes offline. */
const A = { userId: 9_300_001, slug: "capture-a", channelId: 3_300_011 };
const B = { userId: 9_300_002, slug: "capture-b", channelId: 3_300_022 };
const CHANNELS = [`channel.${A.channelId}`, `channel.${B.channelId}`];

interface Fixture {
  file: string;
  content: Record<string, unknown>;
}

async function readDir(dir: string): Promise<{ manifest: CaptureManifest; files: Fixture[] }> {
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`)) as CaptureManifest;
  const files: Fixture[] = [];
  for (const f of manifest.files) {
    files.push({ file: f.file, content: JSON.parse(await Deno.readTextFile(`${dir}/${f.file}`)) });
  }
  return { manifest, files };
}

/** Every file's text, manifest included (for the secret checks). */
async function allText(dir: string): Promise<string> {
  let out = "";
  for await (const e of Deno.readDir(dir)) out += await Deno.readTextFile(`${dir}/${e.name}`);
  return out;
}

/** The app-event frames (not `pusher:*`), verbatim, in order. */
const appFrames = (files: Fixture[]) =>
  files.filter((f) =>
    typeof f.content.raw_frame === "string" && f.content.channel !== null &&
    !/^pusher(_internal)?:/.test(String(f.content.event))
  ).map((f) => f.content.raw_frame as string);

/** The answers: endpoint, path and query, status and body, in order (the origin differs). */
const apiAnswers = (files: Fixture[]) =>
  files.filter((f) => typeof f.content.raw_body === "string").map((f) => {
    const u = new URL((f.content.request as { url: string }).url);
    return [f.content.endpoint, `${u.pathname}${u.search}`, f.content.status, f.content.raw_body];
  });

/** A migrated test database, with the rows of A and B unless `withRows` is false. */
async function prepareDatabase(withRows = true): Promise<
  { db: TestDatabase; sql: postgres.Sql; close: () => Promise<void> }
> {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  await migrate(sql as unknown as Sql, { appSchema: "public" });
  for (const s of withRows ? [A, B] : []) {
    await insertStreamer(sql as unknown as Sql, {
      username: s.slug,
      kickUserId: s.userId,
      kickChannelId: s.channelId,
      status: "offline",
    });
  }
  return {
    db,
    sql,
    close: async () => {
      await sql.end();
      await db.drop();
    },
  };
}

function kickmonEnv(sim: Simulator, db: TestDatabase, stateDir: string): Record<string, string> {
  return {
    ...sim.env(),
    DATABASE_URL: db.url,
    SYSTEM_STATE_DIRECTORY: stateDir,
    HEALTH_CHECK_ENABLED: "false",
    MONITORING_RECONCILE_INTERVAL: "3600",
    MONITORING_RESYNC_INTERVAL: "3600",
  };
}

/** Runs `kickmon capture` as a real process; `during` runs once both channels are subscribed. */
async function capture(
  sim: Simulator,
  db: TestDatabase,
  out: string,
  durationS: number,
  during: () => Promise<void> = () => Promise.resolve(),
): Promise<{ code: number; lines: string[] }> {
  const p = spawnKickmon(
    ["capture", "--duration", `${durationS}s`, "--out", out],
    kickmonEnv(sim, db, await Deno.makeTempDir()),
  );
  try {
    await waitFor(() => CHANNELS.every((c) => sim.pusher.subscriberCount(c) === 1), {
      timeoutMs: 20_000,
      message: "capture subscribed to both channels",
    });
    await during();
    const status = await p.status;
    return { code: status.code, lines: p.lines };
  } finally {
    await p.stop();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A simulator with A offline and B live. */
async function simulator(opts: Parameters<typeof startSimulator>[0] = {}): Promise<Simulator> {
  const sim = await startSimulator(opts);
  sim.world.add(A);
  sim.world.add({ ...B, live: true, title: "capture-b live" });
  return sim;
}

interface FirstCapture {
  readonly dir: string;
  /** Every text frame the simulator wrote to a socket. */
  readonly delivered: string[];
  readonly clientSecret: string;
  readonly pusherPort: number;
  readonly apiUrl: string;
}

/** The first capture of the simulator, shared by the tests below (made once). */
let first: Promise<FirstCapture> | null = null;
function firstCapture(): Promise<FirstCapture> {
  first ??= (async () => {
    const delivered: string[] = [];
    const sim = await simulator({ onFrameDelivered: (t) => delivered.push(t) });
    const { db, sql, close } = await prepareDatabase();
    const dir = `${await Deno.makeTempDir()}/capture-1`;
    try {
      const { code, lines } = await capture(sim, db, dir, 5, async () => {
        await sleep(500);
        sim.world.setLive(A.userId, true);
        await sleep(300);
        sim.world.setLive(B.userId, false);
      });
      assert.equal(code, 0, lines.join("\n"));
      // Read-only: the capture wrote no status and no history.
      const rows = await sql`SELECT status FROM streamers ORDER BY id`;
      assert.deepEqual(rows.map((r) => r.status), ["offline", "offline"]);
      assert.equal((await sql`SELECT count(*)::int AS n FROM status_events`)[0].n, 0);
    } finally {
      await close();
      await sim.close();
    }
    return {
      dir,
      delivered,
      clientSecret: sim.clientSecret,
      pusherPort: sim.pusher.port,
      apiUrl: sim.api.apiUrl,
    };
  })();
  return first;
}

Deno.test("capture: a real capture of the simulator holds its frames verbatim and its API answers, and no secret", async () => {
  const { dir, delivered, ...sim } = await firstCapture();
  const { manifest, files } = await readDir(dir);
  assert.equal(manifest.ended_because, "duration");
  assert.deepEqual([...manifest.channels].sort(), [...CHANNELS].sort());
  assert.ok(manifest.pusher.url.includes(`:${sim.pusherPort}`), manifest.pusher.url);
  assert.equal(manifest.api_url, sim.apiUrl);
  const names = files.map((f) => f.file);
  for (
    const want of [
      "api-oauth-token-1.json",
      "api-channels-1.json",
      "pusher-connection-established-1.json",
      "pusher-subscription-succeeded-1.json",
      "streamer-is-live-1.json",
      "stop-stream-broadcast-1.json",
    ]
  ) assert.ok(names.includes(want), `${want} in ${names.join(", ")}`);

  // Frames: exactly the text the simulator wrote to the socket, in order.
  const frames = appFrames(files);
  assert.equal(frames.length, 2, frames.join("\n"));
  assert.deepEqual(frames, delivered.filter((t) => frames.includes(t)));
  const live = files.find((f) => f.file === "streamer-is-live-1.json")!.content;
  assert.equal(live.channel, `channel.${A.channelId}`);
  assert.deepEqual(live.pusher_frame, JSON.parse(live.raw_frame as string));
  assert.match(String(live.source), /^kickmon capture .*Pusher frame as received/);
  assert.ok(!Number.isNaN(Date.parse(String(live.captured_at))));

  // Answers: the whole body as read; B was live when the pass ran, A was not.
  const channels = files.find((f) => f.file === "api-channels-1.json")!.content;
  assert.equal(channels.status, 200);
  const data = (channels.api_response as { data: { slug: string; stream: { is_live: boolean } }[] })
    .data;
  assert.deepEqual(
    data.map((c) => [c.slug, c.stream.is_live]).sort(),
    [[A.slug, false], [B.slug, true]],
  );

  // Secrets: the client secret and the simulator's tokens (sim_…) are nowhere.
  const text = await allText(dir);
  assert.ok(!text.includes(sim.clientSecret), "client secret written");
  assert.ok(!/sim_[A-Za-z0-9_-]{8,}/.test(text), "an access token written");
  const token = files.find((f) => f.file === "api-oauth-token-1.json")!.content;
  assert.equal((token.api_response as { access_token: string }).access_token, REDACTED_TOKEN);
});

Deno.test("capture: the simulator replays a capture, and capturing the replay gives byte-identical frames and bodies", async () => {
  const { dir } = await firstCapture();
  const sim = await startSimulator({ replay: { dir } });
  const { db, close } = await prepareDatabase();
  const again = `${await Deno.makeTempDir()}/capture-2`;
  try {
    const { code, lines } = await capture(sim, db, again, 5);
    assert.equal(code, 0, lines.join("\n"));
    assert.equal(sim.replay!.framesSent, 2);
  } finally {
    await close();
    await sim.close();
  }
  const one = await readDir(dir);
  const two = await readDir(again);
  assert.deepEqual(appFrames(two.files), appFrames(one.files));
  assert.deepEqual(apiAnswers(two.files), apiAnswers(one.files));
  assert.deepEqual(apiAnswers(one.files).map((a) => a[0]), ["POST /oauth/token", "GET /channels"]);
});

Deno.test("capture: SIGINT ends a capture cleanly with what was recorded", async () => {
  const sim = await simulator();
  sim.world.setLive(B.userId, false, { publish: false });
  const { db, close } = await prepareDatabase();
  const dir = `${await Deno.makeTempDir()}/capture-sigint`;
  const p = spawnKickmon(
    ["capture", "--duration", "10m", "--out", dir],
    kickmonEnv(sim, db, await Deno.makeTempDir()),
  );
  try {
    await p.waitForLine(/Ctrl-C ends it/, 20_000);
    await waitFor(() => CHANNELS.every((c) => sim.pusher.subscriberCount(c) === 1), {
      timeoutMs: 20_000,
      message: "subscribed",
    });
    sim.world.setLive(B.userId, true);
    await sleep(300);
    p.kill("SIGINT");
    const status = await p.status;
    assert.equal(status.code, 0, p.lines.join("\n"));
    assert.ok(p.lines.some((l) => /ended by SIGINT/.test(l)), p.lines.join("\n"));
    const { manifest, files } = await readDir(dir);
    assert.equal(manifest.ended_because, "SIGINT");
    assert.ok(files.some((f) => f.file === "streamer-is-live-1.json"), "the frame was kept");
    assert.ok(!(await allText(dir)).includes(sim.clientSecret));
  } finally {
    await p.stop();
    await close();
    await sim.close();
  }
});

Deno.test("capture: a replayed capture drives a real kickmon start to the right committed rows", async () => {
  const { dir } = await firstCapture();
  const sim = await startSimulator({ replay: { dir } });
  const { db, sql, close } = await prepareDatabase();
  const kickmon = spawnKickmon(["start"], kickmonEnv(sim, db, await Deno.makeTempDir()));
  try {
    await kickmon.waitForLine(/kickmon started/, 20_000);
    await sim.replayDone;
    await waitFor(async () => {
      const rows = await sql`SELECT username, status FROM streamers ORDER BY id`;
      return rows[0].status === "online" && rows[1].status === "offline";
    }, { timeoutMs: 10_000, message: "A online and B offline, as the captured frames say" });
    const events = await sql<
      { username: string; event_type: string; details: Record<string, unknown> }[]
    >`
      SELECT s.username, e.event_type, e.details FROM status_events e
      JOIN streamers s ON s.id = e.streamer_id ORDER BY e.id`;
    const a = events.filter((e) => e.username === A.slug);
    assert.deepEqual(a.map((e) => [e.event_type, e.details.source]), [["online", "pusher"]]);
    assert.equal(a[0].details.event, "App\\Events\\StreamerIsLive");
    // B: live in the captured API answer (reconciliation at start), then the captured frame.
    const b = events.filter((e) => e.username === B.slug);
    assert.deepEqual(b.map((e) => [e.event_type, e.details.source]), [
      ["online", "reconcile"],
      ["offline", "pusher"],
    ]);
  } finally {
    await kickmon.stop();
    await close();
    await sim.close();
  }
});

Deno.test("capture: deno task demo --replay DIR replays a capture into the demo's monitor", async () => {
  const { dir } = await firstCapture();
  const db = await createTestDatabase();
  const p = spawnProcess(
    Deno.execPath(),
    [
      "run",
      "-A",
      new URL("../dev/demo.ts", import.meta.url).pathname,
      "--no-view",
      "--replay",
      dir,
    ],
    { ...baseEnv(), NO_COLOR: "1", DATABASE_URL: db.url },
  );
  try {
    const seen = await waitFor(() => {
      const t = p.logs().filter((l) => l.logger === "kickmon.demo" && l.source === "pusher")
        .map((l) => `${l.username} ${l.to}`);
      return t.length >= 2 ? t : undefined;
    }, { timeoutMs: 30_000, message: "the two replayed frames committed" });
    assert.deepEqual(seen, [`${A.slug} online`, `${B.slug} offline`]);
    p.kill("SIGINT");
    assert.equal((await p.status).code, 0, p.lines.slice(-20).join("\n"));
  } finally {
    await p.stop();
    await db.drop();
  }
});

Deno.test("capture: --streamer NAME not in the list is looked up by slug (channel id from /livestreams)", async () => {
  const sim = await simulator();
  const { db, close } = await prepareDatabase(false);
  const dir = `${await Deno.makeTempDir()}/capture-named`;
  const p = spawnKickmon(
    ["capture", "--duration", "1500ms", "--out", dir, "--streamer", B.slug],
    kickmonEnv(sim, db, await Deno.makeTempDir()),
  );
  try {
    assert.equal((await p.status).code, 0, p.lines.join("\n"));
    const { manifest, files } = await readDir(dir);
    assert.deepEqual(manifest.streamers, [
      { username: B.slug, kick_user_id: B.userId, kick_channel_id: B.channelId },
    ]);
    assert.deepEqual(manifest.channels, [`channel.${B.channelId}`]);
    assert.deepEqual(
      files.filter((f) => f.content.endpoint).map((f) => {
        const u = new URL((f.content.request as { url: string }).url);
        return `${f.content.endpoint} ${u.search}`;
      }),
      [
        "POST /oauth/token ",
        `GET /channels ?slug=${B.slug}`,
        `GET /channels ?broadcaster_user_id=${B.userId}`,
        `GET /livestreams ?broadcaster_user_id=${B.userId}&limit=100`,
      ],
    );
  } finally {
    await p.stop();
    await close();
    await sim.close();
  }
});

Deno.test("capture: a bad --duration or a non-empty --out is a usage error (exit 2), nothing written", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/keep.txt`, "mine");
  const env = {
    KICK_CLIENT_ID: "id",
    KICK_CLIENT_SECRET: "secret-value",
    DATABASE_URL: "postgres://nobody@127.0.0.1:1/none",
    SYSTEM_STATE_DIRECTORY: dir,
  };
  const bad = spawnKickmon(["capture", "--duration", "soon"], env);
  assert.equal((await bad.status).code, 2);
  assert.ok(bad.lines.some((l) => l.includes("--duration")), bad.lines.join("\n"));
  const full = spawnKickmon(["capture", "--duration", "1s", "--out", dir], env);
  assert.equal((await full.status).code, 2);
  assert.ok(full.lines.some((l) => l.includes("not empty")), full.lines.join("\n"));
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["keep.txt"]);
});

Deno.test("capture: a Pusher host that never answers still ends with the API answers and a note", async () => {
  const sim = await simulator();
  const { db, close } = await prepareDatabase();
  const dir = `${await Deno.makeTempDir()}/capture-no-pusher`;
  const p = spawnKickmon(["capture", "--duration", "1s", "--out", dir], {
    ...kickmonEnv(sim, db, await Deno.makeTempDir()),
    KICK_PUSHER_PORT: String(freePort()),
  });
  try {
    assert.equal((await p.status).code, 0, p.lines.join("\n"));
    const { manifest } = await readDir(dir);
    assert.ok(manifest.notes.some((n) => n.includes("no frame received")), manifest.notes.join());
    assert.deepEqual(manifest.files.map((f) => f.file), [
      "api-oauth-token-1.json",
      "api-channels-1.json",
    ]);
  } finally {
    await p.stop();
    await close();
    await sim.close();
  }
});
