import assert from "node:assert/strict";
import type { Transition } from "../core/types.ts";
import { OutageSpool, type OutageSpoolHost, type SpoolStats } from "./outage_spool.ts";
import { SpoolFile } from "./spool.ts";
import { sampleTransition } from "./sample_transition.ts";

const t = (streamerId: number): Transition => sampleTransition(streamerId);

function host(queue: Transition[], closed = false) {
  const stats: SpoolStats = {
    spoolBytes: 0,
    spoolTransitions: 0,
    spoolError: null,
    spoolWriteErrorsTotal: 0,
    spoolCompacted: false,
  };
  let compactions = 0;
  const h: OutageSpoolHost = {
    queue: () => queue,
    compactToNet: () => {
      compactions++;
      stats.spoolCompacted = true;
      queue.splice(1); // stands in for the net-per-streamer collapse
    },
    isClosed: () => closed,
    stats,
  };
  return { h, stats, compactions: () => compactions };
}

Deno.test("outage spool: start writes the queue, buffered transitions are appended, stop empties the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const queue = [t(1), t(2)];
    const { h, stats } = host(queue);
    const file = new SpoolFile(`${dir}/spool.jsonl`);
    const spool = new OutageSpool(file, 1 << 20, h);
    spool.start();
    assert.ok(spool.active);
    assert.equal(stats.spoolTransitions, 2);
    queue.push(t(3));
    spool.buffer(t(3));
    spool.flush();
    assert.equal(stats.spoolTransitions, 3);
    assert.equal(stats.spoolBytes, (await Deno.stat(file.path)).size);
    assert.deepEqual((await file.read()).transitions.map((x) => x.streamerId), [1, 2, 3]);
    spool.markDirty();
    assert.ok(spool.needsRewrite);
    spool.stop();
    assert.ok(!spool.active);
    assert.equal((await Deno.stat(file.path)).size, 0);
    assert.deepEqual([stats.spoolBytes, stats.spoolTransitions], [0, 0]);
    spool.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("outage spool: over half the bound the queue is collapsed; a failed write is an error in the stats", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const queue = [t(1), t(2), t(3), t(4)];
    const { h, stats, compactions } = host(queue);
    const spool = new OutageSpool(new SpoolFile(`${dir}/spool.jsonl`), 600, h);
    spool.start(); // 4 lines of ~200 bytes: over half of 600
    assert.equal(compactions(), 1);
    assert.equal(stats.spoolTransitions, 1);
    spool.dispose();

    const failing = host([t(1)], true); // closed: no retry timer is left behind
    const broken = new OutageSpool(new SpoolFile(`${dir}/missing/spool.jsonl`), 1 << 20, failing.h);
    broken.start();
    assert.ok(broken.active);
    assert.equal(failing.stats.spoolWriteErrorsTotal, 1);
    assert.match(failing.stats.spoolError ?? "", /No such file|not found|os error 2/i);
    assert.ok(broken.needsRewrite);
    broken.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
