/**
 * Keyboard input of the live view: raw terminal bytes → key names.
 *
 * In raw mode the terminal sends each key press as bytes: a printable key
 * as itself, Ctrl-C as `0x03`, arrows as `ESC [ A` … (or `ESC O A` in
 * application-cursor mode), Page Up/Down as `ESC [ 5 ~` / `ESC [ 6 ~`.
 *
 * @module
 */

/** A key the live view understands. */
export type Key =
  | { readonly kind: "char"; readonly char: string }
  | { readonly kind: "ctrl-c" }
  | { readonly kind: "escape" }
  | { readonly kind: "up" }
  | { readonly kind: "down" }
  | { readonly kind: "pageUp" }
  | { readonly kind: "pageDown" }
  | { readonly kind: "home" }
  | { readonly kind: "end" }
  | { readonly kind: "enter" };

const CSI_FINAL: Readonly<Record<string, Key>> = {
  A: { kind: "up" },
  B: { kind: "down" },
  H: { kind: "home" },
  F: { kind: "end" },
};
const CSI_TILDE: Readonly<Record<string, Key>> = {
  "1": { kind: "home" },
  "7": { kind: "home" },
  "4": { kind: "end" },
  "8": { kind: "end" },
  "5": { kind: "pageUp" },
  "6": { kind: "pageDown" },
};

/**
 * Splits one read from stdin (raw mode) into keys. Unknown escape sequences
 * and control bytes are dropped; a lone ESC is `escape`.
 *
 * @param data bytes as read (one read may hold several keys).
 * @returns the keys in order.
 *
 * @example
 * ```ts
 * parseKeys(new TextEncoder().encode("q")); // [{ kind: "char", char: "q" }]
 * parseKeys(new Uint8Array([0x1b, 0x5b, 0x41])); // [{ kind: "up" }]
 * ```
 */
export function parseKeys(data: Uint8Array): Key[] {
  const text = new TextDecoder().decode(data);
  const keys: Key[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "\x1b") {
      const next = text[i + 1];
      if (next === "[" || next === "O") {
        // CSI / SS3: parameters (digits, ';') then one final byte.
        let j = i + 2;
        while (j < text.length && /[0-9;]/.test(text[j])) j++;
        if (j >= text.length) { // truncated sequence: drop it
          i = j;
          continue;
        }
        const params = text.slice(i + 2, j);
        const final = text[j];
        const key = final === "~" ? CSI_TILDE[params.split(";")[0]] : CSI_FINAL[final];
        if (key) keys.push(key);
        i = j + 1;
        continue;
      }
      keys.push({ kind: "escape" });
      i++;
      continue;
    }
    const code = c.charCodeAt(0);
    if (code === 0x03) keys.push({ kind: "ctrl-c" });
    else if (c === "\r" || c === "\n") keys.push({ kind: "enter" });
    else if (code >= 0x20 && code !== 0x7f) {
      const cp = text.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      keys.push({ kind: "char", char: ch });
      i += ch.length;
      continue;
    }
    i++;
  }
  return keys;
}
