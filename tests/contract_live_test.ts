/**
 * Issue 13 item 2: the `deno task test:live` entry point
 * (tests/live/contract_live.ts) as a real process, so it cannot rot:
 * without credentials it says in one line that it skipped and why, marks
 * its test ignored and exits 0; pointed at the simulator through the same
 * environment variables kickmon's configuration reads, it passes every
 * contract, including the Pusher status frames the simulator is made to
 * send once the child has subscribed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { channelName } from "../src/kick/pusher/frames.ts";
import { CONTRACT_NAMES } from "./contract/kick_contract.ts";
import type { ContractOutcome } from "./contract/report.ts";
import { LIVE, startSimulatorTarget } from "./contract/simulator_target.ts";
import { waitFor } from "./helpers/database.ts";
import { baseEnv, runCommand, spawnProcess } from "../dev/kickmon_process.ts";

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");

Deno.test("deno task test:live: without credentials it says it skipped, and exits 0", async () => {
  const r = await runCommand(Deno.execPath(), ["task", "test:live"], {});
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 0, out);
  const said = out.split("\n").filter((l) => l.startsWith("live contract suite skipped:"));
  assert.deepEqual(said, [
    "live contract suite skipped: KICK_CLIENT_ID and KICK_CLIENT_SECRET are not set " +
    "(set both to a Kick app's credentials to check Kick's real answers)",
  ]);
  assert.match(out, /ignored/);
  assert.match(out, /0 passed \| 0 failed \| 1 ignored/);
});

Deno.test("deno task test:live: pointed at the simulator by env, every contract passes", async () => {
  const s = await startSimulatorTarget();
  const dir = await Deno.makeTempDir({ prefix: "kickmon-contract-live-" });
  try {
    const child = spawnProcess(Deno.execPath(), ["task", "test:live"], {
      ...baseEnv(),
      NO_COLOR: "1",
      ...s.env,
      KICK_CONTRACT_OBSERVE_SECONDS: "6",
      KICKMON_CONTRACT_REPORT_DIR: dir,
    }, { cwd: ROOT });
    // The child subscribes after its API contracts; then the simulator sends its frames.
    const channel = channelName(LIVE.channelId);
    let exited = false;
    child.status.then(() => (exited = true));
    await waitFor(() => exited || s.sim.pusher.subscriberCount(channel) > 0, {
      timeoutMs: 120_000,
    });
    if (!exited) await s.emit();
    const status = await child.status;
    const out = child.lines.join("\n");
    assert.equal(status.code, 0, out);
    assert.match(out, /ok \| 1 passed \(14 steps\) \| 0 failed/);
    assert.ok(!out.includes(s.sim.clientSecret), "client secret in the output");
    const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`)) as {
      outcomes: ContractOutcome[];
    };
    assert.deepEqual(summary.outcomes.map((o) => o.name), [...CONTRACT_NAMES]);
    for (const o of summary.outcomes) assert.equal(o.status, "pass", JSON.stringify(o));
    assert.match(
      summary.outcomes.at(-1)!.detail,
      /1 StopStreamBroadcast, 1 StreamerIsLive, 1 LivestreamUpdated: all parsed/,
    );
  } finally {
    await s.sim.close();
    await Deno.remove(dir, { recursive: true });
  }
});
