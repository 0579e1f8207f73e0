import assert from "node:assert/strict";
import { TERM } from "./ansi.ts";
import { parseKeys } from "./keys.ts";
import { LiveView, type ViewTerminal } from "./live_view.ts";
import { RateMeter } from "./rate.ts";

const enc = new TextEncoder();

Deno.test("keys: printable keys, Ctrl-C, arrows, paging, lone escape", () => {
  assert.deepEqual(parseKeys(enc.encode("qu")), [
    { kind: "char", char: "q" },
    { kind: "char", char: "u" },
  ]);
  assert.deepEqual(parseKeys(new Uint8Array([3])), [{ kind: "ctrl-c" }]);
  assert.deepEqual(
    parseKeys(enc.encode("\x1b[A\x1b[B\x1bOA\x1b[5~\x1b[6~\x1b[H\x1b[F\x1b[1~\x1b[4~")),
    [
      { kind: "up" },
      { kind: "down" },
      { kind: "up" },
      { kind: "pageUp" },
      { kind: "pageDown" },
      { kind: "home" },
      { kind: "end" },
      { kind: "home" },
      { kind: "end" },
    ],
  );
  assert.deepEqual(parseKeys(enc.encode("\x1b")), [{ kind: "escape" }]);
  assert.deepEqual(parseKeys(enc.encode("\x1b[1;5C\r")), [{ kind: "enter" }]); // unknown dropped
  assert.deepEqual(parseKeys(enc.encode("é")), [{ kind: "char", char: "é" }]);
});

Deno.test("rate: events per second over a sliding window", () => {
  const m = new RateMeter(10_000);
  assert.equal(m.perSecond(), 0);
  m.add(0, 0);
  assert.equal(m.perSecond(), 0);
  m.add(5_000, 10);
  assert.equal(m.perSecond(), 2);
  m.add(10_000, 20);
  m.add(20_000, 20); // quiet for 10 s: the window slides past the burst
  m.add(21_000, 20);
  assert.equal(m.perSecond(), 0);
  m.add(22_000, 5); // counter reset: start over
  assert.equal(m.perSecond(), 0);
});

/** A terminal that records what is written and lets the test type. */
function fakeTerminal(columns = 80, rows = 24) {
  const written: string[] = [];
  const raw: boolean[] = [];
  let typeInto: ReadableStreamDefaultController<Uint8Array> | null = null;
  let resize: (() => void) | null = null;
  const term: ViewTerminal & { size(): { columns: number; rows: number } } = {
    write: (t) => void written.push(t),
    size: () => ({ columns, rows }),
    setRaw: (r) => void raw.push(r),
    input: new ReadableStream<Uint8Array>({ start: (c) => void (typeInto = c) }),
    onResize: (l) => {
      resize = l;
      return () => (resize = null);
    },
  };
  return {
    term,
    written,
    raw,
    type: (s: string) => typeInto!.enqueue(enc.encode(s)),
    endInput: () => typeInto!.close(),
    resize: (c: number, r: number) => {
      columns = c;
      rows = r;
      resize?.();
    },
    hasResizeListener: () => resize !== null,
  };
}

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

Deno.test("live view: takes over the terminal, handles keys, gives it back on q", async () => {
  const t = fakeTerminal();
  const view = new LiveView({
    title: "kickmon live view",
    logPath: "/tmp/kickmon-manual.log",
    refreshRateMs: 60_000,
    maxRows: 50,
    color: false,
    terminal: t.term,
  });
  view.open();
  try {
    assert.deepEqual(t.raw, [true]);
    const first = t.written[0];
    for (const s of [TERM.altScreenOn, TERM.cursorHide, TERM.wrapOff]) assert.ok(first.includes(s));
    await tick();
    assert.ok(t.written.join("").includes("loading the streamer list…"));

    t.type("u");
    await tick();
    assert.equal(view.state.sort, "username");
    t.type("u");
    await tick();
    assert.equal(view.state.reverse, true);
    t.type("t");
    await tick();
    assert.deepEqual([view.state.sort, view.state.reverse], ["updated", false]);
    t.type("h");
    await tick();
    assert.equal(view.state.help, true);
    assert.ok(t.written.at(-1)!.includes("sort by last update"));
    t.type("x"); // any key closes the help
    await tick();
    assert.equal(view.state.help, false);

    const n = t.written.length;
    t.resize(40, 12);
    await tick();
    assert.ok(t.written.length > n, "a resize redraws");
    assert.ok(t.written.at(-1)!.startsWith(TERM.clearScreen));

    let stopped = false;
    view.stopRequested.then(() => (stopped = true));
    t.type("q");
    await tick();
    assert.ok(stopped, "q requests a stop");
    assert.ok(t.written.at(-1)!.includes("stopping…"));
    assert.equal(view.failure, null);
  } finally {
    view.close();
  }
  const last = t.written.at(-1)!;
  for (const s of [TERM.altScreenOff, TERM.cursorShow, TERM.wrapOn]) assert.ok(last.includes(s));
  assert.deepEqual(t.raw, [true, false]);
  assert.equal(t.hasResizeListener(), false);
  view.close(); // idempotent
  assert.deepEqual(t.raw, [true, false]);
});

Deno.test("live view: Ctrl-C and end of input request a stop; a failing terminal fails the view", async () => {
  for (const how of ["ctrl-c", "eof"] as const) {
    const t = fakeTerminal();
    const view = new LiveView({
      title: "t",
      logPath: "/x.log",
      refreshRateMs: 60_000,
      maxRows: 5,
      color: true,
      terminal: t.term,
    });
    view.open();
    if (how === "ctrl-c") t.type("\x03");
    else t.endInput();
    await view.stopRequested;
    view.close();
    assert.deepEqual(t.raw, [true, false]);
  }

  const t = fakeTerminal();
  let writes = 0;
  const broken: ViewTerminal = {
    ...t.term,
    write: (s) => {
      if (++writes > 1) throw new Error("EIO: terminal gone");
      t.written.push(s);
    },
  };
  const view = new LiveView({
    title: "t",
    logPath: "/x.log",
    refreshRateMs: 60_000,
    maxRows: 5,
    color: true,
    terminal: broken,
  });
  view.open();
  const err = await view.failed;
  await view.stopRequested;
  assert.match(err.message, /drawing the live view failed/);
  assert.match(String((err.cause as Error).message), /EIO/);
  view.close(); // restoring on a broken terminal never throws
  assert.deepEqual(t.raw, [true, false]);
});
