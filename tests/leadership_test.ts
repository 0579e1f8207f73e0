import assert from "node:assert/strict";
import { createTestDatabase, waitFor } from "./helpers/database.ts";
import { type DatabaseConfig, loadConfig } from "../src/config/config.ts";
import { connectDatabase, type Sql } from "../src/db/client.ts";
import { LEADER_LOCK_NAMESPACE, type LockHolder } from "../src/db/leader_lock.ts";
import { startThrowawayCluster } from "../dev/pg_cluster.ts";
import {
  createLeaderElector,
  type ElectorClock,
  LeaderElector,
  type LeadershipChange,
  type LockPort,
} from "../src/service/leadership.ts";
import { electorTimings } from "../src/service/leadership_state.ts";

// ---------------------------------------------------------------------------
// The elector with a fake lock and a fake clock
// ---------------------------------------------------------------------------

class FakeClock implements ElectorClock {
  #now = 1_000_000;
  #next = 1;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  now = () => this.#now;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + ms, fn });
    return id;
  };
  clearTimeout = (id: unknown) => {
    this.#timers.delete(id as number);
  };
  /** Moves time on by `ms`, running due timers in order and letting promises settle. */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    await settle();
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, t]) => t.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = due[1].at;
      due[1].fn();
      await settle();
    }
    this.#now = end;
    await settle();
  }
}

/** Lets promise chains run (a few turns of the event loop). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
}

/** The lock as seen by one elector; `free`/`others` simulate the database. */
class FakeLock implements LockPort {
  held = false;
  /** Someone else holds it (their identity), or null. */
  other: LockHolder | null = null;
  /** `up`: answers; `down`: fails at once; `hang`: never answers until reset. */
  mode: "up" | "down" | "hang" = "up";
  calls: string[] = [];
  resets = 0;
  closed = false;
  #hanging: Array<(e: Error) => void> = [];

  #answer<T>(name: string, value: () => T): Promise<T> {
    this.calls.push(name);
    if (this.mode === "down") return Promise.reject(new Error("ECONNREFUSED"));
    if (this.mode === "hang") {
      return new Promise<T>((_, reject) => this.#hanging.push(reject));
    }
    return Promise.resolve(value());
  }
  tryAcquire(_since: number) {
    return this.#answer("tryAcquire", () => {
      if (this.other) return false;
      this.held = true;
      return true;
    });
  }
  verify() {
    return this.#answer("verify", () => this.held);
  }
  holder() {
    return this.#answer("holder", () => this.other);
  }
  release() {
    return this.#answer("release", () => {
      this.held = false;
    });
  }
  reset() {
    this.resets++;
    this.held = false;
    for (const reject of this.#hanging.splice(0)) reject(new Error("CONNECTION_ENDED"));
    return Promise.resolve();
  }
  close() {
    this.closed = true;
    return this.reset();
  }
}

function fakeElector(takeoverMs = 10_000) {
  const clock = new FakeClock();
  const lock = new FakeLock();
  const elector = new LeaderElector({
    lock,
    identity: { host: "me", pid: 1 },
    takeoverMs,
    clock,
  });
  const changes: LeadershipChange[] = [];
  elector.onChange((c) => changes.push(c));
  return { clock, lock, elector, changes };
}

const OTHER_HOLDER: LockHolder = {
  backendPid: 999,
  applicationName: "kickmon-leader:500:2:other",
  identity: { host: "other", pid: 2, since: 500_000 },
};

Deno.test("elector: a free lock is taken on the first poll; onPromoted once; snapshot", async () => {
  const { clock, lock, elector, changes } = fakeElector();
  let promoted = 0;
  elector.onPromoted(() => promoted++);
  assert.equal(elector.snapshot().role, "unknown");
  elector.start();
  elector.start(); // idempotent
  await clock.advance(0);
  assert.equal(elector.isLeader, true);
  assert.equal(promoted, 1);
  assert.deepEqual(changes.map((c) => `${c.from}→${c.to}`), ["unknown→leader"]);
  const snap = elector.snapshot();
  assert.equal(snap.role, "leader");
  assert.equal(snap.since, 1_000_000);
  assert.deepEqual(snap.leader, { host: "me", pid: 1, since: 1_000_000 });
  assert.equal(snap.changes_total, 1);
  // The leader re-checks every poll, and never tries to take the lock again.
  lock.calls = [];
  await clock.advance(6000);
  assert.deepEqual(lock.calls, ["verify", "verify", "verify"]);
  assert.equal(promoted, 1);
  await elector.stop();
});

Deno.test("elector: a standby shows the leader and takes over within one poll of the lock freeing", async () => {
  const { clock, lock, elector, changes } = fakeElector();
  lock.other = OTHER_HOLDER;
  elector.start();
  await clock.advance(0);
  assert.equal(elector.snapshot().role, "standby");
  assert.deepEqual(elector.snapshot().leader, OTHER_HOLDER.identity);
  lock.other = null; // the leader died
  await clock.advance(elector.timings.pollMs);
  assert.equal(elector.isLeader, true);
  assert.deepEqual(changes.map((c) => c.to), ["standby", "leader"]);
  assert.equal(elector.snapshot().changes_total, 1);
  await elector.stop();
});

Deno.test("elector: a closed session demotes at once, ends the session, and re-checks on a new one", async () => {
  const { clock, lock, elector } = fakeElector();
  const demotions: LeadershipChange[] = [];
  elector.onDemoted((c) => demotions.push(c));
  elector.start();
  await clock.advance(0);
  assert.equal(elector.isLeader, true);
  // The session drops (PostgreSQL restarted): demoted synchronously, no timer needed.
  lock.held = false;
  lock.other = OTHER_HOLDER; // and someone else got it meanwhile
  elector.connectionClosed();
  assert.equal(elector.isLeader, false);
  assert.equal(demotions.length, 1);
  assert.equal(demotions[0].to, "unknown");
  assert.match(demotions[0].reason, /session closed/);
  assert.equal(lock.resets, 1, "the session is ended");
  // The next poll is a candidate's on the new session: refused, standby.
  lock.calls = [];
  await clock.advance(elector.timings.pollMs);
  assert.deepEqual(lock.calls, ["tryAcquire", "holder"]);
  assert.equal(elector.snapshot().role, "standby");
  assert.equal(elector.snapshot().changes_total, 2);
  await elector.stop();
});

Deno.test("elector: a check that never answers demotes after the lease, not later", async () => {
  const { clock, lock, elector, changes } = fakeElector();
  elector.start();
  await clock.advance(0);
  const promotedAt = clock.now();
  lock.mode = "hang";
  await clock.advance(elector.timings.leaseMs - 1);
  assert.equal(elector.isLeader, true, "still inside the lease");
  await clock.advance(1);
  assert.equal(elector.isLeader, false);
  const demoted = changes.at(-1)!;
  assert.equal(demoted.at - promotedAt, elector.timings.leaseMs);
  assert.match(demoted.reason, /no successful lock check/);
  assert.ok(lock.resets >= 1, "the hung session is ended");
  // The database answers again: leader again on the next poll.
  lock.mode = "up";
  await clock.advance(elector.timings.pollMs);
  assert.equal(elector.isLeader, true);
  await elector.stop();
});

Deno.test("elector: unreachable is unknown; back, it competes again; hooks and unsubscribe", async () => {
  const { clock, lock, elector } = fakeElector();
  const seen: string[] = [];
  elector.onChange(() => {
    throw new Error("a broken hook");
  });
  const off = elector.onChange((c) => seen.push(c.to));
  lock.mode = "down";
  elector.start();
  await clock.advance(0);
  assert.equal(elector.snapshot().role, "unknown");
  assert.match(elector.snapshot().reason, /ECONNREFUSED/);
  lock.mode = "up";
  await clock.advance(elector.timings.pollMs);
  assert.equal(elector.isLeader, true);
  assert.deepEqual(seen, ["leader"], "a throwing hook does not stop the next one");
  lock.mode = "down";
  await clock.advance(elector.timings.pollMs);
  assert.equal(elector.snapshot().role, "unknown");
  off();
  lock.mode = "up";
  await clock.advance(elector.timings.pollMs);
  assert.equal(elector.isLeader, true);
  assert.deepEqual(seen, ["leader", "unknown"], "no call after unsubscribing");
  assert.equal(elector.snapshot().changes_total, 3);
  await elector.stop();
});

Deno.test("elector: stop demotes, releases the lock, closes the session and polls no more", async () => {
  const { clock, lock, elector, changes } = fakeElector();
  elector.start();
  await clock.advance(0);
  await elector.stop();
  assert.equal(elector.isLeader, false);
  assert.equal(changes.at(-1)?.reason, "stopped");
  assert.ok(lock.calls.includes("release"));
  assert.equal(lock.held, false);
  assert.equal(lock.closed, true);
  lock.calls = [];
  await clock.advance(60_000);
  assert.deepEqual(lock.calls, []);
  await elector.stop(); // idempotent
});

// ---------------------------------------------------------------------------
// Real PostgreSQL
// ---------------------------------------------------------------------------

const TAKEOVER_MS = 5000;

function dbConfig(url: string): DatabaseConfig {
  return loadConfig({ DATABASE_URL: url, DATABASE_CONNECT_TIMEOUT: "2" }, {
    requireKickCredentials: false,
  }).database;
}

/** Electors on one database, with a check that two never lead at once. */
function electors(url: string, n: number) {
  const leaders = new Set<number>();
  let maxConcurrent = 0;
  const log: Array<{ i: number; to: string; at: number }> = [];
  const list = Array.from({ length: n }, (_, i) => {
    const e = createLeaderElector(dbConfig(url), {
      takeoverMs: TAKEOVER_MS,
      identity: { host: `host-${i}`, pid: 1000 + i },
    });
    e.onChange((c) => {
      log.push({ i, to: c.to, at: performance.now() });
      if (c.to === "leader") leaders.add(i);
      else leaders.delete(i);
      maxConcurrent = Math.max(maxConcurrent, leaders.size);
    });
    return e;
  });
  return {
    list,
    log,
    get maxConcurrent() {
      return maxConcurrent;
    },
    leaderIndexes: () => list.flatMap((e, i) => (e.isLeader ? [i] : [])),
    stop: () => Promise.all(list.map((e) => e.stop())),
  };
}

async function leaderBackend(admin: Sql): Promise<number | null> {
  const rows = await admin<{ pid: number }[]>`
    SELECT pid FROM pg_locks
    WHERE locktype = 'advisory' AND objsubid = 2 AND granted
      AND classid = ${LEADER_LOCK_NAMESPACE}::oid
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
  return rows[0]?.pid ?? null;
}

Deno.test("elector on PostgreSQL: three instances, exactly one leader, the others name it", async () => {
  const db = await createTestDatabase();
  const group = electors(db.url, 3);
  try {
    for (const e of group.list) e.start();
    await waitFor(
      () =>
        group.list.every((e) => e.snapshot().role !== "unknown") &&
        group.leaderIndexes().length === 1 &&
        group.list.every((e) => e.snapshot().leader !== null),
      { timeoutMs: TAKEOVER_MS, message: "one leader, known to all" },
    );
    const [li] = group.leaderIndexes();
    for (const [i, e] of group.list.entries()) {
      const s = e.snapshot();
      assert.equal(s.role, i === li ? "leader" : "standby");
      assert.equal(s.leader?.host, `host-${li}`);
      assert.equal(s.leader?.pid, 1000 + li);
    }
    // Stays so: several polls later still exactly one.
    await new Promise((r) => setTimeout(r, 2 * electorTimings(TAKEOVER_MS).pollMs + 200));
    assert.deepEqual(group.leaderIndexes(), [li]);
    assert.equal(group.maxConcurrent, 1);
  } finally {
    await group.stop();
    await db.drop();
  }
});

Deno.test("elector on PostgreSQL: the leader's backend terminated → demoted at once, another takes over in bound", async () => {
  const db = await createTestDatabase();
  const admin = connectDatabase(dbConfig(db.url), { max: 1 });
  const group = electors(db.url, 3);
  try {
    for (const e of group.list) e.start();
    await waitFor(() => group.leaderIndexes().length === 1, {
      timeoutMs: TAKEOVER_MS,
      message: "a leader",
    });
    const [old] = group.leaderIndexes();
    const backend = await leaderBackend(admin);
    assert.ok(backend);
    const t0 = performance.now();
    await admin`SELECT pg_terminate_backend(${backend})`;
    await waitFor(() => !group.list[old].isLeader, { timeoutMs: 1000, message: "demoted at once" });
    const demotedMs = performance.now() - t0;
    await waitFor(() => group.leaderIndexes().length === 1, {
      timeoutMs: TAKEOVER_MS,
      message: "a new leader within the takeover bound",
    });
    const tookMs = performance.now() - t0;
    console.log(
      `demoted after ${demotedMs.toFixed(0)} ms, new leader after ${tookMs.toFixed(0)} ms`,
    );
    assert.ok(tookMs <= TAKEOVER_MS, `${tookMs} ms`);
    assert.equal(group.maxConcurrent, 1, JSON.stringify(group.log));
    const [now] = group.leaderIndexes();
    assert.notEqual(await leaderBackend(admin), backend);
    assert.equal(group.list[old].snapshot().leader?.host ?? `host-${now}`, `host-${now}`);
  } finally {
    await group.stop();
    await admin.end({ timeout: 1 });
    await db.drop();
  }
});

Deno.test({
  name: "elector on PostgreSQL: a restarted server leaves at most one leader, within the bound",
  sanitizeResources: false, // the cluster's postgres is a separate process tree
  fn: async () => {
    const cluster = await startThrowawayCluster();
    const group = electors(cluster.url, 3);
    try {
      for (const e of group.list) e.start();
      await waitFor(() => group.leaderIndexes().length === 1, {
        timeoutMs: TAKEOVER_MS,
        message: "a leader before the restart",
      });
      await cluster.pgStop();
      await waitFor(() => group.list.every((e) => e.snapshot().role === "unknown"), {
        timeoutMs: TAKEOVER_MS,
        message: "nobody leads, nobody knows who does, while the server is down",
      });
      await cluster.pgStart();
      const t0 = performance.now();
      await waitFor(() => group.leaderIndexes().length === 1, {
        timeoutMs: TAKEOVER_MS,
        message: "one leader after the restart",
      });
      console.log(`leader again ${(performance.now() - t0).toFixed(0)} ms after the server was up`);
      await waitFor(
        () => group.list.every((e) => e.snapshot().role !== "unknown"),
        { timeoutMs: TAKEOVER_MS, message: "everyone sees the database again" },
      );
      await new Promise((r) => setTimeout(r, electorTimings(TAKEOVER_MS).pollMs + 200));
      assert.equal(group.leaderIndexes().length, 1);
      assert.equal(group.maxConcurrent, 1, JSON.stringify(group.log));
    } finally {
      await group.stop();
      await cluster.stop();
    }
  },
});

/**
 * A TCP proxy to PostgreSQL that can stop forwarding (a network that drops
 * everything, both ways, without closing anything). When either side closes,
 * it closes the other.
 */
function blackholeProxy(port: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let black = false;
  const close = (c: Deno.Conn) => {
    if (!conns.delete(c)) return;
    try {
      c.close();
    } catch {
      // already closed
    }
  };
  const pump = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        if (black) continue;
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch {
      // a side went away
    } finally {
      close(from);
      close(to);
    }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.add(client);
      conns.add(upstream);
      pump(client, upstream);
      pump(upstream, client);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    blackhole: () => (black = true),
    async close() {
      listener.close();
      await accepting;
      for (const c of [...conns]) close(c);
    },
  };
}

Deno.test("elector on PostgreSQL: a leader whose database stops answering demotes itself; a standby takes over", async () => {
  const db = await createTestDatabase();
  const url = new URL(db.url);
  const proxy = blackholeProxy(Number(url.port));
  const viaProxy = new URL(db.url);
  viaProxy.port = String(proxy.port);
  const t = electorTimings(TAKEOVER_MS);
  const cut = createLeaderElector(dbConfig(viaProxy.toString()), {
    takeoverMs: TAKEOVER_MS,
    identity: { host: "cut-off", pid: 1 },
  });
  const standby = createLeaderElector(dbConfig(db.url), {
    takeoverMs: TAKEOVER_MS,
    identity: { host: "standby", pid: 2 },
  });
  const events: string[] = [];
  let both = false;
  for (const [name, e] of [["cut", cut], ["standby", standby]] as const) {
    e.onChange((c) => {
      events.push(`${name}:${c.to}`);
      if (cut.isLeader && standby.isLeader) both = true;
    });
  }
  try {
    cut.start();
    await waitFor(() => cut.isLeader, { timeoutMs: TAKEOVER_MS, message: "cut-off leads first" });
    standby.start();
    await waitFor(() => standby.snapshot().leader?.host === "cut-off", {
      timeoutMs: TAKEOVER_MS,
      message: "the standby names the leader",
    });
    const t0 = performance.now();
    proxy.blackhole();
    await waitFor(() => !cut.isLeader, {
      timeoutMs: t.leaseMs + 1000,
      message: "the cut-off leader demotes itself within its lease",
    });
    const demotedMs = performance.now() - t0;
    await waitFor(() => standby.isLeader, {
      timeoutMs: TAKEOVER_MS,
      message: "the standby takes over",
    });
    const tookMs = performance.now() - t0;
    console.log(
      `demoted after ${demotedMs.toFixed(0)} ms, taken over after ${tookMs.toFixed(0)} ms`,
    );
    assert.ok(
      demotedMs <= t.leaseMs + 1000,
      `${demotedMs} ms (lease ${t.leaseMs} ms + timer slack)`,
    );
    assert.ok(tookMs <= TAKEOVER_MS, `${tookMs} ms`);
    assert.equal(both, false, events.join(", "));
    assert.match(cut.snapshot().reason, /unreachable|closed|no successful lock check/);
  } finally {
    await cut.stop();
    await standby.stop();
    await proxy.close();
    await db.drop();
  }
});

Deno.test("elector: an ineligible one never tries the lock; it shows who leads, or nobody", async () => {
  const clock = new FakeClock();
  const lock = new FakeLock();
  const elector = new LeaderElector({
    lock,
    identity: { host: "me", pid: 1 },
    takeoverMs: 10_000,
    clock,
    eligible: false,
  });
  elector.start();
  await clock.advance(6000);
  assert.equal(elector.isLeader, false);
  assert.ok(!lock.calls.includes("tryAcquire"), lock.calls.join(","));
  let snap = elector.snapshot();
  assert.equal(snap.role, "standby");
  assert.equal(snap.leader, null);
  assert.equal(snap.eligible, false);
  lock.other = OTHER_HOLDER;
  await clock.advance(2000);
  snap = elector.snapshot();
  assert.deepEqual(snap.leader, { host: "other", pid: 2, since: 500_000 });
  assert.equal(snap.changes_total, 0);
  await elector.stop();
});
