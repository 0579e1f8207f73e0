import assert from "node:assert/strict";
import { CONFIG_VARIABLES } from "../src/config/config.ts";

Deno.test("README documents every configuration variable and the test command", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  for (const v of CONFIG_VARIABLES) assert.match(readme, new RegExp("`" + v + "`"), v);
  assert.match(readme, /deno task test/);
});
