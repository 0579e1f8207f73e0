/**
 * Terminal primitives for the live view: escape sequences, display width of
 * text (terminal columns, not UTF-16 units), truncation with `…`, and styled
 * segments that render with or without colour.
 *
 * Everything here is pure except nothing: no I/O, no globals. The live view
 * (`live_view.ts`) writes what these functions build.
 *
 * @module
 */

/** Control Sequence Introducer. */
const CSI = "\x1b[";

/**
 * Terminal control sequences used by the live view. None of them are colour
 * (SGR) sequences; colour lives in {@linkcode STYLES} and is skipped
 * entirely under `NO_COLOR`.
 *
 * @example
 * ```ts
 * Deno.stdout.writeSync(new TextEncoder().encode(TERM.altScreenOn + TERM.cursorHide));
 * ```
 */
export const TERM = {
  /** Switch to the alternate screen buffer (the main screen is kept intact). */
  altScreenOn: `${CSI}?1049h`,
  /** Back to the main screen buffer. */
  altScreenOff: `${CSI}?1049l`,
  cursorHide: `${CSI}?25l`,
  cursorShow: `${CSI}?25h`,
  /** Disable auto-wrap: a character written past the last column never wraps. */
  wrapOff: `${CSI}?7l`,
  /** Re-enable auto-wrap (the terminal default). */
  wrapOn: `${CSI}?7h`,
  /** Clear the whole screen. */
  clearScreen: `${CSI}2J`,
  /** Clear the current line. */
  clearLine: `${CSI}2K`,
  /** Clear from the cursor to the end of the screen. */
  clearBelow: `${CSI}J`,
  /** Reset every attribute (colour, bold). */
  reset: `${CSI}0m`,
  /**
   * Move the cursor to a 1-based row and column.
   *
   * @param row 1-based row.
   * @param col 1-based column.
   */
  moveTo: (row: number, col = 1): string => `${CSI}${row};${col}H`,
} as const;

/** Names of the styles a segment can carry. */
export type StyleName =
  | "bold"
  | "dim"
  | "inverse"
  | "green"
  | "red"
  | "yellow"
  | "cyan"
  | "boldGreen"
  | "boldRed"
  | "boldYellow";

/** SGR (colour/attribute) sequences per style; only used when colour is on. */
export const STYLES: Readonly<Record<StyleName, string>> = {
  bold: `${CSI}1m`,
  dim: `${CSI}2m`,
  inverse: `${CSI}7m`,
  green: `${CSI}32m`,
  red: `${CSI}31m`,
  yellow: `${CSI}33m`,
  cyan: `${CSI}36m`,
  boldGreen: `${CSI}1;32m`,
  boldRed: `${CSI}1;31m`,
  boldYellow: `${CSI}1;33m`,
};

/**
 * A run of text with one optional style. A line of the view is an array of
 * segments; {@linkcode renderSegments} lays it out in a given width.
 *
 * @example
 * ```ts
 * const line: Segment[] = [{ text: "status: " }, { text: "online", style: "green" }];
 * ```
 */
export interface Segment {
  /** Plain text (no escape sequences; sanitise untrusted text first). */
  readonly text: string;
  /** Applied only when colour is on. */
  readonly style?: StyleName;
}

/**
 * Whether colour is wanted, per https://no-color.org: `NO_COLOR` present
 * and non-empty disables it.
 *
 * @param env the environment to read (default: the process's; needs `--allow-env=NO_COLOR`).
 * @returns true when colour escapes may be written.
 *
 * @example
 * ```ts
 * colorEnabled({ NO_COLOR: "1" }); // false
 * colorEnabled({}); // true
 * ```
 */
export function colorEnabled(
  env: Readonly<Record<string, string | undefined>> = { NO_COLOR: Deno.env.get("NO_COLOR") },
): boolean {
  const v = env.NO_COLOR;
  return v === undefined || v === "";
}

// Control characters (C0, DEL, C1) and the bidi overrides that could reorder a line.
// deno-lint-ignore no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Makes untrusted text (a username from the database) safe to print: every
 * control character (including ESC, so no escape sequence can be injected)
 * and bidi override becomes `?`.
 *
 * @example
 * ```ts
 * sanitize("evil\x1b[2Jname"); // "evil?[2Jname"
 * ```
 */
export function sanitize(text: string): string {
  return text.replace(UNSAFE, "?");
}

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}]$/u;
const EMOJI = /\p{Extended_Pictographic}/u;

/** True for code points in the East Asian Wide and Fullwidth ranges (2 columns). */
function isWide(cp: number): boolean {
  return (cp >= 0x1100 && cp <= 0x115f) || // Hangul Jamo
    (cp >= 0x2e80 && cp <= 0x303e) || // CJK radicals, punctuation
    (cp >= 0x3041 && cp <= 0x33ff) || // Kana, CJK symbols
    (cp >= 0x3400 && cp <= 0x4dbf) || // CJK ext. A
    (cp >= 0x4e00 && cp <= 0x9fff) || // CJK unified
    (cp >= 0xa000 && cp <= 0xa4cf) || // Yi
    (cp >= 0xac00 && cp <= 0xd7a3) || // Hangul syllables
    (cp >= 0xf900 && cp <= 0xfaff) || // CJK compatibility
    (cp >= 0xfe30 && cp <= 0xfe4f) || // CJK compatibility forms
    (cp >= 0xff00 && cp <= 0xff60) || // Fullwidth forms
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) || // pictographs, emoticons
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd); // CJK ext. B+
}

/**
 * Terminal columns one grapheme cluster occupies: 0 (combining marks,
 * format characters), 2 (East Asian wide, emoji) or 1.
 *
 * @example
 * ```ts
 * graphemeWidth("a"); // 1
 * graphemeWidth("界"); // 2
 * ```
 */
export function graphemeWidth(g: string): number {
  const cp = g.codePointAt(0) ?? 0;
  if (g.length === 1 && cp < 0x7f) return cp < 0x20 ? 0 : 1; // fast path: ASCII
  if (ZERO_WIDTH.test(g)) return 0;
  if (isWide(cp) || (EMOJI.test(g) && (g.includes("\ufe0f") || cp >= 0x1f000))) return 2;
  return 1;
}

/** True when every character is printable ASCII (width = length). */
function isPlainAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f) return false;
  }
  return true;
}

/**
 * Display width of text in terminal columns (escape sequences are NOT
 * understood: measure plain text only).
 *
 * @example
 * ```ts
 * textWidth("2m 13s ago"); // 10
 * textWidth("日本"); // 4
 * ```
 */
export function textWidth(text: string): number {
  if (isPlainAscii(text)) return text.length;
  let w = 0;
  for (const { segment } of segmenter.segment(text)) w += graphemeWidth(segment);
  return w;
}

/** The ellipsis used to mark cut text (1 column). */
export const ELLIPSIS = "…";

/**
 * Cuts text to at most `width` columns; when it has to cut, the last column
 * is `…`. Never splits a grapheme cluster or a wide character.
 *
 * @param width columns available (0 gives "").
 * @example
 * ```ts
 * truncate("bossmanjack", 6); // "bossm…"
 * truncate("abc", 6); // "abc"
 * ```
 */
export function truncate(text: string, width: number): string {
  if (width <= 0) return "";
  if (isPlainAscii(text)) {
    return text.length <= width ? text : text.slice(0, width - 1) + ELLIPSIS;
  }
  if (textWidth(text) <= width) return text;
  let out = "";
  let w = 0;
  for (const { segment } of segmenter.segment(text)) {
    const gw = graphemeWidth(segment);
    if (w + gw > width - 1) break;
    out += segment;
    w += gw;
  }
  return out + ELLIPSIS;
}

/**
 * Cuts text to at most `width` columns keeping its END (for paths): the
 * first column becomes `…`.
 *
 * @example
 * ```ts
 * truncateStart("/var/lib/kickmon/kickmon-manual.log", 20); // "…/kickmon-manual.log"
 * ```
 */
export function truncateStart(text: string, width: number): string {
  if (width <= 0) return "";
  if (textWidth(text) <= width) return text;
  const graphemes = [...segmenter.segment(text)].map((s) => s.segment);
  let out = "";
  let w = 0;
  for (let i = graphemes.length - 1; i >= 0; i--) {
    const gw = graphemeWidth(graphemes[i]);
    if (w + gw > width - 1) break;
    out = graphemes[i] + out;
    w += gw;
  }
  return ELLIPSIS + out;
}

/**
 * Pads (or truncates) text to exactly `width` columns.
 *
 * @param align `left` pads on the right (default), `right` on the left.
 * @example
 * ```ts
 * fit("ab", 4); // "ab  "
 * fit("ab", 4, "right"); // "  ab"
 * fit("abcdef", 4); // "abc…"
 * ```
 */
export function fit(text: string, width: number, align: "left" | "right" = "left"): string {
  const t = truncate(text, width);
  const pad = " ".repeat(Math.max(0, width - textWidth(t)));
  return align === "left" ? t + pad : pad + t;
}

/**
 * Lays out segments in `width` columns: the text is cut with `…` when it is
 * too long (never wider than `width`), and each segment's style is applied
 * only when `color` is true. With `color` false the result contains no
 * escape sequence at all. The line is not padded.
 *
 * @example
 * ```ts
 * renderSegments([{ text: "on", style: "green" }], 10, false); // "on"
 * renderSegments([{ text: "on", style: "green" }], 10, true); // "\x1b[32mon\x1b[0m"
 * ```
 */
export function renderSegments(
  segments: readonly Segment[],
  width: number,
  color: boolean,
): string {
  let out = "";
  let left = width;
  const total = segments.reduce((n, s) => n + textWidth(s.text), 0);
  const cutting = total > width;
  for (let i = 0; i < segments.length && left > 0; i++) {
    const seg = segments[i];
    const w = textWidth(seg.text);
    let text: string;
    if (!cutting) text = seg.text;
    else if (w < left) text = seg.text;
    else if (w === left && i === segments.length - 1) text = seg.text;
    else text = truncate(seg.text + " ", left); // forces the `…` into the last column
    left -= textWidth(text);
    if (text === "") continue;
    out += color && seg.style ? `${STYLES[seg.style]}${text}${TERM.reset}` : text;
  }
  return out;
}

/**
 * Display width of a string that may contain SGR colour sequences (they
 * take no columns).
 *
 * @example
 * ```ts
 * visibleWidth("\x1b[32monline\x1b[0m"); // 6
 * ```
 */
export function visibleWidth(text: string): number {
  // deno-lint-ignore no-control-regex
  return textWidth(text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ""));
}
