/**
 * `deno task test:live`: the contract suite (tests/contract/kick_contract.ts)
 * against the real Kick, or whatever the configuration's base URLs name.
 * Not a `*_test.ts` file, so `deno task test` never picks it up.
 *
 * Reads `KICK_CLIENT_ID` and `KICK_CLIENT_SECRET` (required: without them it
 * prints one line saying the live suite was skipped and why, marks the test
 * ignored and exits 0), the base-URL and Pusher variables of kickmon's
 * configuration (`KICK_OAUTH_URL`, `KICK_API_URL`,
 * `KICK_UNOFFICIAL_CHANNEL_LOOKUP`, `KICK_UNOFFICIAL_API_URL`,
 * `KICK_PUSHER_*`; defaults = the real Kick), and `KICK_CONTRACT_STREAMER`,
 * `KICK_CONTRACT_OBSERVE_SECONDS`, `KICKMON_CONTRACT_REPORT_DIR` (see
 * tests/contract/target.ts).
 *
 * @example
 * ```sh
 * KICK_CLIENT_ID=… KICK_CLIENT_SECRET=… KICK_CONTRACT_STREAMER=xqc deno task test:live
 * ```
 *
 * @module
 */
import { runContractSuite } from "../contract/kick_contract.ts";
import { liveTargetFromEnv } from "../contract/target.ts";

const live = liveTargetFromEnv(Deno.env.toObject());
if (!live.ok) console.log(`live contract suite skipped: ${live.reason}`);

Deno.test({
  name: "contract: Kick's real answers and frames keep kickmon's schemas",
  ignore: !live.ok,
  fn: async (t) => {
    if (live.ok) await runContractSuite(t, live.target);
  },
});
