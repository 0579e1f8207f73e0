import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { GuardedSink, type SinkFailure } from "./sink.ts";

const record = (text: string): LogRecord => ({
  category: ["kickmon", "test"],
  level: "info",
  message: [text],
  rawMessage: text,
  properties: {},
  timestamp: Date.now(),
});
const formatter = (r: LogRecord) => `${r.message.join("")}\n`;

/** A child whose stdin is a real pipe that nobody reads (`sleep`). */
function undrainedPipe() {
  const child = new Deno.Command("sleep", { args: ["60"], stdin: "piped" }).spawn();
  const writer = child.stdin.getWriter();
  return {
    target: { write: async (p: Uint8Array) => (await writer.write(p), p.length) },
    async close() {
      child.kill("SIGKILL");
      await child.status;
      await writer.abort().catch(() => {});
    },
  };
}

Deno.test("GuardedSink: a pipe that is not read holds at most maxQueueBytes; flush gives up in time", async () => {
  const pipe = undrainedPipe();
  try {
    const s = new GuardedSink(pipe.target, { name: "pipe", formatter, maxQueueBytes: 64 * 1024 });
    const line = "x".repeat(1000);
    for (let round = 0; round < 50; round++) { // 5 MB offered, in bursts
      for (let i = 0; i < 100; i++) s.sink(record(line));
      await new Promise((r) => setTimeout(r, 1));
    }
    const t0 = performance.now();
    assert.equal(await s.flush(300), false, "the queue cannot drain");
    const waited = performance.now() - t0;
    assert.ok(waited >= 250 && waited < 5_000, `flush waited ${waited} ms`);
    // The pipe buffer (64 KiB on Linux) plus the bounded queue took lines; the rest were dropped.
    assert.ok(s.stats.dropped > 4_500, `dropped ${s.stats.dropped}`);
    assert.equal(s.stats.state, "ok");
  } finally {
    await pipe.close();
  }
});

Deno.test("GuardedSink: a closed pipe breaks the sink once; later lines cost nothing", async () => {
  const child = new Deno.Command("true", { stdin: "piped" }).spawn();
  await child.status; // the reader is gone
  const writer = child.stdin.getWriter();
  const failures: SinkFailure[] = [];
  const s = new GuardedSink(
    { write: async (p) => (await writer.write(p), p.length) },
    { name: "stdout", formatter, onFailure: (f) => failures.push(f) },
  );
  let unhandled = 0;
  const onUnhandled = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    unhandled++;
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  try {
    s.sink(record("first"));
    assert.equal(await s.flush(5_000), true);
    for (let i = 0; i < 100_000; i++) s.sink(record(`line ${i}`));
    assert.equal(await s.flush(1_000), true);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(failures.length, 1, "reported once");
    assert.equal(failures[0].permanent, true);
    assert.ok(failures[0].error instanceof Deno.errors.BrokenPipe, String(failures[0].error));
    assert.equal(s.stats.state, "broken");
    assert.equal(s.stats.dropped, 100_001);
    assert.equal(unhandled, 0, "no rejected promise escapes");
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
    await writer.abort().catch(() => {});
  }
});

Deno.test("GuardedSink: a full disk (/dev/full) pauses, then retries and says what was lost", async () => {
  const full = await Deno.open("/dev/full", { write: true });
  const path = await Deno.makeTempFile({ prefix: "kickmon-sink-" });
  const good = await Deno.open(path, { write: true });
  let target: Deno.FsFile = full;
  const failures: SinkFailure[] = [];
  const s = new GuardedSink({ write: (p) => target.write(p) }, {
    name: "the log file",
    formatter,
    retryAfterMs: 200,
    onFailure: (f) => failures.push(f),
  });
  try {
    s.sink(record("lost 1"));
    await s.flush(2_000);
    assert.equal(s.stats.state, "paused");
    assert.match(s.stats.lastError ?? "", /No space left on device/);
    assert.equal(failures[0]?.permanent, false);
    s.sink(record("lost 2")); // within the pause: dropped without a write
    assert.equal(failures.length, 1);
    target = good; // space is free again
    await new Promise((r) => setTimeout(r, 250));
    s.sink(record("written"));
    assert.equal(await s.flush(2_000), true);
    const text = await Deno.readTextFile(path);
    assert.equal(
      text,
      "2 log lines were dropped while writing to the log file failed: " +
        "No space left on device (os error 28)\nwritten\n",
    );
    assert.equal(s.stats.state, "ok");
  } finally {
    await s.dispose();
    full.close();
    good.close();
    await Deno.remove(path);
  }
});

Deno.test("GuardedSink: a line logged just as the pump finishes is written, not left queued", async () => {
  // A destination that completes writes within the same turn (a fast pipe or
  // file can): lines are logged at every microtask step after the first one,
  // so one of them lands between the pump's last look at the queue and its end.
  for (let gap = 0; gap < 12; gap++) {
    const got: string[] = [];
    const dec = new TextDecoder();
    const s = new GuardedSink({
      write: async (p) => {
        await null;
        got.push(...dec.decode(p).trim().split("\n"));
        return p.length;
      },
    }, { name: "fast", formatter });
    s.sink(record("first"));
    for (let k = 0; k < gap; k++) await null;
    s.sink(record("second"));
    await new Promise((r) => setTimeout(r, 20)); // no flush: it must go out on its own
    assert.deepEqual(got, ["first", "second"], `second line logged ${gap} microtasks later`);
  }
});
