/**
 * `systemd/kickmon.service`: the sandbox scores at most 1.5 on
 * `systemd-analyze security --offline=true`, and `systemd-analyze verify`
 * has nothing to say about it except, when kickmon is not installed on this
 * machine, that `/usr/local/bin/kickmon` does not exist (verified again on a
 * copy whose ExecStart names an existing stub executable, which must be
 * clean). Ignored, with a printed reason, only when systemd-analyze is not
 * installed (Debian package `systemd`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { CONFIG_DOCS } from "../src/config/config.ts";

const UNIT = new URL("../systemd/kickmon.service", import.meta.url).pathname;
const BINARY = "/usr/local/bin/kickmon";
const MAX_EXPOSURE = 1.5;

async function analyze(args: string[]): Promise<{ code: number; out: string } | null> {
  try {
    const o = await new Deno.Command("systemd-analyze", {
      args,
      env: { SYSTEMD_COLORS: "0", SYSTEMD_PAGER: "", LC_ALL: "C.UTF-8" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: o.code, out: (dec.decode(o.stdout) + dec.decode(o.stderr)).trim() };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

const installed = (await analyze(["--version"])) !== null;
if (!installed) {
  console.log("systemd tests ignored: systemd-analyze is not installed (apt-get install systemd)");
}

/** `Key=value` lines of the unit (last one wins per key, like most systemd settings). */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = line.match(/^([A-Za-z]+)=(.*)$/);
    if (m) out.set(m[1], [...(out.get(m[1]) ?? []), m[2].trim()]);
  }
  return out;
}

Deno.test("systemd unit: the directives the brief requires", async () => {
  const d = directives(await Deno.readTextFile(UNIT));
  const one = (k: string) => d.get(k)?.at(-1);
  assert.equal(one("ExecStart"), `${BINARY} start`);
  assert.equal(one("ExecReload"), "/bin/kill -HUP $MAINPID");
  assert.equal(one("EnvironmentFile"), "/etc/kickmon/kickmon.env");
  assert.equal(one("StateDirectory"), "kickmon");
  // V8's code cache must outlive PrivateTmp= (see the unit's comment).
  assert.equal(one("CacheDirectory"), "kickmon");
  assert.ok(d.get("Environment")?.includes("TMPDIR=%C/kickmon"));
  assert.equal(one("ExecStartPre"), `${BINARY} --version`);
  assert.equal(one("Restart"), "always");
  assert.equal(one("KillSignal"), "SIGTERM");
  assert.equal(one("DynamicUser"), "yes");
  assert.equal(one("WantedBy"), "multi-user.target");
  assert.match(one("After") ?? "", /network-online\.target.*postgresql\.service/);
  assert.equal(one("Wants"), "network-online.target");
  const stopSec = Number((one("TimeoutStopSec") ?? "").replace(/s$/, ""));
  assert.ok(
    stopSec > Number(CONFIG_DOCS.MONITORING_SHUTDOWN_TIMEOUT.def),
    `TimeoutStopSec ${stopSec} must exceed the ${CONFIG_DOCS.MONITORING_SHUTDOWN_TIMEOUT.def} s flush deadline`,
  );
  assert.equal(d.has("MemoryDenyWriteExecute"), false, "V8's JIT needs W^X flips");
  assert.equal(one("CapabilityBoundingSet"), "");
});

Deno.test({
  name: `systemd unit: systemd-analyze security exposure <= ${MAX_EXPOSURE}`,
  ignore: !installed,
  fn: async () => {
    const r = (await analyze(["security", "--offline=true", "--no-pager", UNIT]))!;
    const m = r.out.match(/Overall exposure level for kickmon\.service:\s*([0-9.]+)/);
    assert.ok(m, `no "Overall exposure level" line:\n${r.out}`);
    const exposure = Number(m[1]);
    console.log(`exposure ${exposure}`);
    assert.ok(exposure <= MAX_EXPOSURE, `exposure ${exposure} > ${MAX_EXPOSURE}:\n${r.out}`);
  },
});

/** Lines of verify's output that are about some other unit (its dependencies). */
const aboutOtherUnit = (line: string) =>
  /^\S+\.(service|target|socket|mount|slice|path|timer):/.test(line) &&
  !/(^|\/)kickmon\.service:/.test(line);

Deno.test({
  name: "systemd unit: systemd-analyze verify is clean",
  ignore: !installed,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kickmon-unit-" });
    try {
      // The unit as shipped: the only acceptable complaint is the missing binary.
      const shipped = (await analyze(["verify", UNIT]))!;
      const binaryInstalled = await Deno.stat(BINARY).then(() => true, () => false);
      const complaints = shipped.out.split("\n").filter((l) => l.trim() && !aboutOtherUnit(l));
      for (const l of complaints) {
        assert.ok(
          !binaryInstalled && l.includes(BINARY) && /not executable|No such file/.test(l),
          `unexpected verify output for the shipped unit: ${l}`,
        );
      }
      // A copy whose commands name an existing executable must be spotless.
      const stub = `${dir}/kickmon`;
      await Deno.writeTextFile(stub, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
      const text = await Deno.readTextFile(UNIT);
      assert.ok(text.includes(`ExecStart=${BINARY} start`));
      await Deno.writeTextFile(
        `${dir}/kickmon.service`,
        text.replaceAll(`=${BINARY} `, `=${stub} `),
      );
      const copy = (await analyze(["verify", `${dir}/kickmon.service`]))!;
      const lines = copy.out.split("\n").filter((l) => l.trim());
      for (const l of lines.filter(aboutOtherUnit)) console.log(`(other unit) ${l}`);
      assert.deepEqual(lines.filter((l) => !aboutOtherUnit(l)), [], copy.out);
      if (!lines.some(aboutOtherUnit)) assert.equal(copy.code, 0, copy.out);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
