/**
 * The whole simulated Kick in one call: the truth model ({@linkcode World}),
 * a Pusher protocol server, the OAuth + official API endpoints, and a
 * webhook sender whose public key the API serves. Tests, `deno task demo` and
 * the benchmark all use this.
 *
 * @module
 */
import { type ApiServer, startApiServer } from "./api_server.ts";
import { type PusherServer, type PusherServerOptions, startPusherServer } from "./pusher_server.ts";
import { loadReplay, type Replay, type ReplayOptions } from "./replay.ts";
import { WebhookSender } from "./webhook_sender.ts";
import { World } from "./world.ts";

/** Options for {@linkcode startSimulator}. */
export interface SimulatorOptions {
  /** Pusher app key the server accepts. Default: Kick's current key. */
  readonly pusherKey?: string;
  readonly clientId?: string;
  readonly clientSecret?: string;
  /** `activity_timeout` announced in `pusher:connection_established`, seconds. Default 120. */
  readonly activityTimeoutSec?: number;
  /** `expires_in` of issued tokens, seconds. Default 7200. */
  readonly tokenLifetimeSec?: number;
  /** v1 `/livestreams` answers 404 (`ApiServerOptions.v1LivestreamsGone`); default false. */
  readonly v1LivestreamsGone?: boolean;
  /** v1 `/livestreams` sends `Deprecation`/`Sunset` headers; default false. */
  readonly v1LivestreamsDeprecated?: boolean;
  /** Called for every frame the Pusher server sends (benchmark latency). */
  readonly onFrameSent?: PusherServerOptions["onFrameSent"];
  /** Called for every text frame fully written to a client's socket (delivery record for tests). */
  readonly onFrameDelivered?: PusherServerOptions["onFrameDelivered"];
  /**
   * Replay a capture directory (`kickmon capture`, `replay.ts`): its API answers are given
   * before the world's, and its frames are sent once kickmon has subscribed.
   */
  readonly replay?: ReplayOptions;
}

/** A running simulator. */
export interface Simulator {
  readonly world: World;
  readonly pusher: PusherServer;
  readonly api: ApiServer;
  readonly webhooks: WebhookSender;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly pusherKey: string;
  /** The replay (with `opts.replay`), else null. */
  readonly replay: Replay | null;
  /** Resolves when the replay has sent its last frame (at once without a replay). */
  readonly replayDone: Promise<void>;
  /**
   * Environment variables that point kickmon at this simulator (Kick
   * endpoints and credentials only; add `DATABASE_URL` yourself).
   */
  env(): Record<string, string>;
  close(): Promise<void>;
}

/**
 * Starts every simulated Kick surface on 127.0.0.1 (free ports).
 *
 * @example
 * ```ts
 * const sim = await startSimulator();
 * const s = sim.world.add({ userId: 2570626, slug: "bossmanjack", channelId: 2515504 });
 * // start kickmon with { ...sim.env(), DATABASE_URL }
 * sim.world.setLive(s.userId, true); // Pusher frame + API truth
 * await sim.close();
 * ```
 */
export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const world = new World();
  const pusherKey = opts.pusherKey ?? "32cbd69e4b950bf97679";
  const clientId = opts.clientId ?? "sim-client-id";
  const clientSecret = opts.clientSecret ?? "sim-client-secret";
  const webhooks = await WebhookSender.create();
  const replay = opts.replay ? await loadReplay(opts.replay) : null;
  const pusher = await startPusherServer({
    world,
    key: pusherKey,
    activityTimeoutSec: opts.activityTimeoutSec,
    onFrameSent: opts.onFrameSent,
    onFrameDelivered: opts.onFrameDelivered,
  });
  const api = startApiServer({
    world,
    clientId,
    clientSecret,
    tokenLifetimeSec: opts.tokenLifetimeSec,
    webhookPublicKeyPem: webhooks.publicKeyPem,
    v1LivestreamsGone: opts.v1LivestreamsGone,
    v1LivestreamsDeprecated: opts.v1LivestreamsDeprecated,
    ...(replay ? { answer: (method: string, url: URL) => replay.answer(method, url) } : {}),
  });
  const replayDone = replay ? replay.play(pusher) : Promise.resolve();
  return {
    world,
    pusher,
    api,
    webhooks,
    clientId,
    clientSecret,
    pusherKey,
    replay,
    replayDone,
    env: () => ({
      KICK_CLIENT_ID: clientId,
      KICK_CLIENT_SECRET: clientSecret,
      KICK_OAUTH_URL: api.oauthUrl,
      KICK_API_URL: api.apiUrl,
      KICK_UNOFFICIAL_API_URL: api.unofficialUrl,
      KICK_PUSHER_KEY: pusherKey,
      KICK_PUSHER_HOST: pusher.hostname,
      KICK_PUSHER_PORT: String(pusher.port),
      KICK_PUSHER_TLS: "false",
    }),
    close: async () => {
      replay?.stop();
      await replayDone;
      await pusher.close();
      await api.close();
    },
  };
}
