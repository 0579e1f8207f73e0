import assert from "node:assert/strict";
import { STATE_FILES, statePaths } from "./state_paths.ts";

Deno.test("statePaths: every file in the state directory, named once", () => {
  assert.deepEqual(statePaths("/var/lib/kickmon"), {
    directory: "/var/lib/kickmon",
    pidFile: "/var/lib/kickmon/kickmon.pid",
    spool: "/var/lib/kickmon/spool.jsonl",
    listSnapshot: "/var/lib/kickmon/streamers.json",
    manualLog: "/var/lib/kickmon/kickmon-manual.log",
    backups: "/var/lib/kickmon/backups",
    captures: "/var/lib/kickmon/captures",
  });
  assert.equal(statePaths("./state").spool, `./state/${STATE_FILES.spool}`);
});

Deno.test("statePaths: a trailing slash is dropped; the root stays the root", () => {
  assert.equal(statePaths("/srv/k//").pidFile, "/srv/k/kickmon.pid");
  assert.equal(statePaths("/").pidFile, "/kickmon.pid");
  assert.equal(statePaths("///").directory, "/");
});
