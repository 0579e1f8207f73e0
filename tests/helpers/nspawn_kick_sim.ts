/**
 * The Kick simulator as a long-running program on fixed loopback ports, for
 * the container of `tests/systemd_nspawn_test.ts` (it has no network, so the
 * kickmon there talks to this instead of Kick). Bundled on the host with
 * `deno bundle` and run inside the guest as `kick-sim.service` by
 * `deno run --no-config -A`.
 *
 * - `--api-port N` (official API + OAuth) and `--pusher-port N`, on 127.0.0.1.
 * - `--streamers N`: streamers with user ids 1..N, slugs `sim1`…, channel ids
 *   1001…, all offline.
 * - SIGUSR1 toggles streamer 1 live/offline (a real Pusher frame to every
 *   subscribed socket), so the test can watch the sandboxed kickmon record a
 *   transition: `systemctl kill -s SIGUSR1 kick-sim`.
 * - Writes `--ready FILE` once both servers listen (the unit's
 *   `ExecStartPost=` waits for it, so `Before=kickmon.service` means ready).
 *
 * @example
 * ```sh
 * deno run -A tests/helpers/nspawn_kick_sim.ts --api-port 18443 --pusher-port 18444 \
 *   --streamers 3 --ready /run/kick-sim/ready
 * ```
 *
 * @module
 */
import { startApiServer } from "../../dev/simulator/api_server.ts";
import { startPusherServer } from "../../dev/simulator/pusher_server.ts";
import { World } from "../../dev/simulator/world.ts";

/** Credentials the simulated OAuth server accepts. */
export const SIM_CLIENT_ID = "nspawn-sim-client";
/** Secret the simulated OAuth server accepts. */
export const SIM_CLIENT_SECRET = "nspawn-sim-secret";
/** Pusher app key the simulated Pusher server accepts. */
export const SIM_PUSHER_KEY = "32cbd69e4b950bf97679";

/** kickmon's Kick settings for a simulator on these ports (env file lines). */
export function simKickEnv(apiPort: number, pusherPort: number): Record<string, string> {
  const origin = `http://127.0.0.1:${apiPort}`;
  return {
    KICK_CLIENT_ID: SIM_CLIENT_ID,
    KICK_CLIENT_SECRET: SIM_CLIENT_SECRET,
    KICK_OAUTH_URL: origin,
    KICK_API_URL: `${origin}/public/v1`,
    KICK_UNOFFICIAL_API_URL: `${origin}/api/v2`,
    KICK_PUSHER_KEY: SIM_PUSHER_KEY,
    KICK_PUSHER_HOST: "127.0.0.1",
    KICK_PUSHER_PORT: String(pusherPort),
    KICK_PUSHER_TLS: "false",
  };
}

function option(name: string, def?: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  const v = i >= 0 ? Deno.args[i + 1] : def;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

async function main(): Promise<void> {
  const apiPort = Number(option("api-port"));
  const pusherPort = Number(option("pusher-port"));
  const n = Number(option("streamers", "3"));
  const ready = Deno.args.includes("--ready") ? option("ready") : undefined;
  const world = new World();
  for (let i = 1; i <= n; i++) world.add({ userId: i, slug: `sim${i}`, channelId: 1000 + i });
  const pusher = await startPusherServer({
    world,
    key: SIM_PUSHER_KEY,
    hostname: "127.0.0.1",
    port: pusherPort,
  });
  const api = startApiServer({
    world,
    clientId: SIM_CLIENT_ID,
    clientSecret: SIM_CLIENT_SECRET,
    hostname: "127.0.0.1",
    port: apiPort,
  });
  // Check the API answers before announcing readiness.
  const probe = await fetch(`${api.oauthUrl}/oauth/token`, { method: "POST" });
  await probe.body?.cancel();
  Deno.addSignalListener("SIGUSR1", () => {
    const s = world.byUserId(1)!;
    world.setLive(1, !s.live);
    console.log(`streamer 1 is now ${s.live ? "live" : "offline"}`);
  });
  const stop = async () => {
    await pusher.close();
    await api.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  if (ready) await Deno.writeTextFile(ready, `${Deno.pid}\n`);
  console.log(`kick simulator ready: api ${api.origin}, pusher 127.0.0.1:${pusher.port}`);
}

if (import.meta.main) await main();
