import assert from "node:assert/strict";
import type { Transition } from "../core/types.ts";
import { SpoolFile } from "./spool.ts";
import { sampleTransition } from "./sample_transition.ts";

const t = (streamerId: number): Transition => sampleTransition(streamerId, { receivedMono: 12.5 });

Deno.test("spool file: rewrite, append, read back without receivedMono, truncate", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const spool = new SpoolFile(`${dir}/spool.jsonl`);
    assert.deepEqual(await spool.read(), { transitions: [], bytes: 0 });
    const bytes = spool.rewrite((put) => {
      put([t(1), t(2), t(3)]);
      return put([t(1)]); // a second put replaces the first
    });
    assert.ok(spool.isOpen);
    const more = spool.append([t(2)]);
    const { transitions, bytes: total } = await spool.read();
    assert.deepEqual(transitions.map((x) => x.streamerId), [1, 2]);
    assert.equal(transitions[0].receivedMono, undefined);
    assert.equal(total, bytes + more);
    await assert.rejects(Deno.stat(`${dir}/spool.jsonl.tmp`), Deno.errors.NotFound);
    spool.truncate();
    assert.ok(!spool.isOpen);
    assert.equal((await Deno.stat(spool.path)).size, 0);
    assert.throws(() => spool.append([t(1)]), /not open/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("spool file: a torn last line is skipped; a failed rewrite leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/spool.jsonl`;
    await Deno.writeTextFile(path, JSON.stringify(t(1)) + "\n" + '{"streamerId":2,"sta');
    const spool = new SpoolFile(path);
    assert.deepEqual((await spool.read()).transitions.map((x) => x.streamerId), [1]);
    assert.throws(() =>
      spool.rewrite((put) => {
        put([t(1)]);
        throw new Error("full");
      }), /full/);
    assert.ok(!spool.isOpen);
    await assert.rejects(Deno.stat(`${path}.tmp`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
