/**
 * The live contract suite: the zod schemas and parsers kickmon itself uses,
 * held against the real answers of every endpoint kickmon calls and against
 * real Pusher frames on a real channel. One suite, two targets: the real
 * Kick (`deno task test:live`, tests/live/contract_live.ts) and the
 * simulator (tests/contract_test.ts, part of `deno task test`), so it can
 * never rot.
 *
 * {@linkcode runContractSuite} registers one test step per contract, in this
 * order (each may use what an earlier one found):
 *
 * | step                                   | checks (kick-protocol.md)                                        |
 * | -------------------------------------- | ---------------------------------------------------------------- |
 * | `oauth: client-credentials token`      | `OAuthTokenResponseWire` (§4.1)                                  |
 * | `oauth: invalid secret`                | 4xx + `OAuthErrorResponseWire` (§4.1, §4.3)                      |
 * | `api: /livestreams v1 (discover)`      | every element `LivestreamWire`; 404/410 a named skip (§4.5, §10.6) |
 * | `api: /channels by slug`               | every element `ChannelWire` (§4.4)                               |
 * | `api: /channels by broadcaster_user_id`| every element `ChannelWire` (§4.4)                               |
 * | `api: /livestreams v1 (by user id)`    | kickmon's own request; every element `LivestreamWire` (§4.5)     |
 * | `api: /users/livestreams`              | the list envelope; not answering a named skip (§10.5)            |
 * | `api: /events/subscriptions`           | every element `EventSubscriptionWire` (§4.7)                     |
 * | `api: /public-key`                     | `envelope(PublicKeyWire)`, the PEM imports (§4.8)                |
 * | `unofficial: kick.com channel lookup`  | `UnofficialChannelWire`; Cloudflare a named skip (§2, §5)        |
 * | `pusher: connect`                      | `pusher:connection_established`, `activity_timeout` (§1.3)       |
 * | `pusher: subscribe`                    | `pusher_internal:subscription_succeeded` (§1.2)                  |
 * | `pusher: ping`                         | `pusher:pong` (§1.3)                                             |
 * | `pusher: status frames`                | every frame; status frames through `parsePusherEvent` (§3)       |
 *
 * A broken contract fails its step with the endpoint, what was expected and
 * the raw answer (client secret and tokens redacted), and is written to the
 * report directory (see tests/contract/report.ts). A contract that cannot
 * be checked from here (Cloudflare, v1 gone, no token) is an ignored step
 * whose reason is printed.
 *
 * @module
 */
import {
  channelsById,
  channelsBySlug,
  eventSubscriptions,
  livestreams,
  oauthInvalidSecret,
  oauthToken,
  publicKey,
  unofficialChannel,
  usersLivestreams,
} from "./api_contract.ts";
import { type ContractRun, runContract } from "./check.ts";
import {
  pusherConnect,
  pusherObserve,
  pusherPing,
  type PusherState,
  pusherSubscribe,
} from "./pusher_contract.ts";
import { ContractReport, Redactor } from "./report.ts";
import type { ContractTarget } from "./target.ts";

/** The step names, in order (tests compare against it). */
export const CONTRACT_NAMES = [
  "oauth: client-credentials token",
  "oauth: invalid secret",
  "api: /livestreams v1 (discover)",
  "api: /channels by slug",
  "api: /channels by broadcaster_user_id",
  "api: /livestreams v1 (by user id)",
  "api: /users/livestreams",
  "api: /events/subscriptions",
  "api: /public-key",
  "unofficial: kick.com channel lookup",
  "pusher: connect",
  "pusher: subscribe",
  "pusher: ping",
  "pusher: status frames",
] as const;

/**
 * Runs every contract against `target` as steps of the test `t`, and
 * returns the report (its `outcomes` and directory).
 *
 * @throws {Deno.errors.PermissionDenied} when the report directory cannot be written.
 * @example
 * ```ts
 * Deno.test("contract: Kick", async (t) => {
 *   const report = await runContractSuite(t, target);
 *   console.log(`report in ${report.dir}`);
 * });
 * ```
 */
export async function runContractSuite(
  t: Deno.TestContext,
  target: ContractTarget,
): Promise<ContractReport> {
  const redactor = new Redactor([target.clientSecret]);
  const report = await ContractReport.open(
    target.reportDir,
    `oauth ${target.oauthBaseUrl}, api ${target.apiBaseUrl}, unofficial ${
      target.unofficialBaseUrl ?? "(disabled)"
    }, pusher ${new URL(target.pusherUrl).host}`,
    redactor,
  );
  const run: ContractRun = {
    target,
    redactor,
    report,
    found: target.streamer ? { slug: target.streamer } : {},
  };
  const pusher: PusherState = {};
  const [token, invalid, discover, bySlug, byId, byUser, users, subs, key, unofficial] =
    CONTRACT_NAMES;
  const [connect, subscribe, ping, observe] = CONTRACT_NAMES.slice(10);
  try {
    await runContract(t, run, token, () => oauthToken(run));
    await runContract(t, run, invalid, () => oauthInvalidSecret(run));
    await runContract(t, run, discover, () => livestreams(run, "discover"));
    await runContract(t, run, bySlug, () => channelsBySlug(run));
    await runContract(t, run, byId, () => channelsById(run));
    await runContract(t, run, byUser, () => livestreams(run, "by_id"));
    await runContract(t, run, users, () => usersLivestreams(run));
    await runContract(t, run, subs, () => eventSubscriptions(run));
    await runContract(t, run, key, () => publicKey(run));
    await runContract(t, run, unofficial, () => unofficialChannel(run));
    await runContract(t, run, connect, () => pusherConnect(run, pusher));
    await runContract(t, run, subscribe, () => pusherSubscribe(run, pusher));
    await runContract(t, run, ping, () => pusherPing(run, pusher));
    await runContract(t, run, observe, () => pusherObserve(run, pusher));
  } finally {
    await pusher.ws?.close();
  }
  const count = (s: string) => report.outcomes.filter((o) => o.status === s).length;
  console.log(
    `contract: ${count("pass")} kept, ${count("skip")} skipped, ${count("fail")} broken; ` +
      `report in ${report.dir}/summary.json`,
  );
  return report;
}
