import assert from "node:assert/strict";
import {
  colorEnabled,
  renderSegments,
  sanitize,
  textWidth,
  truncate,
  truncateStart,
  visibleWidth,
} from "./ansi.ts";
import {
  formatAgo,
  formatClock,
  formatLastChange,
  HELP_LINES,
  type RenderOptions,
  renderScreen,
  sortRows,
  type ViewModel,
  type ViewRow,
  type ViewState,
} from "./render.ts";

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const STATE: ViewState = { sort: "status", reverse: false, offset: 0, help: false };

function rows(n: number): ViewRow[] {
  const statuses = ["online", "offline", "unknown"] as const;
  return Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    username: `streamer_${String(i + 1).padStart(2, "0")}`,
    status: statuses[i % 3],
    lastChangeAt: i % 5 === 4 ? null : NOW - (i + 1) * 61_000,
  }));
}

function model(over: Partial<ViewModel> = {}): ViewModel {
  const r = over.rows ?? rows(3);
  return {
    now: NOW,
    phase: "running",
    title: "kickmon live view",
    rows: r,
    counts: {
      online: r.filter((x) => x.status === "online").length,
      offline: r.filter((x) => x.status === "offline").length,
      unknown: r.filter((x) => x.status === "unknown").length,
      inactive: 0,
    },
    shards: [{ index: 0, state: "connected", channels: r.length, subscribed: r.length }],
    eventsPerSec: 0.4,
    database: { up: true },
    token: "valid",
    queueDepth: 0,
    recent: [{
      at: NOW - 5_000,
      streamerId: 1,
      username: "streamer_01",
      from: "offline",
      to: "online",
      source: "pusher",
    }],
    logPath: "/var/lib/kickmon/kickmon-manual.log",
    ...over,
  };
}

function opts(over: Partial<RenderOptions> = {}): RenderOptions {
  return { width: 100, height: 30, color: false, maxRows: 50, ...over };
}

/** The table rows' usernames, in screen order. */
function names(lines: string[]): string[] {
  return lines.flatMap((l) => {
    const m = /^([A-Za-z0-9_#]+)\s+(online|offline|unknown)\s/.exec(l);
    return m ? [m[1]] : [];
  });
}

Deno.test("render: the header shows time, counts, connections, events/s, database and token", () => {
  const { lines } = renderScreen(model(), STATE, opts());
  const text = lines.join("\n");
  assert.match(lines[0], /^kickmon live view {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
  assert.match(text, /Streamers 3: 1 online · 1 offline · 1 unknown/);
  assert.match(text, /Pusher: #0 connected 3 ch/);
  assert.match(text, /Events 0\.4\/s · Queue 0 · Token valid · Database up/);
  assert.match(text, /USERNAME\s+STATUS\s+LAST CHANGE\s+AGO/);
  assert.match(text, /streamer_01\s+online\s+\d\d-\d\d \d\d:\d\d:\d\d\s+1m 1s ago/);
  assert.match(text, /Recent changes/);
  assert.match(text, /streamer_01\s+offline → online\s+pusher/);
  assert.match(
    lines.at(-2)!,
    /q quit {2}r refresh {2}s\/u\/t sort {2}c clear {2}h help · sort: status/,
  );
  assert.equal(lines.at(-1), "logs: /var/lib/kickmon/kickmon-manual.log");
  assert.equal(lines.length, 30);
});

Deno.test("render: no line is ever wider than the terminal, at any size", () => {
  const long = rows(40).map((r, i) => ({
    ...r,
    username: i % 4 === 0
      ? "a_very_long_kick_username_that_goes_on_and_on_forever"
      : i % 4 === 1
      ? "日本語のユーザー名前です"
      : r.username,
  }));
  const m = model({
    rows: long,
    shards: Array.from({ length: 12 }, (_, i) => ({
      index: i,
      state: i % 2 ? "backoff" : "connected",
      channels: 250,
      subscribed: 200,
    })),
    database: { up: false, error: "connect ECONNREFUSED 127.0.0.1:5432 (a long error message)" },
    token: "failing",
    logPath: "/a/very/long/state/directory/path/that/does/not/fit/kickmon-manual.log",
  });
  for (const color of [false, true]) {
    for (const help of [false, true]) {
      for (let width = 1; width <= 130; width += 3) {
        for (const height of [1, 3, 4, 6, 10, 17, 24, 30, 60]) {
          const { lines } = renderScreen(m, { ...STATE, help }, opts({ width, height, color }));
          assert.ok(lines.length <= height, `${lines.length} lines for height ${height}`);
          for (const l of lines) {
            assert.ok(
              visibleWidth(l) <= width,
              `line wider than ${width} (color ${color}, help ${help}): ${JSON.stringify(l)}`,
            );
          }
        }
      }
    }
  }
});

Deno.test("render: at 40 columns the username, status and age stay; cut text ends in …", () => {
  const m = model({
    rows: [{
      id: 1,
      username: "a_very_long_kick_username_indeed",
      status: "online",
      lastChangeAt: NOW - 133_000,
    }],
  });
  const { lines } = renderScreen(m, STATE, opts({ width: 40, height: 20 }));
  const row = lines.find((l) => l.startsWith("a_very"))!;
  assert.ok(row, lines.join("\n"));
  assert.match(row, /^a_very_long_kick\S*… {2}online {3}2m 13s ago$/);
  assert.ok(!lines.some((l) => l.includes("LAST CHANGE")), "the last-change column is dropped");
  assert.ok(lines.every((l) => textWidth(l) <= 40));
  const logs = lines.at(-1)!;
  assert.ok(logs.startsWith("logs: …") && logs.endsWith("kickmon-manual.log"), logs);
});

Deno.test("render: colour only when enabled; NO_COLOR output has no escape at all", () => {
  const plain = renderScreen(model(), STATE, opts({ color: false })).lines.join("\n");
  assert.ok(!plain.includes("\x1b"), "no escape without colour");
  const help = renderScreen(model(), { ...STATE, help: true }, opts({ color: false }));
  assert.ok(!help.lines.join("").includes("\x1b"));
  const colored = renderScreen(model(), STATE, opts({ color: true })).lines;
  const row = (s: string) => colored.find((l) => l.startsWith(s) && l.includes("ago"))!;
  assert.ok(row("streamer_01").includes("\x1b[32monline"), "online is green");
  assert.ok(row("streamer_02").includes("\x1b[31moffline"), "offline is red");
  assert.ok(row("streamer_03").includes("\x1b[33munknown"), "unknown is yellow");
  assert.equal(colorEnabled({ NO_COLOR: "1" }), false);
  assert.equal(colorEnabled({ NO_COLOR: "" }), true); // no-color.org: empty means unset
  assert.equal(colorEnabled({}), true);
});

Deno.test("render: sort orders (status, username, last update) and reverse", () => {
  const r: ViewRow[] = [
    { id: 1, username: "Zed", status: "offline", lastChangeAt: NOW - 1000 },
    { id: 2, username: "amy", status: "online", lastChangeAt: NOW - 9000 },
    { id: 3, username: "bob", status: "unknown", lastChangeAt: null },
    { id: 4, username: "cat", status: "online", lastChangeAt: NOW - 5000 },
    { id: 5, username: null, status: "offline", lastChangeAt: NOW - 2000 },
  ];
  const order = (sort: "status" | "username" | "updated", reverse = false) =>
    sortRows(r, sort, reverse).map((x) => x.id);
  assert.deepEqual(order("status"), [2, 4, 3, 1, 5]); // online, unknown, offline; then by name
  assert.deepEqual(order("username"), [2, 3, 4, 1, 5]); // case-insensitive, nameless last
  assert.deepEqual(order("updated"), [1, 5, 4, 2, 3]); // newest first, never last
  assert.deepEqual(order("updated", true), [3, 2, 4, 5, 1]);

  const screen = (sort: "status" | "username" | "updated") =>
    names(renderScreen(model({ rows: r }), { ...STATE, sort }, opts()).lines);
  assert.deepEqual(screen("username"), ["amy", "bob", "cat", "Zed", "#5"]);
  assert.deepEqual(screen("status"), ["amy", "cat", "bob", "Zed", "#5"]);
  assert.deepEqual(screen("updated"), ["Zed", "#5", "cat", "amy", "bob"]);
  const footer = renderScreen(
    model({ rows: r }),
    { ...STATE, sort: "updated", reverse: true },
    opts(),
  ).lines.at(-2)!;
  assert.match(footer, /sort: last update \(reversed\)/);
  const nameless = renderScreen(model({ rows: r }), STATE, opts()).lines.join("\n");
  assert.match(nameless, /#5\s+offline/);
});

Deno.test("render: at most MANUAL_MODE_MAX_STREAMERS rows, then '… N more hidden'", () => {
  const m = model({ rows: rows(20) });
  const s = renderScreen(m, { ...STATE, sort: "username" }, opts({ maxRows: 5 }));
  assert.deepEqual(names(s.lines), [
    "streamer_01",
    "streamer_02",
    "streamer_03",
    "streamer_04",
    "streamer_05",
  ]);
  assert.ok(
    s.lines.some((l) => l.startsWith("… 15 more hidden · rows 1–5 of 20")),
    s.lines.join("\n"),
  );
  assert.equal(s.maxOffset, 15);

  // Scrolled: the window moves, the count stays.
  const scrolled = renderScreen(m, { ...STATE, sort: "username", offset: 7 }, opts({ maxRows: 5 }));
  assert.deepEqual(names(scrolled.lines)[0], "streamer_08");
  assert.ok(scrolled.lines.some((l) => l.startsWith("… 15 more hidden · rows 8–12 of 20")));
  // An offset past the end is clamped.
  const clamped = renderScreen(m, { ...STATE, sort: "username", offset: 99 }, opts({ maxRows: 5 }));
  assert.equal(clamped.offset, 15);
  assert.deepEqual(names(clamped.lines).at(-1), "streamer_20");

  // The terminal's height limits too.
  const short = renderScreen(m, STATE, opts({ height: 14, maxRows: 50 }));
  assert.equal(short.lines.length, 14);
  const shown = names(short.lines).length;
  assert.ok(shown > 0 && shown < 20);
  assert.ok(short.lines.some((l) => l.startsWith(`… ${20 - shown} more hidden`)));

  // Everything fits: no "hidden" line.
  const all = renderScreen(model({ rows: rows(4) }), STATE, opts());
  assert.ok(!all.lines.some((l) => l.includes("more hidden")));
});

Deno.test("render: help overlay, starting and empty states, cleared recent changes", () => {
  const help = renderScreen(model(), { ...STATE, help: true }, opts()).lines.join("\n");
  for (const h of HELP_LINES.filter((l) => l)) assert.ok(help.includes(h), `help shows ${h}`);
  const starting = renderScreen(model({ rows: [], phase: "starting" }), STATE, opts()).lines;
  assert.ok(starting.some((l) => l.includes("loading the streamer list…")));
  assert.ok(starting[0].includes("starting…"));
  const empty = renderScreen(model({ rows: [] }), STATE, opts()).lines.join("\n");
  assert.match(empty, /no active streamers/);
  const cleared = renderScreen(model({ recent: [], recentCleared: true }), STATE, opts()).lines;
  assert.ok(cleared.includes("(cleared)"));
  const stopping = renderScreen(model({ phase: "stopping" }), STATE, opts()).lines[0];
  assert.match(stopping, /stopping…/);
});

Deno.test("render: usernames cannot inject escape sequences", () => {
  const m = model({
    rows: [{ id: 1, username: "evil\x1b[2J\x1b]0;title\x07", status: "online", lastChangeAt: NOW }],
  });
  const text = renderScreen(m, STATE, opts({ color: false })).lines.join("\n");
  assert.ok(!text.includes("\x1b") && !text.includes("\x07"));
  assert.match(text, /evil\?\[2J\?\]0;title\?/);
  assert.equal(sanitize("a\u202eb"), "a?b");
});

Deno.test("format: ages, clock and last-change cells", () => {
  assert.equal(formatAgo(null, NOW), "never");
  assert.equal(formatAgo(NOW - 400, NOW), "just now");
  assert.equal(formatAgo(NOW - 13_000, NOW), "13s ago");
  assert.equal(formatAgo(NOW - 133_000, NOW), "2m 13s ago");
  assert.equal(formatAgo(NOW - (3 * 3600 + 5 * 60) * 1000, NOW), "3h 05m ago");
  assert.equal(formatAgo(NOW - (4 * 86400 + 2 * 3600) * 1000, NOW), "4d 2h ago");
  assert.equal(formatAgo(NOW + 5_000, NOW), "just now"); // clock skew
  assert.match(formatClock(NOW), /^\d\d:\d\d:\d\d$/);
  assert.equal(formatLastChange(null), "-");
  assert.match(formatLastChange(NOW), /^\d\d-\d\d \d\d:\d\d:\d\d$/);
});

Deno.test("ansi: widths, truncation and segments", () => {
  assert.equal(textWidth("abc"), 3);
  assert.equal(textWidth("日本"), 4);
  assert.equal(textWidth("e\u0301"), 1); // combining accent
  assert.equal(textWidth("👍"), 2);
  assert.equal(truncate("bossmanjack", 6), "bossm…");
  assert.equal(truncate("bossmanjack", 11), "bossmanjack");
  assert.equal(truncate("日本語", 4), "日…");
  assert.equal(truncate("abc", 0), "");
  assert.equal(truncateStart("/var/lib/kickmon/kickmon-manual.log", 20), "…/kickmon-manual.log");
  const segs = [{ text: "status ", style: undefined }, { text: "online", style: "green" as const }];
  assert.equal(renderSegments(segs, 20, false), "status online");
  assert.equal(renderSegments(segs, 10, false), "status on…");
  assert.equal(renderSegments(segs, 7, false), "status…");
  assert.equal(renderSegments(segs, 10, true), "status \x1b[32mon…\x1b[0m");
  assert.equal(visibleWidth(renderSegments(segs, 10, true)), 10);
  assert.equal(renderSegments(segs, 13, false), "status online");
});

Deno.test("render: the title line shows the role, and who leads when another instance does", () => {
  const line = (role: ViewModel["role"]) => renderScreen(model({ role }), STATE, opts()).lines[0];
  assert.match(line({ role: "leader", leader: null }), /^kickmon live view {2}leader {2}\d{4}-/);
  assert.match(
    line({ role: "standby", leader: { host: "kick-02", pid: 811 } }),
    /^kickmon live view {2}standby \(leader kick-02:811\) {2}\d{4}-/,
  );
  assert.match(line({ role: "standby", leader: null }), /standby \(no leader\)/);
  assert.match(line({ role: "unknown", leader: null }), /role unknown/);
  assert.doesNotMatch(line(undefined), /leader|standby|role/);
});
