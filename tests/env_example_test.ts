/**
 * `.env.example` (the template operators copy to /etc/kickmon/kickmon.env)
 * documents every variable kickmon reads, with the defaults of the rows in
 * `src/config/variables.ts`, and is exactly what `deno task docs` writes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { envExample } from "../scripts/env_example.ts";
import { CONFIG_DOCS, CONFIG_VARIABLES, SECRET_VARIABLES } from "../src/config/config.ts";

const PATH = new URL("../.env.example", import.meta.url);

Deno.test(".env.example lists every CONFIG_VARIABLES entry once, with its default", async () => {
  const text = await Deno.readTextFile(PATH);
  const assigned = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = line.match(/^([A-Z][A-Z0-9_]*)=(.*)$/);
    if (m) assigned.set(m[1], [...(assigned.get(m[1]) ?? []), m[2]]);
  }
  const missing = CONFIG_VARIABLES.filter((v) => !assigned.has(v));
  assert.deepEqual(missing, [], "variables missing from .env.example: run `deno task env-example`");
  const unknown = [...assigned.keys()].filter((v) =>
    !(CONFIG_VARIABLES as readonly string[]).includes(v)
  );
  assert.deepEqual(unknown, [], "variables in .env.example that kickmon does not read");
  for (const name of CONFIG_VARIABLES) {
    const values = assigned.get(name)!;
    assert.equal(values.length, 1, `${name} assigned ${values.length} times`);
    assert.equal(values[0], CONFIG_DOCS[name].def, `${name} default differs from config.ts`);
    if (SECRET_VARIABLES.has(name)) assert.equal(values[0], "", `${name} must ship empty`);
  }
});

Deno.test(".env.example is what the configuration rows generate", async () => {
  const text = await Deno.readTextFile(PATH);
  assert.equal(
    text,
    envExample(),
    ".env.example differs from src/config/variables.ts: run `deno task docs`",
  );
});
