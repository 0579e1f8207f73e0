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
import type { Sql } from "../src/db/client.ts";
import { insertStreamer } from "../src/db/streamers_repo.ts";
import assert from "node:assert/strict";
import postgres from "postgres";
import { bundleArgs, compileArgs } from "../scripts/build.ts";
import { permissionFlags, permissionOptionsFromEnv } from "../scripts/permissions.ts";
import { startSimulator } from "../dev/simulator/simulator.ts";
import { createTestDatabase, freePort, waitFor } from "./helpers/database.ts";
import { type KickmonProcess, spawnProcess } from "../dev/kickmon_process.ts";
import {
  bootContainer,
  type Container,
  ensureRootfs,
  NSPAWN_OPTIONS,
  nspawnUnavailable,
  ROOTFS_DIR,
} from "./helpers/nspawn.ts";
import { simKickEnv } from "./helpers/nspawn_kick_sim.ts";

const ROOT = new URL("../", import.meta.url).pathname;

let bundled: Promise<string> | undefined;
let bundleDir: string | undefined;
/** Builds `deno bundle`'s single file once per test module (what ships). */
function bundle(): Promise<string> {
  bundled ??= (async () => {
    const dir = bundleDir = await Deno.makeTempDir({ prefix: "kickmon-sd-bundle-" });
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

// One bundle for both tests; removed when the module ends.
globalThis.addEventListener("unload", () => {
  try {
    if (bundleDir) Deno.removeSync(bundleDir, { recursive: true });
  } catch {
    // already removed (an interrupted run cleans up before it dies)
  }
});

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
    await insertStreamer(sql as unknown as Sql, {
      username: s.slug,
      kickUserId: s.userId,
      kickChannelId: s.channelId,
    });

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
  }
});

// ---------------------------------------------------------------------------
// The shipped unit under a real systemd

const CI = Deno.env.get("CI") === "true";
const unavailable = nspawnUnavailable();
if (unavailable) {
  console.log(
    CI
      ? `systemd container test: this machine cannot boot it (${unavailable}); CI=true, so it runs and fails`
      : `systemd container test ignored: ${unavailable}`,
  );
}

/** Where the stand-in for the compiled binary keeps deno and the bundle, in the guest. */
const GUEST_LIB = "/usr/local/lib/kickmon";
/** The staging directory the README's Install commands run in, in the guest. */
const GUEST_DIST = "/root/kickmon-dist";
const SIM_API_PORT = 18443;
const SIM_PUSHER_PORT = 18444;
const MAX_EXPOSURE = 1.5;

/** Bundles any entry point into one file runnable offline (`deno bundle`). */
async function bundleEntry(entry: string, out: string): Promise<void> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--platform", "deno", "--output", out, entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(r.success, new TextDecoder().decode(r.stderr));
}

const shq = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * `/usr/local/bin/kickmon` for the guest: the bundle under `deno run` with
 * the flags `deno task compile` bakes in (taken from `compileArgs`, so they
 * cannot drift), the simulator's loopback ports added through
 * `KICKMON_EXTRA_HOSTS` as a build for such a deployment would.
 */
function standIn(): string {
  const permissions = permissionFlags(permissionOptionsFromEnv({
    KICKMON_EXTRA_HOSTS: `127.0.0.1:${SIM_API_PORT},127.0.0.1:${SIM_PUSHER_PORT}`,
  }));
  const args = compileArgs({ permissions, bundle: `${GUEST_LIB}/kickmon.js` });
  const baked = args.slice(args.indexOf("--output") + 2, -1);
  assert.ok(baked.includes("--no-prompt") && baked.some((a) => a.startsWith("--v8-flags=")));
  return [
    "#!/bin/sh",
    "# Stand-in for the compiled kickmon (deno compile cannot run on the test host):",
    "# the bundle it is compiled from, with the flags it bakes in. DynamicUser= has",
    "# no HOME, so deno's own cache goes to the unit's CacheDirectory=.",
    'if [ -n "$CACHE_DIRECTORY" ]; then DENO_DIR="$CACHE_DIRECTORY"; export DENO_DIR; fi',
    "DENO_NO_UPDATE_CHECK=1; export DENO_NO_UPDATE_CHECK",
    `exec ${GUEST_LIB}/deno run --no-config ${
      baked.map(shq).join(" ")
    } ${GUEST_LIB}/kickmon.js "$@"`,
    "",
  ].join("\n");
}

const SIM_UNIT = `[Unit]
Description=Kick simulator (kickmon's container test; the guest has no network)
Before=kickmon.service

[Service]
Type=exec
Environment=DENO_DIR=/var/cache/kick-sim DENO_NO_UPDATE_CHECK=1
CacheDirectory=kick-sim
RuntimeDirectory=kick-sim
ExecStart=${GUEST_LIB}/deno run --no-config -A /opt/kick-sim/sim.js --api-port ${SIM_API_PORT} --pusher-port ${SIM_PUSHER_PORT} --streamers 3 --ready /run/kick-sim/ready
ExecStartPost=/bin/sh -c 'i=0; until [ -e /run/kick-sim/ready ]; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.1; done'

[Install]
WantedBy=multi-user.target
`;

/** The README's `## Install` code block, one command per line. */
async function readmeInstall(): Promise<string[]> {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const section = readme.split(/^## Install\s*$/m)[1]?.split(/^## /m)[0];
  assert.ok(section, "README has no ## Install section");
  const block = section.match(/```sh\n([\s\S]*?)```/)?.[1];
  assert.ok(block, "README's Install section has no ```sh block");
  return block.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
}

Deno.test({
  name: "systemd: the shipped unit under a real systemd (Debian 12 in systemd-nspawn)",
  ignore: unavailable !== null && !CI,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (unavailable) throw new Error(`cannot boot the test container: ${unavailable}`);
    const began = performance.now();
    const took = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
    const work = await Deno.makeTempDir({ prefix: "kickmon-sd-nspawn-" });
    let c: Container | undefined;
    // `deno task test` forwards SIGINT/SIGTERM here, which would end this
    // process without running `finally`: power the container off (or kill
    // debootstrap) first, then die of the signal as the process would have.
    const abort = new AbortController();
    let booting: Promise<unknown> = Promise.resolve();
    const onSignal = (sig: Deno.Signal) => async () => {
      if (abort.signal.aborted) return;
      console.log(`${sig}: stopping the container, then exiting`);
      abort.abort(new Error(`interrupted by ${sig}`));
      await c?.stop();
      await Promise.race([booting.catch(() => {}), new Promise((r) => setTimeout(r, 25_000))]);
      await Deno.remove(work, { recursive: true }).catch(() => {});
      if (bundleDir) await Deno.remove(bundleDir, { recursive: true }).catch(() => {});
      // Without a listener the signal's default action applies again: die of it.
      for (const [s, fn] of signals) Deno.removeSignalListener(s, fn);
      Deno.kill(Deno.pid, sig);
    };
    const signals: [Deno.Signal, () => void][] = [
      ["SIGINT", onSignal("SIGINT")],
      ["SIGTERM", onSignal("SIGTERM")],
    ];
    for (const [sig, fn] of signals) Deno.addSignalListener(sig, fn);
    try {
      // The root (cached locally; built once per run in CI) while the two bundles build.
      const simJs = `${work}/sim.js`;
      const building = ensureRootfs({
        rebuild: CI,
        log: (l) => console.log(l),
        signal: abort.signal,
      });
      booting = building;
      const [rootfs, js] = await Promise.all([
        building,
        bundle(),
        bundleEntry("tests/helpers/nspawn_kick_sim.ts", simJs),
      ]);
      console.log(
        `root ${ROOTFS_DIR}: ${rootfs.built ? "built" : "cached"} (${rootfs.seconds.toFixed(1)} s)`,
      );
      const unitText = await Deno.readTextFile(
        new URL("../systemd/kickmon.service", import.meta.url),
      );
      const dbPassword = crypto.randomUUID().replaceAll("-", "");
      const settings: Record<string, string> = {
        ...simKickEnv(SIM_API_PORT, SIM_PUSHER_PORT),
        DATABASE_PASSWORD: dbPassword,
        // Only SIGHUP (or a NOTIFY) may re-read the list during this test.
        MONITORING_RESYNC_INTERVAL: "3600",
      };

      const boot = bootContainer(rootfs.root, {
        signal: abort.signal,
        prepare: async (dir) => {
          // The stand-in "binary": deno and the bundle behind /usr/local/bin/kickmon.
          await Deno.mkdir(`${dir}${GUEST_LIB}`, { recursive: true });
          await Deno.copyFile(Deno.execPath(), `${dir}${GUEST_LIB}/deno`);
          await Deno.chmod(`${dir}${GUEST_LIB}/deno`, 0o755);
          await Deno.copyFile(js, `${dir}${GUEST_LIB}/kickmon.js`);
          await Deno.chmod(`${dir}${GUEST_LIB}/kickmon.js`, 0o644);
          // What the README's Install commands start from: dist/ and systemd/.
          await Deno.mkdir(`${dir}${GUEST_DIST}/dist`, { recursive: true });
          await Deno.mkdir(`${dir}${GUEST_DIST}/systemd`, { recursive: true });
          await Deno.writeTextFile(`${dir}${GUEST_DIST}/dist/kickmon`, standIn(), { mode: 0o755 });
          await Deno.writeTextFile(`${dir}${GUEST_DIST}/systemd/kickmon.service`, unitText);
          // $EDITOR for `$EDITOR /etc/kickmon/kickmon.env`: sets what an operator would.
          const edits = Object.entries(settings).map(([k, v]) =>
            `grep -q '^${k}=' "$1" || { echo "no ${k}= in $1" >&2; exit 1; }\n` +
            `sed -i 's|^${k}=.*|${k}=${v}|' "$1"`
          );
          await Deno.writeTextFile(
            `${dir}${GUEST_DIST}/edit-env`,
            `#!/bin/sh\nset -e\n${edits.join("\n")}\n`,
            { mode: 0o755 },
          );
          // The simulated Kick, started before kickmon at every boot.
          await Deno.mkdir(`${dir}/opt/kick-sim`, { recursive: true });
          await Deno.copyFile(simJs, `${dir}/opt/kick-sim/sim.js`);
          await Deno.writeTextFile(`${dir}/etc/systemd/system/kick-sim.service`, SIM_UNIT);
          await Deno.mkdir(`${dir}/etc/systemd/system/multi-user.target.wants`, {
            recursive: true,
          });
          await Deno.symlink(
            "/etc/systemd/system/kick-sim.service",
            `${dir}/etc/systemd/system/multi-user.target.wants/kick-sim.service`,
          );
        },
      });
      booting = boot;
      c = await boot;
      const box = c;
      console.log(
        `booted in ${box.bootSeconds.toFixed(1)} s: systemd-nspawn ${NSPAWN_OPTIONS.join(" ")}`,
      );

      const sh = async (
        script: string,
        opts: { env?: Record<string, string>; stdin?: string } = {},
      ) => {
        const r = await box.sh(script, opts);
        return { ...r, out: (r.stdout + r.stderr).trim() };
      };
      const must = async (
        script: string,
        opts: { env?: Record<string, string>; stdin?: string } = {},
      ) => {
        const r = await sh(script, opts);
        assert.equal(r.code, 0, `in the container: ${script}\n${r.out}`);
        return r.stdout.trim();
      };
      const prop = (p: string) => must(`systemctl show -p ${p} --value kickmon`);
      /** The unit's main PID; fails unless there is one (never `kill 0`). */
      const mainPid = async (): Promise<string> => {
        const pid = await prop("MainPID");
        assert.ok(Number(pid) > 1, `kickmon has no main process (MainPID=${pid})`);
        return pid;
      };
      // The operator's shell, with the README's way of loading the env file.
      const OPERATOR = "env $(grep -v '^#' /etc/kickmon/kickmon.env | xargs)";
      const psql = (q: string) =>
        must(`sudo -u postgres psql -d kickmon -v ON_ERROR_STOP=1 -tAc ${shq(q)}`);
      const health = async () => {
        const r = await sh(`${OPERATOR} kickmon status --json`);
        if (r.code !== 0) return null;
        return JSON.parse(r.stdout) as {
          pid: number;
          streamers?: Record<string, number>;
          pusher?: { connections?: { subscribed?: number }[] };
        };
      };
      const listed = (h: Awaited<ReturnType<typeof health>>) =>
        Object.values(h?.streamers ?? {}).reduce((a, b) => a + b, 0);
      /**
       * Waits until `kickmon status` is healthy with `n` streamers listed
       * (/health turns healthy while the list is still loading, with 0).
       */
      const waitHealthy = async (what: string, n: number, timeoutMs = 60_000) =>
        (await waitFor(async () => {
          const h = await health();
          return h && listed(h) === n ? h : null;
        }, {
          timeoutMs,
          intervalMs: 300,
          message: `kickmon status exit 0 with ${n} streamers (${what})`,
        }))!;
      const journal = () => must("journalctl -u kickmon -o cat --no-pager");

      await t.step("install as the README says, systemctl enable --now: active", async () => {
        const t0 = performance.now();
        const lines = await readmeInstall();
        for (
          const needed of [
            "install -m 0644 systemd/kickmon.service /etc/systemd/system/",
            "systemctl enable --now kickmon",
          ]
        ) assert.ok(lines.some((l) => l.startsWith(needed)), `README Install lacks: ${needed}`);
        for (const line of lines) {
          if (/^deno task compile\b/.test(line)) continue; // the stand-in is built on the host
          if (/^journalctl .*-f\b/.test(line)) continue; // follows forever
          const stdin = /createuser .*-P/.test(line) ? `${dbPassword}\n${dbPassword}\n` : undefined;
          const r = await sh(`cd ${GUEST_DIST} && ${line}`, {
            env: { EDITOR: `${GUEST_DIST}/edit-env` },
            stdin,
          });
          assert.equal(r.code, 0, `README Install line failed in the container: ${line}\n${r.out}`);
        }
        assert.equal(
          await Deno.readTextFile(`${box.dir}/etc/systemd/system/kickmon.service`),
          unitText,
          "the unit is installed exactly as shipped",
        );
        assert.equal(await must("systemctl is-enabled kickmon"), "enabled");
        await waitFor(
          async () => (await sh("systemctl is-active kickmon")).stdout.trim() === "active",
          {
            timeoutMs: 30_000,
            intervalMs: 200,
            message: "kickmon active",
          },
        );
        await psql(
          // The row and, in kickmon's schema, its channel id (as `streamers add` writes them).
          "WITH s AS (INSERT INTO streamers (username, kick_user_id) VALUES ('sim1', '1') " +
            "RETURNING id, username, kick_user_id) INSERT INTO kickmon.streamer_state " +
            "(streamer_id, source_username, source_kick_user_id, kick_channel_id) " +
            "SELECT id, username, kick_user_id, 1001 FROM s",
        );
        const h = await waitHealthy("after the install", 1);
        assert.equal(
          String(h.pid),
          await prop("MainPID"),
          "/health answers from the unit's process",
        );
        console.log(`installed, active and healthy in ${took(t0)}`);
      });

      await t.step("sandboxed as shipped, working, no EPERM/SIGSYS", async () => {
        const pid = await mainPid();
        const status = await must(`cat /proc/${pid}/status`);
        const uid = Number(status.match(/^Uid:\s+(\d+)/m)?.[1]);
        assert.ok(uid >= 61184 && uid <= 65519, `a dynamic user (uid ${uid})`);
        assert.match(status, /^NoNewPrivs:\s+1$/m);
        assert.match(status, /^Seccomp:\s+2$/m);
        assert.match(status, /^CapEff:\s+0+$/m);
        // A real transition through the sandbox: Pusher frame in, row written.
        await must("systemctl kill -s SIGUSR1 kick-sim");
        await waitFor(
          async () =>
            (await psql("SELECT status FROM streamers WHERE kick_user_id = '1'")) === "online",
          { timeoutMs: 30_000, intervalMs: 300, message: "streamer 1 online in the database" },
        );
        const events = await psql(
          "SELECT count(*) FROM status_events WHERE event_type = 'online' AND details->>'source' = 'pusher'",
        );
        assert.equal(events, "1");
        const log = await journal();
        assert.doesNotMatch(
          log,
          /EPERM|Operation not permitted|SIGSYS|status=31\/SYS|Bad system call|NotCapable|Requires \w+ access/i,
        );
        assert.equal(await prop("NRestarts"), "0", log);
      });

      await t.step("systemctl reload: same PID, the list re-read", async () => {
        const pid = await mainPid();
        // A row kickmon cannot hear about (no trigger, so no NOTIFY): only a re-read finds it.
        await psql(
          "SET session_replication_role = replica; " +
            "WITH s AS (INSERT INTO streamers (username, kick_user_id) VALUES ('sim2', '2') " +
            "RETURNING id, username, kick_user_id) INSERT INTO kickmon.streamer_state " +
            "(streamer_id, source_username, source_kick_user_id, kick_channel_id) " +
            "SELECT id, username, kick_user_id, 1002 FROM s",
        );
        await new Promise((r) => setTimeout(r, 2_000));
        assert.equal(listed(await health()), 1, "kickmon saw the row without a reload");
        await must("systemctl reload kickmon");
        await waitFor(async () => listed(await health()) === 2, {
          timeoutMs: 15_000,
          intervalMs: 300,
          message: "2 streamers after the reload",
        });
        assert.equal(await prop("MainPID"), pid);
        assert.equal(await prop("NRestarts"), "0");
        assert.match(
          await journal(),
          /SIGHUP: reloading configuration and re-reading the streamer list/,
        );
      });

      await t.step(
        "kickmon stop from a root shell: refused (exit 2), instance untouched",
        async () => {
          const pid = await mainPid();
          const invocation = await prop("InvocationID");
          const since = await prop("ExecMainStartTimestampMonotonic");
          // As an operator would type it, and pointed at the unit's state directory.
          const plain = await sh(`${OPERATOR} kickmon stop`);
          assert.equal(plain.code, 2, plain.out);
          assert.match(plain.out, /systemctl stop kickmon/);
          const direct = await sh(
            `${OPERATOR} SYSTEM_STATE_DIRECTORY=/var/lib/kickmon kickmon stop`,
          );
          assert.equal(direct.code, 2, direct.out);
          assert.match(direct.out, /systemctl stop kickmon/);
          assert.match(
            direct.out,
            new RegExp(`pid ${pid}\\) runs under systemd \\(invocation ${invocation}`),
            "refused because the PID file records the unit's invocation",
          );
          const restart = await sh(
            `${OPERATOR} SYSTEM_STATE_DIRECTORY=/var/lib/kickmon kickmon restart`,
          );
          assert.equal(restart.code, 2, restart.out);
          assert.match(restart.out, /systemctl restart kickmon/);
          // Longer than RestartSec=5s: a SIGTERM would have shown as a new process by now.
          await new Promise((r) => setTimeout(r, 6_000));
          assert.equal(await prop("MainPID"), pid);
          assert.equal(await prop("ExecMainStartTimestampMonotonic"), since);
          assert.equal(await prop("NRestarts"), "0");
          assert.equal((await health())?.pid, Number(pid));
        },
      );

      await t.step("kill -9: systemd restarts it", async () => {
        const t0 = performance.now();
        const pid = await mainPid();
        await must(`kill -9 ${pid}`);
        const next = await waitFor(async () => {
          const [state, main] = [await prop("ActiveState"), await prop("MainPID")];
          return state === "active" && main !== "0" && main !== pid ? main : null;
        }, { timeoutMs: 30_000, intervalMs: 200, message: "a new MainPID" });
        assert.equal(await prop("NRestarts"), "1");
        const h = await waitHealthy("after kill -9", 2);
        assert.equal(String(h.pid), next);
        console.log(`kill -9 → restarted (pid ${pid} → ${next}) and healthy in ${took(t0)}`);
      });

      await t.step(`systemd-analyze security kickmon: exposure <= ${MAX_EXPOSURE}`, async () => {
        const out = await must("systemd-analyze security --no-pager kickmon");
        const m = out.match(/Overall exposure level for kickmon\.service:\s*([0-9.]+)/);
        assert.ok(m, out);
        const exposure = Number(m[1]);
        console.log(`systemd-analyze security (online, in the container): ${exposure}`);
        assert.ok(exposure <= MAX_EXPOSURE, out);
      });

      await t.step("the container reboots: kickmon active again", async () => {
        const before = box.leader;
        const seconds = await box.reboot();
        assert.notEqual(box.leader, before);
        console.log(`rebooted in ${seconds.toFixed(1)} s`);
        await waitFor(
          async () => (await sh("systemctl is-active kickmon")).stdout.trim() === "active",
          {
            timeoutMs: 30_000,
            intervalMs: 200,
            message: "kickmon active after the reboot",
          },
        );
        const h = await waitHealthy("after the reboot", 2, 90_000);
        assert.equal(String(h.pid), await prop("MainPID"));
        const pidFile = await must("cat /var/lib/kickmon/kickmon.pid");
        assert.equal(pidFile, `${h.pid}\nsystemd-invocation=${await prop("InvocationID")}`);
        assert.equal(await prop("NRestarts"), "0", "a fresh boot, no restart loop");
        assert.doesNotMatch(await journal(), /SIGSYS|status=31\/SYS|Bad system call|NotCapable/);
      });
    } catch (e) {
      if (c) {
        const j = await c.sh(
          "journalctl -u kickmon -u kick-sim -o short-monotonic --no-pager -n 60",
        )
          .catch(() => null);
        if (j) console.log(`--- the container's journal (last 60 lines):\n${j.stdout}`);
      }
      throw e;
    } finally {
      const t0 = performance.now();
      await c?.stop();
      if (c) console.log(`container stopped and removed in ${took(t0)}`);
      await Deno.remove(work, { recursive: true }).catch(() => {});
      for (const [sig, fn] of signals) Deno.removeSignalListener(sig, fn);
      console.log(`systemd container test: ${took(began)}`);
    }
  },
});
