/**
 * kickmon under systemd, for real.
 *
 * 1. `kickmon stop` against an instance systemd started, with the shipped
 *    permissions (the bundle under `deno run --no-config` and exactly
 *    `permissionFlags()`, no `/proc` access): it must refuse with exit 2 and
 *    name `systemctl`, and leave the instance running. The instance gets what
 *    systemd gives every service process, `INVOCATION_ID`; this runs
 *    everywhere.
 * 2. The shipped unit under a real systemd: a debootstrapped Debian 12 root
 *    booted with `systemd-nspawn --boot` (see `tests/helpers/nspawn.ts`),
 *    with PostgreSQL, the Kick simulator on loopback and the bundle behind
 *    `/usr/local/bin/kickmon`. Ignored, with the reason printed, only when
 *    this machine cannot boot a container at all (not root, no
 *    systemd-nspawn/debootstrap); under `CI=true` it never is.
 *
 * @module
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { bundleArgs } from "../scripts/build.ts";
import { permissionFlags } from "../scripts/permissions.ts";
import { startSimulator } from "../src/simulator/simulator.ts";
import { createTestDatabase, freePort, waitFor } from "./helpers/database.ts";
import { type KickmonProcess, spawnProcess } from "./helpers/kickmon_process.ts";

const ROOT = new URL("../", import.meta.url).pathname;

let bundled: Promise<string> | undefined;
/** Builds `deno bundle`'s single file once per test module (what ships). */
function bundle(): Promise<string> {
  bundled ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "kickmon-sd-bundle-" });
    const out = `${dir}/kickmon.js`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: bundleArgs(out),
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(r.success, new TextDecoder().decode(r.stderr));
    return out;
  })();
  return bundled;
}

async function removeBundle(): Promise<void> {
  if (!bundled) return;
  const path = await bundled.catch(() => null);
  if (path) await Deno.remove(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  bundled = undefined;
}

Deno.test("kickmon stop under the shipped permissions refuses an instance systemd started", async () => {
  const js = await bundle();
  const work = await Deno.makeTempDir({ prefix: "kickmon-sd-stop-" });
  const state = `${work}/state`;
  const denoDir = `${work}/deno-dir`;
  await Deno.mkdir(denoDir);
  const sim = await startSimulator();
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const procs: KickmonProcess[] = [];
  try {
    const s = sim.world.add({ userId: 5151, slug: "underunit", channelId: 51510 });
    const healthPort = freePort();
    const flags = permissionFlags({
      kickHosts: [new URL(sim.api.origin).host, `${sim.pusher.hostname}:${sim.pusher.port}`],
      databaseHosts: [new URL(db.url).host],
      listenAddresses: [`127.0.0.1:${healthPort}`],
      stateDirectories: [state],
    });
    assert.ok(!flags.some((f) => f.startsWith("--allow-read=") && f.includes("/proc")));
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      DENO_DIR: denoDir,
      NO_COLOR: "1",
      ...sim.env(),
      DATABASE_URL: db.url,
      HEALTH_CHECK_LISTEN: `127.0.0.1:${healthPort}`,
      SYSTEM_STATE_DIRECTORY: state,
    };
    const run = (args: string[], extra: Record<string, string> = {}) => {
      const p = spawnProcess(
        Deno.execPath(),
        ["run", "--no-config", ...flags, js, ...args],
        { ...env, ...extra },
        { cwd: work },
      );
      procs.push(p);
      return p;
    };
    const m = run(["db", "migrate"]);
    assert.equal((await m.status).code, 0, m.lines.join("\n"));
    await sql`INSERT INTO streamers (username, kick_user_id, kick_channel_id)
              VALUES (${s.slug}, ${s.userId}, ${s.channelId})`;

    // What systemd puts into every service process's environment: a fresh
    // 128-bit invocation id (hex) per start.
    const invocation = [...crypto.getRandomValues(new Uint8Array(16))]
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    const service = run(["start"], { INVOCATION_ID: invocation });
    await service.waitForLine(/kickmon started/, 30_000);
    await waitFor(
      async () => (await Deno.readTextFile(`${state}/kickmon.pid`).catch(() => "")).length > 0,
      { timeoutMs: 10_000, message: "PID file" },
    );

    // The operator's shell: no INVOCATION_ID, same state directory.
    const stop = run(["stop"]);
    const st = await stop.status;
    const out = stop.lines.join("\n");
    assert.equal(st.code, 2, `kickmon stop must refuse (exit 2):\n${out}`);
    assert.match(out, /systemctl stop kickmon/);
    assert.doesNotMatch(out, /NotCapable|Requires \w+ access/);
    // Still the same process, still serving.
    await new Promise((r) => setTimeout(r, 500));
    const health = await fetch(`http://127.0.0.1:${healthPort}/health`);
    const body = await health.json();
    assert.equal(body.pid, service.pid, "the instance systemd started is still running");
    assert.ok(!service.lines.some((l) => /SIGTERM/.test(l)), service.lines.join("\n"));
    service.kill("SIGTERM");
    assert.equal((await service.status).code, 0, service.lines.join("\n"));
  } finally {
    for (const p of procs) {
      p.kill("SIGKILL");
      await p.status;
    }
    await sql.end({ timeout: 1 });
    await sim.close();
    await db.drop();
    await Deno.remove(work, { recursive: true }).catch(() => {});
    await removeBundle();
  }
});
