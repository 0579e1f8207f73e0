import assert from "node:assert/strict";
import type { StreamerRecord } from "../core/types.ts";
import { ListSnapshot } from "./list_snapshot.ts";

Deno.test("list snapshot: saves only a loaded list, reads it back, a scheduled save flushes on stop", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let records: StreamerRecord[] | null = null;
    const snapshot = new ListSnapshot(`${dir}/streamers.json`, () => records);
    assert.equal(await snapshot.load(), null);
    await snapshot.save();
    snapshot.saveSync();
    assert.equal(await snapshot.load(), null); // nothing loaded yet: nothing saved
    records = [{ id: 1 } as unknown as StreamerRecord];
    snapshot.saveSync();
    assert.deepEqual(await snapshot.load(), records);
    records = [{ id: 2 } as unknown as StreamerRecord];
    snapshot.schedule();
    await snapshot.flush(); // no 1 s wait, and no timer left behind
    assert.deepEqual(await snapshot.load(), records);
    await Deno.writeTextFile(snapshot.path, "{torn");
    assert.equal(await snapshot.load(), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
