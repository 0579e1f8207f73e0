import assert from "node:assert/strict";
import { pidFileText, readPidFile } from "./pid_file.ts";

Deno.test("pid file: what start writes, stop and status read back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kickmon-pid-" });
  try {
    const path = `${dir}/kickmon.pid`;
    assert.equal(pidFileText(4242, undefined), "4242\n");
    const id = "0123456789abcdef0123456789abcdef";
    assert.equal(pidFileText(4242, id), `4242\nsystemd-invocation=${id}\n`);
    await Deno.writeTextFile(path, pidFileText(4242, id));
    assert.deepEqual(await readPidFile(path), { pid: 4242, systemdInvocation: id });
    await Deno.writeTextFile(path, pidFileText(4242, undefined));
    assert.deepEqual(await readPidFile(path), { pid: 4242 });
    await Deno.writeTextFile(path, "not a pid\n");
    assert.equal(await readPidFile(path), null);
    assert.equal(await readPidFile(`${dir}/absent.pid`), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
