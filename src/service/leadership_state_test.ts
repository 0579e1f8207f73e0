import assert from "node:assert/strict";
import { electorTimings, initialState, MIN_TAKEOVER_MS, transition } from "./leadership_state.ts";

// ---------------------------------------------------------------------------
// The transition function
// ---------------------------------------------------------------------------

const ME = { host: "me", pid: 1, since: 1000 };
const OTHER = { host: "other", pid: 2, since: 500 };

Deno.test("transition: every role change goes through one function", async (t) => {
  const s0 = initialState(0);
  const leader = transition(s0, { type: "acquired", at: 1000, self: ME });

  await t.step("unknown → leader on acquired; counts one change", () => {
    assert.equal(s0.role, "unknown");
    assert.equal(leader.role, "leader");
    assert.equal(leader.since, 1000);
    assert.deepEqual(leader.leader, ME);
    assert.equal(leader.lastVerifiedAt, 1000);
    assert.equal(leader.changesTotal, 1);
  });
  await t.step("verified keeps the role and since, moves the lease", () => {
    const v = transition(leader, { type: "verified", at: 3000 });
    assert.equal(v.role, "leader");
    assert.equal(v.since, 1000);
    assert.equal(v.lastVerifiedAt, 3000);
    assert.equal(v.changesTotal, 1);
  });
  await t.step("verified means nothing to a standby", () => {
    const sb = transition(s0, { type: "refused", at: 5, leader: OTHER });
    assert.equal(transition(sb, { type: "verified", at: 9 }), sb);
  });
  await t.step("refused: standby, with the leader seen (or none)", () => {
    const sb = transition(s0, { type: "refused", at: 5, leader: OTHER });
    assert.equal(sb.role, "standby");
    assert.deepEqual(sb.leader, OTHER);
    assert.equal(sb.changesTotal, 0, "unknown → standby is not a leadership change");
    const free = transition(s0, { type: "refused", at: 5, leader: null });
    assert.equal(free.leader, null);
    assert.match(free.reason, /free/);
  });
  await t.step("closed demotes a leader to unknown; a standby stays", () => {
    const c = transition(leader, { type: "closed", at: 2000 });
    assert.equal(c.role, "unknown");
    assert.equal(c.since, 2000);
    assert.equal(c.leader, null);
    assert.equal(c.changesTotal, 2);
    const sb = transition(s0, { type: "refused", at: 5, leader: OTHER });
    assert.equal(transition(sb, { type: "closed", at: 6 }), sb);
  });
  await t.step("lost demotes a leader to standby", () => {
    const l = transition(leader, { type: "lost", at: 2000 });
    assert.equal(l.role, "standby");
    assert.equal(l.changesTotal, 2);
  });
  await t.step("unreachable: unknown from any role", () => {
    const u = transition(leader, { type: "unreachable", at: 2000, error: "ECONNREFUSED" });
    assert.equal(u.role, "unknown");
    assert.match(u.reason, /ECONNREFUSED/);
    const sb = transition(s0, { type: "refused", at: 5, leader: OTHER });
    assert.equal(transition(sb, { type: "unreachable", at: 6, error: "x" }).role, "unknown");
  });
  await t.step("lease_expired demotes only when no check succeeded for leaseMs", () => {
    assert.equal(
      transition(leader, { type: "lease_expired", at: 4999, leaseMs: 4000 }),
      leader,
      "a stale timer",
    );
    const e = transition(leader, { type: "lease_expired", at: 5000, leaseMs: 4000 });
    assert.equal(e.role, "unknown");
    assert.match(e.reason, /4000 ms/);
  });
  await t.step("stopped: standby, no leader", () => {
    const st = transition(leader, { type: "stopped", at: 7000 });
    assert.equal(st.role, "standby");
    assert.equal(st.leader, null);
    assert.equal(st.changesTotal, 2);
  });
  await t.step("acquired again while leading changes nothing but the lease", () => {
    const again = transition(leader, { type: "acquired", at: 1500, self: ME });
    assert.equal(again.since, 1000);
    assert.equal(again.changesTotal, 1);
    assert.equal(again.lastVerifiedAt, 1500);
  });
});

Deno.test("electorTimings: poll takeover/5, lease two polls, dead peer 0.6 × takeover", () => {
  assert.deepEqual(electorTimings(10_000), {
    pollMs: 2000,
    queryTimeoutMs: 2000,
    leaseMs: 4000,
    deadPeerSec: 6,
  });
  assert.deepEqual(electorTimings(MIN_TAKEOVER_MS), {
    pollMs: 1000,
    queryTimeoutMs: 1000,
    leaseMs: 2000,
    deadPeerSec: 3,
  });
  for (const ms of [10_000, 5000, 7000, 30_000, 60_000]) {
    const t = electorTimings(ms);
    assert.ok(
      t.leaseMs < t.deadPeerSec * 1000,
      `${ms}: a silent leader demotes before its lock frees`,
    );
    assert.ok(t.deadPeerSec * 1000 + t.pollMs <= ms, `${ms}: takeover within the bound`);
  }
  assert.throws(() => electorTimings(4999), RangeError);
  assert.throws(() => electorTimings(Number.NaN), RangeError);
});
