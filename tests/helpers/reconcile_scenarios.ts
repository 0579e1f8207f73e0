/**
 * The reconciliation scenarios of `tests/reconcile_test.ts` that must hold in
 * every simulator API mode (`helpers/api_modes.ts`): `reconcile_test.ts` runs
 * them in the mode `KICKMON_TEST_SIM_API` names, `api_move_test.ts` in
 * `v1gone`. Each starts its own rig (simulator, database, real kickmon).
 *
 * @module
 */
import assert from "node:assert/strict";
import { runKickmon } from "../../dev/kickmon_process.ts";
import { type SimApiMode, simApiOptions } from "./api_modes.ts";
import { waitFor } from "./database.ts";
import { type Rig, startRig } from "./harness.ts";

/**
 * Issue 3: transitions while no socket is up are corrected by reconciliation.
 *
 * @example
 * ```ts
 * Deno.test("gap", () => gapScenario("v1gone"));
 * ```
 */
export async function gapScenario(mode: SimApiMode): Promise<void> {
  const rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "3600" }, simApiOptions(mode));
  try {
    const a = rig.sim.world.add({ userId: 5001, slug: "alpha", channelId: 7001 });
    const b = rig.sim.world.add({ userId: 5002, slug: "bravo", channelId: 7002 });
    const ida = await rig.insert({ username: "alpha", userId: 5001, channelId: 7001 });
    const idb = await rig.insert({ username: "bravo", userId: 5002, channelId: 7002 });
    await waitFor(() => rig.sim.pusher.subscriberCount("channel.7002") === 1, { timeoutMs: 3000 });
    rig.sim.world.setLive(a.userId, true); // real frame over Pusher
    await rig.waitStatus(ida, "online");
    await rig.waitStatus(idb, "offline"); // resolved by the reconciliation of the new rows

    // Every socket drops and stays down; meanwhile alpha ends and bravo starts. No frame is sent.
    rig.sim.pusher.rejectNewConnections(4100);
    rig.sim.pusher.dropAll(4100, "maintenance");
    await waitFor(() => rig.sim.pusher.connections() === 0, { timeoutMs: 3000 });
    rig.sim.world.setLive(a.userId, false, { publish: false });
    rig.sim.world.setLive(b.userId, true, { publish: false });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await rig.status(ida), "online", "nothing can know yet");

    rig.sim.pusher.rejectNewConnections(null);
    await waitFor(() => rig.sim.pusher.subscriberCount("channel.7001") === 1, {
      timeoutMs: 10_000,
      message: "resubscribed after the gap",
    });
    const back = performance.now();
    await rig.waitStatus(ida, "offline", 5000);
    await rig.waitStatus(idb, "online", 5000);
    const within = performance.now() - back;
    const ea = await rig.events(ida);
    const eb = await rig.events(idb);
    assert.deepEqual(ea.map((e) => `${e.event_type}/${e.source}`).slice(-1), ["offline/reconcile"]);
    assert.deepEqual(eb.map((e) => `${e.event_type}/${e.source}`).slice(-1), ["online/reconcile"]);
    console.log(`corrected ${within.toFixed(0)} ms after resubscription`);
  } finally {
    await rig.close();
  }
}

/**
 * A reconciliation answer requested before a newer event cannot undo it.
 *
 * @example
 * ```ts
 * Deno.test("race", () => raceScenario("v1"));
 * ```
 */
export async function raceScenario(mode: SimApiMode): Promise<void> {
  const rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "1" }, simApiOptions(mode));
  try {
    const { streamer: s, id } = await rig.watch({ userId: 6001, slug: "racer", channelId: 8001 });
    // Hold the next /channels answer: it is computed now (offline) and released later.
    const held = rig.sim.api.holdNext("/public/v1/channels");
    await held.reached;
    rig.sim.world.setLive(s.userId, true); // Pusher event after the request left
    await rig.waitStatus(id, "online");
    held.release();
    await new Promise((r) => setTimeout(r, 1500)); // the stale answer lands; later passes agree
    assert.equal(await rig.status(id), "online");
    const ev = await rig.events(id);
    assert.deepEqual(ev.map((e) => `${e.event_type}/${e.source}`), ["online/pusher"]);
  } finally {
    await rig.close();
  }
}

/**
 * A streamer inserted with only a username is resolved, reconciled, and
 * subscribed once its channel id is known: from v1 `/livestreams` in `v1`
 * mode; in `v1gone` mode from `kickmon streamers set-channel-id`, run while
 * kickmon runs, after kickmon warned (once) that v1 is gone and stopped
 * calling it.
 *
 * @example
 * ```ts
 * Deno.test("identity", () => usernameOnlyScenario("v1gone"));
 * ```
 */
export async function usernameOnlyScenario(mode: SimApiMode): Promise<void> {
  const rig = await startRig({ MONITORING_RECONCILE_INTERVAL: "1" }, simApiOptions(mode));
  try {
    // This other system lists some streamers by username only (its kick_user_id allows NULL).
    await rig.sql`ALTER TABLE streamers ALTER COLUMN kick_user_id DROP NOT NULL`;
    const s = rig.sim.world.add({ userId: 4242, slug: "onlyname", channelId: 9393 });
    const id = await rig.insert({ username: "OnlyName" });
    await waitFor(async () => {
      return (await rig.identity(id)).kickUserId === 4242;
    }, { timeoutMs: 5000, message: "kick_user_id resolved into kickmon's schema" });
    await rig.waitStatus(id, "offline", 5000); // reconciled
    assert.equal(rig.sim.pusher.subscriberCount("channel.9393"), 0, "channel id not known yet");
    // Goes live while kickmon cannot hear it on Pusher: /livestreams reveals the channel id,
    // or, once v1 is gone, the operator gives it.
    rig.sim.world.setLive(s.userId, true, { publish: false });
    await rig.waitStatus(id, "online", 5000);
    if (mode === "v1gone") await operatorGivesChannelId(rig, "OnlyName", 9393);
    await waitFor(async () => {
      return (await rig.identity(id)).kickChannelId === 9393;
    }, { timeoutMs: 5000, message: "kick_channel_id learned" });
    await waitFor(() => rig.sim.pusher.subscriberCount("channel.9393") === 1, {
      timeoutMs: 3000,
      message: "subscribed on Pusher once the channel id is known",
    });
    rig.sim.world.setLive(s.userId, false); // now heard over Pusher
    await rig.waitStatus(id, "offline", 3000);
    const ev = await rig.events(id);
    assert.deepEqual(ev.map((e) => `${e.event_type}/${e.source}`), [
      "offline/reconcile",
      "online/reconcile",
      "offline/pusher",
    ]);
    // An unknown username stays visible as unresolved.
    const bad = await rig.insert({ username: "nobody-here" });
    await waitFor(async () => {
      return (await rig.identity(bad)).resolveError?.includes("nobody-here") === true;
    }, { timeoutMs: 5000, message: "resolve_error recorded" });
  } finally {
    await rig.close();
  }
}

/**
 * v1 `/livestreams` is gone: kickmon warns once that it is, once that a live
 * streamer has no channel id, stops calling v1, and the operator's
 * `kickmon streamers set-channel-id` (a separate process, kickmon running)
 * gets the channel subscribed.
 */
async function operatorGivesChannelId(
  rig: Rig,
  username: string,
  channelId: number,
): Promise<void> {
  await waitFor(
    () =>
      rig.kickmon.lines.some((l) => /no Pusher channel id and v1 \/livestreams is gone/.test(l)),
    { timeoutMs: 5000, message: "the warning about live streamers without a channel id" },
  );
  const v1Calls = rig.sim.api.requests("/public/v1/livestreams");
  assert.ok(v1Calls >= 1, "v1 was asked once");
  await new Promise((r) => setTimeout(r, 2500)); // two more passes at a 1 s interval
  assert.equal(rig.sim.api.requests("/public/v1/livestreams"), v1Calls, "no further v1 calls");
  const gone = rig.kickmon.lines.filter((l) => /GET \/livestreams\W* is gone/.test(l));
  assert.equal(gone.length, 1, `the 404 is logged once, not per pass: ${gone.join("\n")}`);
  assert.match(gone[0], /WARN/i);
  assert.equal(rig.sim.pusher.subscriberCount(`channel.${channelId}`), 0);
  const r = await runKickmon(
    ["streamers", "set-channel-id", username, String(channelId)],
    rig.env,
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`to ${channelId} \\(operator-provided; was none\\)`));
}
