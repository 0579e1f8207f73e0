/**
 * The live view's screen, as a pure function of what the monitor reports
 * ({@linkcode ViewModel}), what the person chose ({@linkcode ViewState}) and
 * the terminal's size ({@linkcode RenderOptions}).
 *
 * Layout, top to bottom (rows that do not fit are dropped from the middle
 * out: recent changes first, then streamer rows):
 *
 * ```text
 * kickmon live view  2025-06-01 12:34:56                       ← title, local time
 * Streamers 12: 3 online · 8 offline · 1 unknown               ← counts by status
 * Pusher: #0 connected 12/12 ch                                ← each connection
 * Events 0.4/s · Queue 0 · Token valid · Database up
 * ────────────────────────────────────────
 * USERNAME        STATUS   LAST CHANGE     AGO                  ← table
 * alice           online   06-01 12:30:01  4m 55s ago
 * … 3 more hidden · rows 1–9 of 12 · ↑↓ scroll
 * ── Recent changes ──                                          ← transitions seen
 * 12:30:01  alice  offline → online  pusher
 * q quit  r refresh  s/u/t sort  c clear  h help · sort: status
 * logs: ./state/kickmon-manual.log
 * ```
 *
 * Every returned line is at most `width` columns wide (text that does not
 * fit is cut with `…`), and with `color: false` no line contains an escape
 * sequence.
 *
 * Over the ~500-line mark and kept whole on purpose: it is one concept, the
 * pure screen renderer (state in, lines out), and its parts share one layout
 * (column widths, truncation, colour) that a split would have to pass around.
 *
 * @module
 */
import type { StreamerStatus } from "../core/types.ts";
import {
  ELLIPSIS,
  fit,
  renderSegments,
  sanitize,
  type Segment,
  type StyleName,
  textWidth,
  truncate,
  truncateStart,
} from "./ansi.ts";

/** How the table is ordered. */
export type SortKey = "status" | "username" | "updated";

/** One streamer as the table shows it. */
export interface ViewRow {
  /** `streamers.id`. */
  readonly id: number;
  /** Kick slug; null when only the user id is known (shown as `#<id>`). */
  readonly username: string | null;
  /** The status kickmon believes (may be ahead of the database by one write). */
  readonly status: StreamerStatus;
  /** When the current status was observed, ms since the Unix epoch; null if never. */
  readonly lastChangeAt: number | null;
}

/** One Pusher connection (shard). */
export interface ShardView {
  /** Shard number, as in kickmon's logs. */
  readonly index: number;
  /** `connecting`, `connected`, `backoff`, `refused` or `disconnected`. */
  readonly state: string;
  /** Channels assigned to the connection. */
  readonly channels: number;
  /** Channels whose subscription succeeded. */
  readonly subscribed: number;
}

/** One committed transition in the recent-changes area. */
export interface RecentChange {
  /** When it was committed (ms since epoch). */
  readonly at: number;
  /** The streamer's username (null: shown as `#<streamerId>`). */
  readonly username: string | null;
  /** `streamers.id`. */
  readonly streamerId: number;
  /** Status before (`online`, `offline`, `unknown`). */
  readonly from: string;
  /** Status after. */
  readonly to: StreamerStatus;
  /** `pusher`, `reconcile` or `webhook`. */
  readonly source: string;
}

/** Everything the monitor reports that the screen shows. */
export interface ViewModel {
  /** Wall-clock now, ms since the Unix epoch (shown in local time; "ago" is relative to it). */
  readonly now: number;
  /** `starting` until the streamer list is loaded; `stopping` after `q`. */
  readonly phase: "starting" | "running" | "stopping";
  /** Title shown first on the top line. */
  readonly title: string;
  /** Active streamers (any order: the view sorts). */
  readonly rows: readonly ViewRow[];
  /** Active streamers by believed status, plus inactive rows. */
  readonly counts: {
    readonly online: number;
    readonly offline: number;
    readonly unknown: number;
    readonly inactive: number;
  };
  /** Every Pusher connection. */
  readonly shards: readonly ShardView[];
  /** Events received per second over a sliding window. */
  readonly eventsPerSec: number;
  /** Whether the database is reachable, and the last error when it is not. */
  readonly database: { readonly up: boolean; readonly error?: string };
  /** The OAuth token's state (`valid`, `refreshing`, `failing`, `none`, `not used`, …). */
  readonly token: string;
  /**
   * This instance's role among several (issue 14): `leader`, `standby` or
   * `unknown`, and the leader's host and pid when another one leads; absent
   * before the monitor runs.
   */
  readonly role?: {
    readonly role: string;
    readonly leader: { readonly host: string; readonly pid: number } | null;
  };
  /** Transitions waiting to be committed. */
  readonly queueDepth: number;
  /** Newest first. */
  readonly recent: readonly RecentChange[];
  /** True after `c` until the next transition (shows "cleared"). */
  readonly recentCleared?: boolean;
  /** Where the log lines go (shown in the footer). */
  readonly logPath: string;
  /** Why log lines are not being written (a full disk), shown after the path; absent when fine. */
  readonly logProblem?: string;
}

/** The footer's log line: the path, and why nothing reaches it when writes fail. */
function logFooter(m: ViewModel, width: number): Segment[] {
  if (!m.logProblem) {
    return [{ text: "logs: " + truncateStart(m.logPath, width - 6), style: "dim" }];
  }
  const problem = truncate(` (not written: ${m.logProblem})`, Math.max(0, width - 16));
  return [
    { text: "logs: " + truncateStart(m.logPath, width - 6 - textWidth(problem)), style: "dim" },
    { text: problem, style: "red" },
  ];
}

/** What the person chose with the keyboard. */
export interface ViewState {
  /** The table's order. */
  readonly sort: SortKey;
  /** Reverse the chosen order (pressing the same sort key again). */
  readonly reverse: boolean;
  /** Index of the first row shown (scrolling); clamped by the renderer. */
  readonly offset: number;
  /** Whether the help overlay is shown. */
  readonly help: boolean;
}

/** Terminal geometry and limits. */
export interface RenderOptions {
  /** Terminal columns. */
  readonly width: number;
  /** Terminal rows. */
  readonly height: number;
  /** Emit colour (SGR) sequences; false under `NO_COLOR`. */
  readonly color: boolean;
  /** `MANUAL_MODE_MAX_STREAMERS`: most table rows shown at once. */
  readonly maxRows: number;
}

/** What {@linkcode renderScreen} produced. */
export interface Screen {
  /** At most `height` lines, each at most `width` columns (escape sequences excluded). */
  readonly lines: string[];
  /** Table rows that fit on one page (for Page Up/Down). */
  readonly pageRows: number;
  /** The offset actually used (the requested one, clamped). */
  readonly offset: number;
  /** Largest useful offset. */
  readonly maxOffset: number;
}

/** The text of the help overlay (also what the test looks for). */
export const HELP_LINES: readonly string[] = [
  "kickmon live view: keys",
  "",
  "q, Ctrl-C     quit (clean shutdown)",
  "r             refresh now",
  "s             sort by status",
  "u             sort by username",
  "t             sort by last update",
  "              (same key again: reverse)",
  "↑ ↓ PgUp PgDn scroll the table",
  "Home End      first / last rows",
  "c             clear recent changes",
  "h, ?          show / hide this help",
  "",
  "any key closes this help",
];

const STATUS_STYLE: Readonly<Record<StreamerStatus, StyleName>> = {
  online: "green",
  offline: "red",
  unknown: "yellow",
};
const STATUS_RANK: Readonly<Record<StreamerStatus, number>> = { online: 0, unknown: 1, offline: 2 };
const SORT_LABEL: Readonly<Record<SortKey, string>> = {
  status: "status",
  username: "username",
  updated: "last update",
};

/**
 * Displayed name of a row: its sanitised username, or `#<id>` without one.
 *
 * @example
 * ```ts
 * displayName({ id: 7, username: null }); // "#7"
 * ```
 */
export function displayName(r: { username: string | null; id: number }): string {
  return r.username ? sanitize(r.username) : `#${r.id}`;
}

/**
 * Orders rows for the table.
 *
 * - `status`: online, then unknown, then offline; ties by username.
 * - `username`: case-insensitive A→Z (nameless rows last); ties by id.
 * - `updated`: most recent change first, never-changed rows last; ties by username.
 *
 * `reverse` flips the whole order. Sort keys are computed once per row.
 *
 * @returns a new array (the input is not modified).
 * @example
 * ```ts
 * sortRows(rows, "updated", false)[0]; // the streamer that changed last
 * ```
 */
export function sortRows(rows: readonly ViewRow[], sort: SortKey, reverse: boolean): ViewRow[] {
  const keyed = rows.map((r) => ({
    r,
    name: r.username ? r.username.toLowerCase() : null,
    rank: STATUS_RANK[r.status],
    at: r.lastChangeAt ?? -Infinity,
  }));
  type K = typeof keyed[number];
  const byName = (a: K, b: K): number => {
    if (a.name !== b.name) {
      if (a.name === null) return 1; // nameless last
      if (b.name === null) return -1;
      return a.name < b.name ? -1 : 1;
    }
    return a.r.id - b.r.id;
  };
  const cmp = sort === "status"
    ? (a: K, b: K) => a.rank - b.rank || byName(a, b)
    : sort === "updated"
    ? (a: K, b: K) => (a.at === b.at ? byName(a, b) : b.at > a.at ? 1 : -1)
    : byName;
  const out = keyed.sort(cmp).map((k) => k.r);
  return reverse ? out.reverse() : out;
}

/**
 * How long ago, compactly: `just now`, `13s ago`, `2m 13s ago`,
 * `3h 05m ago`, `4d 2h ago`; `never` for null.
 *
 * @param at the moment, ms since epoch (or null).
 * @param now now, ms since epoch.
 * @example
 * ```ts
 * formatAgo(0, 133_000); // "2m 13s ago"
 * ```
 */
export function formatAgo(at: number | null, now: number): string {
  if (at === null) return "never";
  const s = Math.floor(Math.max(0, now - at) / 1000);
  if (s < 1) return "just now";
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s ago`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, "0")}m ago`;
  return `${Math.floor(h / 24)}d ${h % 24}h ago`;
}

const p2 = (n: number) => String(n).padStart(2, "0");

/**
 * Local clock time `HH:MM:SS`.
 *
 * @example
 * ```ts
 * formatClock(Date.now()); // e.g. "12:34:56"
 * ```
 */
export function formatClock(at: number): string {
  const d = new Date(at);
  return `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

/**
 * Local date and time `YYYY-MM-DD HH:MM:SS` (the header's clock).
 *
 * @example
 * ```ts
 * formatDateTime(Date.now()); // e.g. "2025-06-01 12:34:56"
 * ```
 */
export function formatDateTime(at: number): string {
  const d = new Date(at);
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${formatClock(at)}`;
}

/**
 * The table's "last change" cell: `MM-DD HH:MM:SS` local time, `-` if never.
 *
 * @example
 * ```ts
 * formatLastChange(null); // "-"
 * ```
 */
export function formatLastChange(at: number | null): string {
  if (at === null) return "-";
  const d = new Date(at);
  return `${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${formatClock(at)}`;
}

/**
 * Events per second for the header: one decimal below 100, none above.
 *
 * @example
 * ```ts
 * formatRate(0.42); // "0.4/s"
 * ```
 */
export function formatRate(perSec: number): string {
  return perSec >= 100 ? `${Math.round(perSec)}/s` : `${perSec.toFixed(1)}/s`;
}

const SEP = " · ";

/** `  leader`, `  standby (leader kick-02:811)`, `  role unknown` on the title line. */
function roleSegments(m: ViewModel): Segment[] {
  const r = m.role;
  if (!r) return [];
  if (r.role === "leader") return [{ text: "  leader", style: "green" }];
  if (r.role === "standby") {
    const who = r.leader ? `leader ${r.leader.host}:${r.leader.pid}` : "no leader";
    return [{ text: `  standby (${who})`, style: r.leader ? "dim" : "yellow" }];
  }
  return [{ text: `  role ${r.role}`, style: "yellow" }];
}

function headerLines(m: ViewModel): Segment[][] {
  const lines: Segment[][] = [];
  lines.push([
    { text: m.title, style: "bold" },
    ...(m.phase === "stopping"
      ? [{ text: "  stopping…", style: "yellow" as const }]
      : m.phase === "starting"
      ? [{ text: "  starting…", style: "yellow" as const }]
      : []),
    ...roleSegments(m),
    { text: "  " + formatDateTime(m.now) },
  ]);
  const c = m.counts;
  const active = c.online + c.offline + c.unknown;
  lines.push([
    { text: `Streamers ${active}: ` },
    { text: `${c.online} online`, style: "green" },
    { text: SEP },
    { text: `${c.offline} offline`, style: "red" },
    { text: SEP },
    { text: `${c.unknown} unknown`, style: "yellow" },
    ...(c.inactive ? [{ text: `${SEP}${c.inactive} inactive`, style: "dim" as const }] : []),
  ]);
  const pusher: Segment[] = [{ text: "Pusher:" }];
  if (m.shards.length === 0) pusher.push({ text: " no connection", style: "dim" });
  const shown = m.shards.length > 8 ? m.shards.slice(0, 8) : m.shards;
  for (const s of shown) {
    pusher.push({ text: ` #${s.index} ` });
    pusher.push({
      text: s.state,
      style: s.state === "connected" ? "green" : s.state === "connecting" ? "yellow" : "red",
    });
    pusher.push({
      text: ` ${s.subscribed === s.channels ? s.channels : `${s.subscribed}/${s.channels}`} ch`,
    });
  }
  if (shown.length < m.shards.length) {
    const up = m.shards.filter((s) => s.state === "connected").length;
    pusher.push({ text: ` … ${m.shards.length} connections, ${up} connected` });
  }
  lines.push(pusher);
  const tokenStyle: StyleName | undefined = m.token === "valid"
    ? "green"
    : m.token === "not used"
    ? "dim"
    : m.token === "refreshing" || m.token === "none"
    ? "yellow"
    : "red";
  // The database comes last: its error message may be long and is the part that gets cut.
  lines.push([
    { text: `Events ${formatRate(m.eventsPerSec)}` },
    { text: `${SEP}Queue ${m.queueDepth}` },
    { text: `${SEP}Token ` },
    { text: m.token, style: tokenStyle },
    { text: `${SEP}Database ` },
    m.database.up
      ? { text: "up", style: "green" }
      : { text: `DOWN${m.database.error ? `: ${m.database.error}` : ""}`, style: "boldRed" },
  ]);
  return lines;
}

interface Column {
  readonly title: string;
  readonly width: number;
  readonly align: "left" | "right";
  readonly cell: (r: ViewRow, now: number) => Segment;
}

/** Chooses the table's columns for a width; the username column takes what is left. */
function columns(width: number, rows: readonly ViewRow[]): Column[] {
  const GAP = 2;
  const status: Column = {
    title: "STATUS",
    width: 7,
    align: "left",
    cell: (r) => ({ text: r.status, style: STATUS_STYLE[r.status] }),
  };
  const ago: Column = {
    title: "AGO",
    width: 11,
    align: "left",
    cell: (r, now) => ({ text: formatAgo(r.lastChangeAt, now) }),
  };
  const last: Column = {
    title: "LAST CHANGE",
    width: 14,
    align: "left",
    cell: (r) => ({ text: formatLastChange(r.lastChangeAt), style: "dim" }),
  };
  const rest = [status];
  let used = status.width + GAP;
  if (width - (used + ago.width + GAP) >= 10) {
    rest.push(ago);
    used += ago.width + GAP;
  }
  if (width - (used + last.width + GAP) >= 12) {
    rest.splice(1, 0, last);
    used += last.width + GAP;
  }
  const longest = Math.max(8, ...rows.map((r) => textWidth(displayName(r))));
  const nameWidth = Math.max(1, Math.min(width - used, longest, 40));
  return [
    {
      title: "USERNAME",
      width: nameWidth,
      align: "left",
      cell: (r) => ({ text: displayName(r) }),
    },
    ...rest,
  ];
}

function tableLine(cols: readonly Column[], cells: readonly Segment[]): Segment[] {
  const out: Segment[] = [];
  cols.forEach((c, i) => {
    const last = i === cols.length - 1;
    // The last cell is not padded (no trailing blanks); the others are fitted to their column.
    const text = last ? cells[i].text : fit(cells[i].text, c.width, c.align) + "  ";
    out.push({ text, style: cells[i].style });
  });
  return out;
}

function helpBox(width: number, height: number): Segment[][] {
  const inner = Math.max(...HELP_LINES.map(textWidth));
  const boxWidth = Math.min(width, inner + 4);
  const pad = " ".repeat(Math.max(0, Math.floor((width - boxWidth) / 2)));
  const lines: Segment[][] = [];
  const border = "─".repeat(Math.max(0, boxWidth - 2));
  lines.push([{ text: pad }, { text: `┌${border}┐`, style: "cyan" }]);
  for (const [i, h] of HELP_LINES.entries()) {
    lines.push([
      { text: pad },
      { text: "│ ", style: "cyan" },
      { text: fit(h, Math.max(0, boxWidth - 4)), style: i === 0 ? "bold" : undefined },
      { text: " │", style: "cyan" },
    ]);
  }
  lines.push([{ text: pad }, { text: `└${border}┘`, style: "cyan" }]);
  return lines.slice(0, Math.max(0, height));
}

/**
 * Renders the whole screen.
 *
 * @returns the lines (at most `height`, each at most `width` columns), and
 *   the paging facts the key handler needs.
 * @example
 * ```ts
 * const { lines } = renderScreen(model, { sort: "status", reverse: false, offset: 0, help: false },
 *   { width: 80, height: 24, color: false, maxRows: 50 });
 * console.log(lines.join("\n"));
 * ```
 */
export function renderScreen(m: ViewModel, state: ViewState, o: RenderOptions): Screen {
  const width = Math.max(1, Math.floor(o.width));
  const height = Math.max(1, Math.floor(o.height));
  const out = (segs: Segment[][]) => segs.map((s) => renderSegments(s, width, o.color));
  if (width < 16 || height < 4) {
    return {
      lines: out([[{ text: "kickmon: terminal too small" }]]).slice(0, height),
      pageRows: 0,
      offset: 0,
      maxOffset: 0,
    };
  }

  const top = headerLines(m);
  top.push([{ text: "─".repeat(width), style: "dim" }]);
  const footer: Segment[][] = [
    [
      { text: "q", style: "bold" },
      { text: " quit  " },
      { text: "r", style: "bold" },
      { text: " refresh  " },
      { text: "s/u/t", style: "bold" },
      { text: " sort  " },
      { text: "c", style: "bold" },
      { text: " clear  " },
      { text: "h", style: "bold" },
      { text: " help" },
      { text: `${SEP}sort: ${SORT_LABEL[state.sort]}${state.reverse ? " (reversed)" : ""}` },
    ],
    logFooter(m, width),
  ];

  // Room between header and footer; the smallest terminals lose header lines first.
  let headerRows = top.length;
  let footerRows = footer.length;
  while (headerRows + footerRows + 2 > height && footerRows > 1) footerRows--;
  while (headerRows + footerRows + 2 > height && headerRows > 1) headerRows--;
  const body = Math.max(0, height - headerRows - footerRows);

  const lines: Segment[][] = [...top.slice(0, headerRows)];
  let pageRows = 0;
  let offset = 0;
  let maxOffset = 0;

  if (state.help) {
    lines.push(...helpBox(width, body));
    while (lines.length < headerRows + body) lines.push([]);
  } else {
    const sorted = sortRows(m.rows, state.sort, state.reverse);
    // Recent changes: a few lines are reserved when the terminal is tall
    // enough; they also get whatever the table leaves free.
    const wantRecent = body >= 12;
    const minRecent = wantRecent ? 1 + Math.min(3, Math.max(1, m.recent.length)) : 0;
    const tableBody = body - minRecent; // table header + rows + hidden line
    const rowsRoom = Math.max(0, tableBody - 1);
    const total = sorted.length;
    let shown = Math.min(total, o.maxRows, rowsRoom);
    if (shown < total && shown === rowsRoom) shown = Math.max(0, rowsRoom - 1); // room for "… hidden"
    pageRows = Math.max(1, shown);
    maxOffset = Math.max(0, total - shown);
    offset = Math.min(Math.max(0, state.offset), maxOffset);
    const tableUsed = 1 + (total === 0 ? 1 : shown) + (shown < total ? 1 : 0);
    const recentRows = wantRecent ? body - tableUsed : 0;

    const visible = sorted.slice(offset, offset + shown);
    const cols = columns(width, visible); // sized to the rows on screen
    lines.push(tableLine(cols, cols.map((c) => ({ text: c.title, style: "bold" }))));
    if (total === 0) {
      lines.push([{
        text: m.phase === "starting"
          ? "loading the streamer list…"
          : "no active streamers (add rows to the streamers table)",
        style: "dim",
      }]);
    }
    for (const r of visible) {
      lines.push(tableLine(cols, cols.map((c) => c.cell(r, m.now))));
    }
    if (shown < total) {
      const hidden = total - shown;
      lines.push([{
        text: `${ELLIPSIS} ${hidden} more hidden${SEP}rows ${offset + 1}–${
          offset + shown
        } of ${total}${SEP}↑↓ PgUp PgDn scroll`,
        style: "dim",
      }]);
    }
    if (recentRows > 0) {
      lines.push([
        { text: "── Recent changes ", style: "dim" },
        { text: "─".repeat(Math.max(0, width - 18)), style: "dim" },
      ]);
      if (m.recent.length === 0) {
        lines.push([{ text: m.recentCleared ? "(cleared)" : "(none yet)", style: "dim" }]);
      }
      const recent = m.recent.slice(0, recentRows - 1);
      const names = recent.map((r) => displayName({ username: r.username, id: r.streamerId }));
      const nameWidth = Math.min(24, Math.max(0, ...names.map(textWidth)));
      recent.forEach((r, i) => {
        lines.push([
          { text: formatClock(r.at) + "  ", style: "dim" },
          { text: fit(names[i], nameWidth) + "  " },
          { text: fit(r.from, 7), style: STATUS_STYLE[r.from as StreamerStatus] },
          { text: " → " },
          { text: fit(r.to, 7), style: STATUS_STYLE[r.to] },
          { text: `  ${r.source}`, style: "dim" },
        ]);
      });
    }
    while (lines.length < headerRows + body) lines.push([]);
  }
  lines.push(...footer.slice(0, footerRows));
  return { lines: out(lines.slice(0, height)), pageRows, offset, maxOffset };
}
