/**
 * Issue 13 item 2: the live contract suite (tests/contract/kick_contract.ts)
 * run unchanged against the simulator, so the suite itself cannot rot: every
 * contract is kept, none skipped, and the simulator is made to send every
 * Pusher status frame the suite checks. Then the suite's own promises: a
 * malformed list element (which the program would skip) breaks the
 * contract with its zod issues and raw JSON, Cloudflare is a named skip,
 * no secret reaches a message or the report directory, a status frame the
 * program's parser refuses breaks the Pusher contract, and the live target
 * defaults to the real Kick.
 *
 * The `deno task test:live` entry point as a real process is in
 * tests/contract_live_test.ts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ChannelWire } from "../src/kick/official/wire.ts";
import { channelName, STREAMER_IS_LIVE } from "../src/kick/pusher/frames.ts";
import { checkRows, type ContractRun, type Exchange, skipIfCloudflare } from "./contract/check.ts";
import { CONTRACT_NAMES, runContractSuite } from "./contract/kick_contract.ts";
import {
  pusherConnect,
  pusherObserve,
  type PusherState,
  pusherSubscribe,
  STATUS_EVENTS,
} from "./contract/pusher_contract.ts";
import { ContractFailure, ContractReport, ContractSkip, Redactor } from "./contract/report.ts";
import { LIVE, startSimulatorTarget } from "./contract/simulator_target.ts";
import { liveTargetFromEnv } from "./contract/target.ts";

Deno.test("contract: the live suite holds against the simulator, every contract kept", async (t) => {
  const s = await startSimulatorTarget();
  const dir = await Deno.makeTempDir({ prefix: "kickmon-contract-" });
  try {
    const report = await runContractSuite(t, {
      ...s.target(dir),
      requireEvents: STATUS_EVENTS,
      onSubscribed: () => s.emit(),
    });
    await t.step("summary.json lists every contract as kept", async () => {
      assert.deepEqual(report.outcomes.map((o) => o.name), [...CONTRACT_NAMES]);
      for (const o of report.outcomes) assert.equal(o.status, "pass", JSON.stringify(o));
      const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
      assert.equal(summary.outcomes.length, CONTRACT_NAMES.length);
      const observed = report.outcomes.at(-1)!.detail;
      assert.match(observed, /1 StopStreamBroadcast/);
      assert.match(observed, /1 StreamerIsLive/);
      assert.match(observed, /1 LivestreamUpdated/);
      assert.match(report.outcomes[0].detail, /expires_in 7200 s/);
      assert.match(report.outcomes[9].detail, /channel id 2515504/);
      const text = await Deno.readTextFile(`${dir}/summary.json`);
      assert.ok(!text.includes(s.sim.clientSecret), "client secret in summary.json");
    });
  } finally {
    await s.sim.close();
    await Deno.remove(dir, { recursive: true });
  }
});

async function fakeRun(dir: string, secret: string): Promise<ContractRun> {
  const redactor = new Redactor([secret]);
  return {
    target: {
      oauthBaseUrl: "http://127.0.0.1:1",
      apiBaseUrl: "http://127.0.0.1:1/public/v1",
      pusherUrl: "ws://127.0.0.1:1/app/k",
      clientId: "cid",
      clientSecret: secret,
      observeSeconds: 0,
      reportDir: dir,
    },
    redactor,
    report: await ContractReport.open(dir, "unit", redactor),
    found: {},
  };
}

const exchangeOf = (status: number, text: string, headers: Record<string, string> = {}) =>
  ({
    endpoint: "GET /public/v1/channels?slug=a",
    status,
    text,
    headers: new Headers(headers),
  }) as Exchange;

Deno.test("contract: a malformed list element breaks the contract, with its issues and raw JSON", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kickmon-contract-unit-" });
  try {
    const run = await fakeRun(dir, "the-secret-value");
    const good = {
      broadcaster_user_id: 1,
      slug: "a",
      stream: { is_live: true, start_time: "2025-01-01T11:00:00+11:00" },
    };
    const bad = { broadcaster_user_id: 2, slug: "b", stream: { start_time: null }, note: "x" };
    const ok = checkRows(
      run,
      exchangeOf(200, JSON.stringify({ data: [good], message: "OK" })),
      ChannelWire,
      "ChannelWire",
    );
    assert.equal(ok.length, 1);
    const body = JSON.stringify({ data: [good, bad], message: "OK", echo: "the-secret-value" });
    try {
      checkRows(run, exchangeOf(200, body), ChannelWire, "ChannelWire");
      assert.fail("no failure");
    } catch (err) {
      assert.ok(err instanceof ContractFailure);
      assert.equal(err.endpoint, "GET /public/v1/channels?slug=a");
      assert.match(err.message, /every element is ChannelWire/);
      assert.match(err.message, /data\[1\]\.stream\.is_live: /);
      assert.ok(err.message.includes(`data[1] raw: ${JSON.stringify(bad)}`), err.message);
      assert.ok(!err.message.includes("the-secret-value"), err.message);
      assert.match(err.message, /\[REDACTED\]/);
    }
    assert.throws(
      () => checkRows(run, exchangeOf(500, "oops"), ChannelWire, "ChannelWire"),
      /unexpected HTTP status 500[\s\S]*raw: HTTP 500 oops/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("contract: Cloudflare's block is a named skip; tokens never reach the report", async () => {
  const html = exchangeOf(403, "<!DOCTYPE html><title>Just a moment...</title>", {
    "content-type": "text/html",
    "cf-ray": "8f00-AMS",
  });
  assert.throws(() => skipIfCloudflare(html), (e: unknown) => {
    assert.ok(e instanceof ContractSkip);
    assert.match(
      e.message,
      /blocked by Cloudflare \("Just a moment\.\.\." challenge page, cf-ray 8f00-AMS\)/,
    );
    return true;
  });
  const json = exchangeOf(
    403,
    '{"error":"Request blocked by security policy.","reference":"9e4db7e3"}',
  );
  assert.throws(() => skipIfCloudflare(json), ContractSkip);
  skipIfCloudflare(exchangeOf(403, '{"message":"Forbidden"}')); // a plain 403 is the contract's business

  const r = new Redactor(["sekrit-1234"]);
  r.add("tok_abcdef");
  assert.equal(
    r.redact('{"access_token":"other","x":"sekrit-1234 tok_abcdef"} Bearer zzz.yyy'),
    '{"access_token":"[REDACTED]","x":"[REDACTED] [REDACTED]"} Bearer [REDACTED]',
  );
  const dir = await Deno.makeTempDir({ prefix: "kickmon-contract-unit-" });
  try {
    const report = await ContractReport.open(dir, "unit", r);
    await report.record(
      { name: "oauth: x", status: "fail", detail: "tok_abcdef", ms: 1 },
      new Error("body tok_abcdef sekrit-1234"),
    );
    const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(files, ["01-oauth_x.txt", "summary.json"]);
    for (const f of files) {
      const text = await Deno.readTextFile(`${dir}/${f}`);
      assert.ok(!/tok_abcdef|sekrit-1234/.test(text), `${f}: ${text}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("contract: a status frame the program's parser refuses breaks the Pusher contract", async () => {
  const s = await startSimulatorTarget();
  const dir = await Deno.makeTempDir({ prefix: "kickmon-contract-unit-" });
  const state: PusherState = {};
  try {
    const base = s.target(dir);
    const run = await fakeRun(dir, s.sim.clientSecret);
    const live = { ...run, target: { ...base, observeSeconds: 1 } };
    live.found.channel = { id: LIVE.channelId, userId: LIVE.userId, slug: LIVE.slug, from: "test" };
    await pusherConnect(live, state);
    await pusherSubscribe(live, state);
    // The payload's channel id is not the channel's: parsePusherEvent says channel_mismatch.
    const bad = '{"livestream":{"id":5,"channel_id":668,"session_title":"x","created_at":null}}';
    s.sim.pusher.publish(channelName(LIVE.channelId), STREAMER_IS_LIVE, bad);
    await assert.rejects(() => pusherObserve(live, state), (e: unknown) => {
      assert.ok(e instanceof ContractFailure);
      assert.match(e.message, /parsePusherEvent/);
      assert.match(e.message, /channel_mismatch/);
      assert.ok(e.message.includes(JSON.stringify(bad).slice(1, 40)), e.message);
      return true;
    });
  } finally {
    await state.ws?.close();
    await s.sim.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("contract: the live target defaults to the real Kick, from kickmon's own variables", () => {
  const none = liveTargetFromEnv({ KICK_CLIENT_ID: "cid" });
  assert.deepEqual(none, {
    ok: false,
    reason: "KICK_CLIENT_SECRET is not set " +
      "(set both to a Kick app's credentials to check Kick's real answers)",
  });
  const live = liveTargetFromEnv({ KICK_CLIENT_ID: "cid", KICK_CLIENT_SECRET: "secret" });
  assert.ok(live.ok);
  assert.deepEqual(live.target, {
    oauthBaseUrl: "https://id.kick.com",
    apiBaseUrl: "https://api.kick.com/public/v1",
    pusherUrl:
      "wss://ws-us2.pusher.com:443/app/32cbd69e4b950bf97679?protocol=7&client=js&version=8.4.0&flash=false",
    clientId: "cid",
    clientSecret: "secret",
    observeSeconds: 30,
    reportDir: "contract-report",
  });
  const lookup = liveTargetFromEnv({
    KICK_CLIENT_ID: "cid",
    KICK_CLIENT_SECRET: "secret",
    KICK_UNOFFICIAL_CHANNEL_LOOKUP: "true",
    KICK_CONTRACT_STREAMER: "xqc",
    KICK_CONTRACT_OBSERVE_SECONDS: "5",
    KICKMON_CONTRACT_REPORT_DIR: "/tmp/r",
  });
  assert.ok(lookup.ok);
  assert.equal(lookup.target.unofficialBaseUrl, "https://kick.com/api/v2");
  assert.equal(lookup.target.streamer, "xqc");
  assert.equal(lookup.target.observeSeconds, 5);
  assert.equal(lookup.target.reportDir, "/tmp/r");
});
