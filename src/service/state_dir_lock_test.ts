import assert from "node:assert/strict";
import { lockStateDirectory, STATE_DIR_LOCK_FILE, StateDirLockedError } from "./state_dir_lock.ts";

const MODULE = new URL("./state_dir_lock.ts", import.meta.url).href;

/** A real second deno process that tries the lock; `hold` keeps it until killed. */
function otherProcess(dir: string, hold = false): Deno.ChildProcess {
  const code = `
    import { lockStateDirectory, StateDirLockedError } from ${JSON.stringify(MODULE)};
    try {
      lockStateDirectory(${JSON.stringify(dir)});
      console.log("locked");
      ${hold ? "await new Promise(() => setInterval(() => {}, 1000));" : ""}
    } catch (e) {
      if (e instanceof StateDirLockedError) { console.error(e.message); Deno.exit(2); }
      throw e;
    }`;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
  return text.split("\n")[0];
}

Deno.test("state dir lock: a second process is refused, naming the directory; the first is unharmed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kickmon-statelock-" });
  try {
    const lock = lockStateDirectory(dir);
    assert.equal(lock.path, `${dir}/${STATE_DIR_LOCK_FILE}`);
    assert.equal(Deno.readTextFileSync(lock.path), `${Deno.pid}\n`);

    const second = await otherProcess(dir).output();
    const stderr = new TextDecoder().decode(second.stderr);
    assert.equal(second.code, 2, stderr);
    assert.match(stderr, new RegExp(`state directory ${dir} is already in use`));
    assert.match(stderr, new RegExp(`\\(pid ${Deno.pid}\\)`));

    // The first holder still holds it, and its PID is still in the file.
    assert.equal(Deno.readTextFileSync(lock.path), `${Deno.pid}\n`);
    assert.throws(() => lockStateDirectory(dir), StateDirLockedError);

    lock.release();
    lock.release(); // idempotent
    const third = await otherProcess(dir).output();
    assert.equal(third.code, 0, new TextDecoder().decode(third.stderr));
    assert.equal(new TextDecoder().decode(third.stdout).trim(), "locked");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("state dir lock: a holder killed with SIGKILL leaves no stale lock", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kickmon-statelock-" });
  try {
    const holder = otherProcess(dir, true);
    assert.equal(await firstLine(holder.stdout), "locked");
    let err: unknown;
    try {
      lockStateDirectory(dir);
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof StateDirLockedError, String(err));
    assert.equal(err.directory, dir);
    assert.equal(err.holderPid, holder.pid);
    holder.kill("SIGKILL");
    await holder.status;
    await holder.stderr.cancel();
    using lock = lockStateDirectory(dir);
    assert.equal(Deno.readTextFileSync(lock.path), `${Deno.pid}\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("state dir lock: a missing directory is NotFound, not 'in use'", () => {
  assert.throws(
    () => lockStateDirectory("/nonexistent/kickmon-state-dir"),
    Deno.errors.NotFound,
  );
});
