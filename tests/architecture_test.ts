/**
 * The layer rule of docs/architecture.md, checked on every import of the
 * repository's TypeScript: a file may import only from its own layer and the
 * layers that docs/architecture.md lists under it, and `src/` has no import
 * circle. A change that breaks the rule fails here with the offending import
 * named (file, line, target) and the rule it breaks.
 *
 * Imports are read as text (static `import`/`export … from`, `import type`,
 * and `import("…")` with a literal); only relative specifiers are layered,
 * npm packages from deno.json's import map are not.
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");

/**
 * Layers of `src/`, lowest first, each with the layers it may import (besides
 * itself). Mirrors the table in docs/architecture.md.
 */
const FOUNDATION = ["src/build", "src/util"];
const DB = [...FOUNDATION, "src/core", "src/log", "src/config"];
const SERVICE = [...DB, "src/kick", "src/db"];
const HTTP = [...SERVICE, "src/service"];
export const SRC_LAYERS: Record<string, readonly string[]> = {
  "src/core": [],
  "src/build": [],
  "src/util": [],
  "src/log": FOUNDATION,
  "src/config": [...FOUNDATION, "src/log", "src/core"],
  "src/kick": [...FOUNDATION, "src/core", "src/log"],
  "src/db": DB,
  "src/service": SERVICE,
  "src/http": HTTP,
  "src/view": [...DB, "src/db", "src/service", "src/http"],
  "src/cli": [...HTTP, "src/http", "src/view"],
};

/** Files at the top of `src/` (version, build facts) form the `src/build` layer. */
function layerOf(path: string): string {
  if (path === "main.ts") return "main";
  const parts = path.split("/");
  if (parts[0] === "src") return parts.length === 2 ? "src/build" : `src/${parts[1]}`;
  return parts[0];
}

/** Which layers each top-level folder may import (besides its own). */
function allowed(from: string, to: string, fromPath: string, toPath = ""): string | null {
  if (from === to) return null;
  if (to === "migrations" || to === "deno.json") return null; // raw data, no code
  if (from.startsWith("src/")) {
    if (!to.startsWith("src/")) return `${from} may import only src/ (never dev/, tests/, bench/)`;
    return SRC_LAYERS[from]?.includes(to) ? null : `${from} may not import ${to}`;
  }
  if (from === "main") {
    return to === "src/cli" || to === "src/build" ? null : "main.ts wires src/cli only";
  }
  if (from === "dev") {
    return to.startsWith("src/") || toPath.startsWith("tests/fixtures/")
      ? null
      : "dev/ may import src/, dev/ and the data in tests/fixtures/ only";
  }
  if (from === "bench") {
    return to.startsWith("src/") || to === "dev" || to === "scripts"
      ? null
      : "bench/ may import src/, dev/ and scripts/ only";
  }
  if (from === "scripts") {
    return to.startsWith("src/") || to === "dev" ? null : "scripts/ may import src/ and dev/ only";
  }
  if (from === "tests") return null;
  return `no rule for ${fromPath}`;
}

interface Edge {
  from: string;
  to: string;
  line: number;
}

const IMPORT_RE =
  /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?(?:[^"'`;]*?\s+from\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(`${ROOT}/${dir}`)) {
    const rel = dir === "." ? e.name : `${dir}/${e.name}`;
    if (e.isDirectory) {
      if (["node_modules", "dist", "state", ".git", "fixtures"].includes(e.name)) continue;
      yield* tsFiles(rel);
    } else if (e.isFile && e.name.endsWith(".ts")) yield rel;
  }
}

/** Every relative import of the repository's TypeScript files. */
async function edges(): Promise<Edge[]> {
  const out: Edge[] = [];
  const roots = ["main.ts", "src", "dev", "tests", "bench", "scripts"];
  for (const root of roots) {
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(`${ROOT}/${root}`);
    } catch {
      continue;
    }
    const files = stat.isFile ? [root] : await Array.fromAsync(tsFiles(root));
    for (const file of files) {
      const text = await Deno.readTextFile(`${ROOT}/${file}`);
      const lines = text.split("\n");
      lines.forEach((lineText, i) => {
        if (/^\s*(\*|\/\/)/.test(lineText)) return; // docs and comments
        for (const m of lineText.matchAll(IMPORT_RE)) {
          const spec = m[1] ?? m[2];
          if (!spec?.startsWith(".")) continue;
          const target = new URL(spec, `file://${ROOT}/${file}`).pathname.slice(ROOT.length + 1);
          out.push({ from: file, to: decodeURIComponent(target), line: i + 1 });
        }
      });
    }
  }
  return out;
}

Deno.test("architecture: every import follows the layer rule of docs/architecture.md", async () => {
  const broken: string[] = [];
  for (const e of await edges()) {
    const why = allowed(layerOf(e.from), layerOf(e.to), e.from, e.to);
    if (why) broken.push(`${e.from}:${e.line} imports ${e.to}: ${why}`);
  }
  assert.deepEqual(broken, []);
});

Deno.test("architecture: src/ has no import circle", async () => {
  const graph = new Map<string, Set<string>>();
  for (const e of await edges()) {
    if (!e.from.startsWith("src/") || !e.to.startsWith("src/")) continue;
    if (!graph.has(e.from)) graph.set(e.from, new Set());
    graph.get(e.from)!.add(e.to);
  }
  const circles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, "open");
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === "open") circles.push([...stack.slice(stack.indexOf(m)), m].join(" -> "));
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, "done");
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  assert.deepEqual(circles, []);
});

Deno.test("architecture: the checker sees a forbidden import (core importing db)", () => {
  const cases: Array<[from: string, to: string, path: string, verdict: string | null]> = [
    ["src/core", "src/db", "src/core/x.ts", "src/core may not import src/db"],
    ["src/view", "src/cli", "src/view/x.ts", "src/view may not import src/cli"],
    [
      "src/db",
      "dev",
      "src/db/x_test.ts",
      "src/db may import only src/ (never dev/, tests/, bench/)",
    ],
    ["bench", "tests", "bench/x.ts", "bench/ may import src/, dev/ and scripts/ only"],
    ["src/cli", "src/view", "src/cli/x.ts", null],
  ];
  for (const [from, to, path, verdict] of cases) assert.equal(allowed(from, to, path), verdict);
});

Deno.test("architecture: every § reference in src/ names a section of docs/kick-protocol.md", async () => {
  const doc = await Deno.readTextFile(`${ROOT}/docs/kick-protocol.md`);
  const sections = new Set<string>();
  for (const m of doc.matchAll(/^#{2,4} (\d+(?:\.\d+)*)[.\s]/gm)) sections.add(m[1]);
  for (const m of doc.matchAll(/^- \*\*(\d+(?:\.\d+)+)\*\*/gm)) sections.add(m[1]);
  const missing: string[] = [];
  let seen = 0;
  for await (const file of tsFiles("src")) {
    const lines = (await Deno.readTextFile(`${ROOT}/${file}`)).split("\n");
    lines.forEach((line, i) => {
      // "RFC 9110 §10.2.3" cites another document.
      for (const m of line.matchAll(/(RFC \d+ )?§(\d+(?:\.\d+)*)/g)) {
        if (m[1]) continue;
        seen++;
        if (!sections.has(m[2])) missing.push(`${file}:${i + 1} cites §${m[2]}`);
      }
    });
  }
  assert.ok(seen > 50, `only ${seen} § references found: is the scan broken?`);
  assert.ok(sections.has("3.1") && sections.has("10.1"), "section headings not read");
  assert.deepEqual(missing, []);
});

Deno.test("docs: every relative link of README.md and docs/*.md names a file of the repository", async () => {
  const broken: string[] = [];
  let links = 0;
  const docs = ["README.md", ...[...Deno.readDirSync(`${ROOT}/docs`)].map((e) => `docs/${e.name}`)];
  for (const doc of docs.filter((d) => d.endsWith(".md"))) {
    const text = await Deno.readTextFile(`${ROOT}/${doc}`);
    for (const m of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
      const target = m[1];
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      links++;
      const path = new URL(target, `file://${ROOT}/${doc}`).pathname;
      try {
        await Deno.stat(decodeURIComponent(path));
      } catch {
        broken.push(`${doc}: ${target}`);
      }
    }
  }
  assert.ok(links > 20, `only ${links} relative links found: is the scan broken?`);
  assert.deepEqual(broken, []);
});
