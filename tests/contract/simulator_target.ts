/**
 * The simulator as a contract target (tests/contract_test.ts and
 * tests/contract_live_test.ts): a started simulator
 * (src/simulator/simulator.ts) with one live and one offline streamer and
 * one event subscription, so that every list contract has elements to
 * check, and {@linkcode SimulatorTarget.emit}, which makes the simulator send
 * every status frame the Pusher contract checks: `StopStreamBroadcast` and
 * `StreamerIsLive` (from a world change, §3.1, §3.2) and the captured
 * `LivestreamUpdated` frame of tests/fixtures/livestream-updated-1.json
 * (§3.3; its channel id is the live streamer's).
 *
 * @module
 */
import { type Simulator, startSimulator } from "../../dev/simulator/simulator.ts";
import { channelName } from "../../src/kick/pusher/frames.ts";
import { LIVESTREAM_UPDATED } from "./pusher_contract.ts";
import type { ContractTarget } from "./target.ts";

const FIXTURE = new URL("../fixtures/livestream-updated-1.json", import.meta.url);

/** The live streamer (ids of the `livestream-updated-1.json` capture, §2). */
export const LIVE = { userId: 2570626, slug: "bossmanjack", channelId: 2515504 } as const;

/** A started simulator ready to be a contract target. */
export interface SimulatorTarget {
  /** The running simulator (close it). */
  readonly sim: Simulator;
  /** Environment variables pointing `deno task test:live` at it. */
  readonly env: Record<string, string>;
  /** The target for an in-process run (report directory and events to add). */
  target(reportDir: string): ContractTarget;
  /** Sends StopStreamBroadcast, StreamerIsLive and LivestreamUpdated on the live streamer's channel. */
  emit(): Promise<void>;
}

/**
 * Starts the simulator with {@linkcode LIVE} live, another streamer offline
 * and one `livestream.status.updated` subscription.
 *
 * @example
 * ```ts
 * const s = await startSimulatorTarget();
 * try { await runContractSuite(t, s.target(dir)); } finally { await s.sim.close(); }
 * ```
 */
export async function startSimulatorTarget(): Promise<SimulatorTarget> {
  const sim = await startSimulator({ activityTimeoutSec: 90 });
  sim.world.add({ ...LIVE, live: true });
  sim.world.add({ userId: 777, slug: "sleepy", channelId: 7770 });
  const tok = await fetch(`${sim.api.oauthUrl}/oauth/token`, {
    method: "POST",
    body: new URLSearchParams({
      grant_type: "client_credentials",
      client_id: sim.clientId,
      client_secret: sim.clientSecret,
    }),
  });
  const { access_token } = await tok.json() as { access_token: string };
  const sub = await fetch(`${sim.api.apiUrl}/events/subscriptions`, {
    method: "POST",
    headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" },
    body: JSON.stringify({
      broadcaster_user_id: LIVE.userId,
      events: [{ name: "livestream.status.updated", version: 1 }],
      method: "webhook",
    }),
  });
  await sub.body?.cancel();
  const env = {
    ...sim.env(),
    KICK_UNOFFICIAL_CHANNEL_LOOKUP: "true",
    KICK_CONTRACT_STREAMER: LIVE.slug,
  };
  const pusherUrl =
    `ws://${sim.pusher.hostname}:${sim.pusher.port}/app/${sim.pusherKey}?protocol=7&client=js&version=8.4.0&flash=false`;
  const emit = async () => {
    sim.world.setLive(LIVE.userId, false);
    sim.world.setLive(LIVE.userId, true);
    const f = JSON.parse(await Deno.readTextFile(FIXTURE)) as {
      pusher_frame: { event: string; data: string };
    };
    sim.pusher.publish(channelName(LIVE.channelId), LIVESTREAM_UPDATED, f.pusher_frame.data);
  };
  return {
    sim,
    env,
    emit,
    target: (reportDir) => ({
      oauthBaseUrl: sim.api.oauthUrl,
      apiBaseUrl: sim.api.apiUrl,
      unofficialBaseUrl: sim.api.unofficialUrl,
      pusherUrl,
      clientId: sim.clientId,
      clientSecret: sim.clientSecret,
      streamer: LIVE.slug,
      observeSeconds: 10,
      reportDir,
      timeoutMs: 10_000,
    }),
  };
}
