import assert from "node:assert/strict";
import { configTable, configTemplate, TABLE_MARKERS, withConfigTable } from "./docs.ts";
import { CONFIG_VARIABLES, VARIABLES } from "./variables.ts";

Deno.test("docs: the template has each variable's meaning, unit and default", () => {
  const tpl = configTemplate();
  assert.match(
    tpl,
    /^# Official API \/ OAuth request timeout\. Unit: seconds\.\nKICK_API_TIMEOUT=10$/m,
  );
  assert.match(
    tpl,
    /^# Live view redraw period\. Unit: milliseconds\.\nMANUAL_MODE_REFRESH_RATE=1000$/m,
  );
  for (const name of CONFIG_VARIABLES) {
    assert.match(
      tpl,
      new RegExp(`^${name}=${VARIABLES[name].default.replaceAll(".", "\\.")}$`, "m"),
    );
  }
});

Deno.test("docs: the table has one row per variable, every line as wide as the header", () => {
  const lines = configTable().split("\n");
  assert.equal(lines.length, CONFIG_VARIABLES.length + 2);
  assert.match(lines[0], /^\| variable +\| default +\| unit +\| meaning +\|$/);
  assert.ok(lines.every((l) => l.length === lines[0].length), "padded like deno fmt");
  assert.match(lines.find((l) => l.startsWith("| `KICK_API_TIMEOUT` "))!, /\| `10` +\| s +\|/);
});

Deno.test("docs: withConfigTable replaces only what is between the markers", () => {
  const readme = `# x\n\n${TABLE_MARKERS.start}\n\nold\n\n${TABLE_MARKERS.end}\n\nafter\n`;
  const out = withConfigTable(readme);
  assert.ok(out.startsWith(`# x\n\n${TABLE_MARKERS.start}\n\n| variable`));
  assert.ok(out.endsWith(`|\n\n${TABLE_MARKERS.end}\n\nafter\n`));
  assert.equal(withConfigTable(out), out, "idempotent");
  assert.throws(() => withConfigTable("# no markers\n"), /markers/);
});
