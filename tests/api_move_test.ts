/**
 * Issue 13 item 4, "survive the API move": with v1 `GET /livestreams` gone
 * (the simulator's `v1gone` mode: 404, `/users/livestreams` still answers;
 * `helpers/api_modes.ts`), the key scenarios of `reconcile_test.ts` and
 * `e2e_test.ts` still pass, kickmon says so once (WARN) and in `/health`,
 * stops calling v1, reconciles large lists through `/users/livestreams`,
 * counts every request in `/metrics`, and takes a channel id from the
 * operator (`kickmon streamers set-channel-id`) while running.
 */
import assert from "node:assert/strict";
import { runKickmon } from "../dev/kickmon_process.ts";
import { simApiOptions } from "./helpers/api_modes.ts";
import { freePort, waitFor } from "./helpers/database.ts";
import { e2eScenario } from "./helpers/e2e_scenario.ts";
import { startRig } from "./helpers/harness.ts";
import { gapScenario, raceScenario, usernameOnlyScenario } from "./helpers/reconcile_scenarios.ts";

Deno.test("v1 gone: e2e: streamer list -> Pusher frames -> status rows, in real time", () =>
  e2eScenario("v1gone"));

Deno.test("v1 gone: gap: transitions while no socket is up are corrected by reconciliation", () =>
  gapScenario("v1gone"));

Deno.test("v1 gone: race: a reconciliation answer requested before a newer event cannot undo it", () =>
  raceScenario("v1gone"));

Deno.test("v1 gone: identity: warned once, no more v1 calls, the operator's channel id gets it subscribed", () =>
  usernameOnlyScenario("v1gone"));

Deno.test("v1 gone: over 50 streamers are reconciled through /users/livestreams (back to /channels when it goes); /health and /metrics say what answers", async () => {
  const port = freePort();
  const rig = await startRig({
    MONITORING_RECONCILE_INTERVAL: "1",
    HEALTH_CHECK_ENABLED: "true",
    HEALTH_CHECK_LISTEN: `127.0.0.1:${port}`,
  }, simApiOptions("v1gone"));
  try {
    const ids: number[] = [];
    for (let i = 0; i < 60; i++) {
      rig.sim.world.add({ userId: 20_000 + i, slug: `many${i}`, channelId: 30_000 + i });
      ids.push(
        await rig.insert({ username: `many${i}`, userId: 20_000 + i, channelId: 30_000 + i }),
      );
    }
    // One listed without a channel id: nothing official can give it one any more.
    rig.sim.world.add({ userId: 29_999, slug: "nochannel", channelId: 39_999 });
    const nochannel = await rig.insert({ username: "nochannel", userId: 29_999 });
    await waitFor(async () => {
      const [{ n }] = await rig
        .sql`SELECT count(*)::int AS n FROM streamers WHERE status = 'offline'`;
      return n === 61;
    }, { timeoutMs: 15_000, message: "every row reconciled offline" });

    // Missed transitions (no Pusher frame): a later pass corrects them.
    rig.sim.world.setLive(20_007, true, { publish: false });
    rig.sim.world.setLive(29_999, true, { publish: false });
    await rig.waitStatus(ids[7], "online", 10_000);
    await rig.waitStatus(nochannel, "online", 10_000);
    const ev = await rig.events(ids[7]);
    assert.equal(ev.at(-1)?.source, "reconcile");
    assert.equal(ev.at(-1)?.details.event, "GET /users/livestreams", "100 ids a request");
    assert.ok(rig.sim.api.requests("/public/v1/users/livestreams") >= 1);

    const v1Calls = rig.sim.api.requests("/public/v1/livestreams");
    assert.equal(v1Calls, 1, "v1 asked once for the channel id, then left alone");
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(rig.sim.api.requests("/public/v1/livestreams"), v1Calls, "no further v1 calls");
    assert.equal(
      rig.kickmon.lines.filter((l) => /GET \/livestreams\W* is gone/.test(l)).length,
      1,
      "logged once, not per pass",
    );

    const health = await (await fetch(`http://127.0.0.1:${port}/health`)).json();
    type Endpoint = { endpoint: string; state: string; status: number | null; since: string };
    const eps = Object.fromEntries(
      (health.official.endpoints as Endpoint[]).map((e) => [e.endpoint, e]),
    );
    assert.equal(eps["GET /livestreams"].state, "gone");
    assert.equal(eps["GET /livestreams"].status, 404);
    assert.match(eps["GET /livestreams"].since, /^\d{4}-\d\d-\d\dT/);
    assert.equal(eps["GET /users/livestreams"].state, "available");
    assert.equal(eps["GET /channels"].state, "available");

    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (
      const [endpoint, code] of [
        ["POST /oauth/token", "200"],
        ["GET /channels", "200"],
        ["GET /users/livestreams", "200"],
        ["GET /livestreams", "404"],
      ]
    ) {
      assert.match(
        metrics,
        new RegExp(`kickmon_api_requests_total\\{endpoint="${endpoint}",code="${code}"\\} [1-9]`),
        `${endpoint} ${code} counted`,
      );
    }

    // /users/livestreams goes too: the same pass falls back to /channels, and it is left alone.
    rig.sim.api.failNext("/public/v1/users/livestreams", {
      status: 404,
      body: '{"message":"Not Found"}',
    });
    rig.sim.world.setLive(20_008, true, { publish: false });
    await rig.waitStatus(ids[8], "online", 10_000);
    assert.equal((await rig.events(ids[8])).at(-1)?.details.event, "GET /channels");
    const usersCalls = rig.sim.api.requests("/public/v1/users/livestreams");
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(rig.sim.api.requests("/public/v1/users/livestreams"), usersCalls, "left alone");

    // The operator's id is used at once.
    const r = await runKickmon(["streamers", "set-channel-id", "nochannel", "39999"], rig.env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    await waitFor(() => rig.sim.pusher.subscriberCount("channel.39999") === 1, {
      timeoutMs: 5000,
      message: "subscribed to the operator-provided channel",
    });
    rig.sim.world.setLive(29_999, false); // a real frame on that channel
    await rig.waitStatus(nochannel, "offline", 3000);
    assert.equal((await rig.events(nochannel)).at(-1)?.source, "pusher");
  } finally {
    await rig.close();
  }
});

Deno.test("streamers set-channel-id: usage, unknown streamer, a taken id, a contradicting v1 answer, --clear", async () => {
  const rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "3600" });
  try {
    const { id } = await rig.watch({ userId: 8801, slug: "given", channelId: 9901 });
    await rig.insert({ username: "other", userId: 8802 });
    const run = (args: string[]) => runKickmon(["streamers", "set-channel-id", ...args], rig.env);
    assert.equal((await run(["given"])).code, 2, "neither an id nor --clear");
    assert.equal((await run(["given", "12", "--clear"])).code, 2, "both");
    assert.equal((await run(["given", "-5"])).code, 2);
    assert.equal((await run(["given", "abc"])).code, 2);
    const unknown = await run(["nobody", "5"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no streamer named "nobody"/);
    const taken = await run(["other", "9901"]);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /already belongs to another streamer/);

    const set = await run(["given", "channel.9902"]);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /to 9902 \(operator-provided; was 9901 \(learned\)\)/);
    const [row] = await rig.sql`SELECT kick_channel_id::int AS c, kick_channel_id_source AS s
      FROM kickmon.streamer_state WHERE streamer_id = ${id}`;
    assert.deepEqual({ ...row }, { c: 9902, s: "operator" });
    await waitFor(() => rig.sim.pusher.subscriberCount("channel.9902") === 1, { timeoutMs: 5000 });
    assert.equal(rig.sim.pusher.subscriberCount("channel.9901"), 0, "the old channel is left");
    // v1 /livestreams reports another id (the world's 9901): warned, the operator's id kept.
    rig.sim.world.setLive(8801, true, { publish: false });
    rig.sim.world.add({ userId: 8803, slug: "third", channelId: 9903 });
    await rig.insert({ username: "third", userId: 8803, channelId: 9903 }); // a pass at once
    await waitFor(() => rig.kickmon.lines.some((l) => /disagrees with v1 \/livestreams/.test(l)), {
      timeoutMs: 5000,
      message: "the contradiction is logged",
    });
    assert.match(rig.kickmon.lines.find((l) => /disagrees with v1/.test(l))!, /WARN/i);
    assert.equal((await rig.identity(id)).kickChannelId, 9902, "the operator's id is kept");
    const list = await runKickmon(["streamers", "list", "--json"], rig.env);
    assert.equal(
      JSON.parse(list.stdout).find((s: { id: number }) => s.id === id).kickChannelId,
      9902,
    );

    const cleared = await run(["given", "--clear"]);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.match(cleared.stdout, /cleared the channel id of given .*was 9902 \(operator\)/);
    await waitFor(() => rig.sim.pusher.subscriberCount("channel.9902") === 0, { timeoutMs: 5000 });
  } finally {
    await rig.close();
  }
});
