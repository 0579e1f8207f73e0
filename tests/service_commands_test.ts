/**
 * `kickmon status|stop|restart`, `streamers add|remove|test` and `db backup`
 * (src/cli/process_commands.ts, streamers_commands.ts, db_commands.ts)
 * against real processes: a `kickmon start`
 * child, the Kick simulator and a fresh test database.
 *
 * Commands run through `main.ts` once it registers them; until then through
 * this file, which doubles as a CLI entry that wires the commands exactly as
 * `main.ts` will (see the bottom of the file).
 *
 * @module
 */
import type { Sql } from "../src/db/client.ts";
import { insertStreamer } from "../src/db/streamers_repo.ts";
import assert from "node:assert/strict";
import postgres from "postgres";
import { Command, CommanderError } from "commander";
import { startSimulator } from "../dev/simulator/simulator.ts";
import { loadConfig } from "../src/config/config.ts";
import { backupFileName, pgDumpInvocation, registerDbCommands } from "../src/cli/db_commands.ts";
import { healthUrl } from "../src/cli/health_client.ts";
import { registerProcessCommands } from "../src/cli/process_commands.ts";
import { registerStreamerCommands } from "../src/cli/streamers_commands.ts";
import { EXIT, reportError } from "../src/cli/errors.ts";
import { createTestDatabase, freePort, waitFor } from "./helpers/database.ts";
import { type KickmonProcess, runKickmon, spawnKickmon } from "../dev/kickmon_process.ts";

const THIS_FILE = new URL(import.meta.url).pathname;

let wired: Promise<boolean> | undefined;
/** Whether main.ts already registers the service commands. */
function mainIsWired(): Promise<boolean> {
  // `kickmon <unknown> --help` prints the program's help (exit 0), so look for
  // the subcommands' own usage lines.
  wired ??= Promise.all([
    runKickmon(["status", "--help"], {}),
    runKickmon(["streamers", "add", "--help"], {}),
    runKickmon(["db", "backup", "--help"], {}),
  ]).then(([a, b, c]) =>
    /Usage: kickmon status/.test(a.stdout) && /Usage: kickmon streamers add/.test(b.stdout) &&
    /Usage: kickmon db backup/.test(c.stdout)
  );
  return wired;
}

/** Spawns a CLI command (main.ts when wired, else this file's entry). */
async function spawnCli(args: string[], env: Record<string, string>): Promise<KickmonProcess> {
  const viaMain = await mainIsWired();
  // spawnKickmon runs `deno run <denoArgs> <root>/main.ts <args>`; the entry
  // below drops that main.ts argument.
  return spawnKickmon(args, env, viaMain ? {} : { denoArgs: ["-A", THIS_FILE] });
}

/** Runs a CLI command to completion (60 s bound). */
async function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string }> {
  const p = await spawnCli(args, env);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`kickmon ${args.join(" ")} did not finish in 60 s:\n${p.lines.join("\n")}`));
    }, 60_000);
  });
  try {
    const st = await Promise.race([p.status, timeout]);
    return { code: st.code, out: p.lines.join("\n") };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits until the PID file names `pid`: `kickmon start` logs "kickmon started"
 * a moment before it writes the file.
 */
async function waitForPidFile(path: string, pid: number): Promise<void> {
  await waitFor(async () => (await Deno.readTextFile(path)).trim() === String(pid), {
    timeoutMs: 10_000,
    message: `${path} naming ${pid}`,
  });
}

/** Waits until `kickmon status` exits 0 (Pusher connects just after "kickmon started"). */
async function waitHealthy(env: Record<string, string>): Promise<{ code: number; out: string }> {
  return await waitFor(async () => {
    const r = await cli(["status"], env);
    return r.code === EXIT.ok ? r : null;
  }, { timeoutMs: 30_000, intervalMs: 200, message: "kickmon status exit 0" }) as {
    code: number;
    out: string;
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function hasPgDump(): Promise<boolean> {
  try {
    return (await new Deno.Command("pg_dump", { args: ["--version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

Deno.test("service commands: helpers", () => {
  assert.equal(backupFileName(new Date("2025-03-04T05:06:07Z")), "kickmon-20250304-050607.sql");
  assert.equal(healthUrl({ hostname: "0.0.0.0", port: 8080 }), "http://127.0.0.1:8080/health");
  assert.equal(healthUrl({ hostname: "::", port: 1 }), "http://[::1]:1/health");
  assert.equal(healthUrl({ hostname: "10.0.0.1", port: 9 }), "http://10.0.0.1:9/health");
  const config = loadConfig({
    DATABASE_URL: "postgres://kick'mon:s3cret-pw@db.example:6543/kick%20db",
  }, { requireKickCredentials: false });
  const { args, env } = pgDumpInvocation(config.database, "out.sql");
  assert.ok(!args.join(" ").includes("s3cret-pw"), "password never on the command line");
  assert.equal(env.PGPASSWORD, "s3cret-pw");
  assert.ok(args.includes("--file=out.sql"));
  const dbname = args.find((a) => a.startsWith("--dbname="))!;
  assert.match(dbname, /host='db\.example' port=6543 dbname='kick db' user='kick\\'mon'/);
});

Deno.test("service commands: status, stop and restart a running kickmon", async (t) => {
  const sim = await startSimulator();
  const db = await createTestDatabase();
  const state = await Deno.makeTempDir({ prefix: "kickmon-svc-state-" });
  const port = freePort();
  const env = {
    ...sim.env(),
    DATABASE_URL: db.url,
    HEALTH_CHECK_LISTEN: `127.0.0.1:${port}`,
    SYSTEM_STATE_DIRECTORY: state,
    MONITORING_RECONNECT_DELAY: "100",
    MONITORING_MAX_RECONNECT_DELAY: "300",
  };
  const pidFile = `${state}/kickmon.pid`;
  const procs: KickmonProcess[] = [];
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    assert.equal((await runKickmon(["db", "migrate"], env)).code, 0);
    const s = sim.world.add({ userId: 101, slug: "alpha", channelId: 1001 });
    await insertStreamer(sql as unknown as Sql, {
      username: s.slug,
      kickUserId: s.userId,
      kickChannelId: s.channelId,
    });

    await t.step("status before start: 3 (not running)", async () => {
      const r = await cli(["status"], env);
      assert.equal(r.code, EXIT.notRunning, r.out);
      assert.match(r.out, /not running/);
    });

    const first = spawnKickmon(["start"], env);
    procs.push(first);
    await first.waitForLine(/kickmon started/, 30_000);
    await waitForPidFile(pidFile, first.pid);

    await t.step("status: 0 (healthy), with the PID", async () => {
      const r = await waitHealthy(env);
      assert.match(r.out, new RegExp(`pid ${first.pid}.*healthy`));
      // Alone on its database it leads (issue 14).
      const role = await waitFor(async () => {
        const o = (await cli(["status"], env)).out;
        return /leadership: leader since \d\d:\d\d:\d\dZ/.test(o) ? o : null;
      }, { timeoutMs: 15_000, intervalMs: 200, message: "status says leader" });
      assert.ok(role);
      const j = await cli(["status", "--json"], env);
      assert.equal(j.code, EXIT.ok, j.out);
      assert.equal(JSON.parse(j.out).status, "healthy");
      assert.equal(JSON.parse(j.out).leadership.role, "leader");
      assert.equal(JSON.parse(j.out).leadership.leader.pid, first.pid);
    });

    await t.step("status: 1 naming pusher while Pusher refuses connections", async () => {
      sim.pusher.rejectNewConnections(4100);
      sim.pusher.dropAll();
      const bad = await waitFor(async () => {
        const r = await cli(["status"], env);
        return r.code === EXIT.failure ? r : null;
      }, { timeoutMs: 30_000, intervalMs: 200, message: "status exit 1" });
      assert.match(bad!.out, /UNHEALTHY/);
      assert.match(bad!.out, /pusher: 1 of 1 connections not connected/);
      sim.pusher.rejectNewConnections(null);
      await waitFor(async () => (await cli(["status"], env)).code === EXIT.ok, {
        timeoutMs: 30_000,
        intervalMs: 200,
        message: "status healthy again",
      });
    });

    await t.step(
      "stop under systemd (unit env, no PID file): 2, says systemctl, leaves it running",
      async () => {
        const r = await cli(["stop"], { ...env, INVOCATION_ID: "0123456789abcdef" });
        assert.equal(r.code, EXIT.usage, r.out);
        assert.match(r.out, /systemctl stop kickmon/);
        assert.equal((await cli(["status"], env)).code, EXIT.ok);
        // An instance answers on the health address but this state directory has
        // no PID file for it (e.g. systemd's /var/lib/kickmon): hands off too.
        const elsewhere = await Deno.makeTempDir({ prefix: "kickmon-svc-other-" });
        try {
          const o = await cli(["stop"], { ...env, SYSTEM_STATE_DIRECTORY: elsewhere });
          assert.equal(o.code, EXIT.usage, o.out);
          assert.match(o.out, new RegExp(`pid ${first.pid}\\) answers .* no PID file`));
        } finally {
          await Deno.remove(elsewhere, { recursive: true });
        }
      },
    );

    await t.step("stop: process exits 0, PID file gone; status then 3", async () => {
      const r = await cli(["stop"], env);
      assert.equal(r.code, EXIT.ok, r.out);
      assert.match(r.out, new RegExp(`pid ${first.pid}\\) stopped`));
      assert.equal((await first.status).code, 0);
      assert.equal(await exists(pidFile), false);
      const st = await cli(["status"], env);
      assert.equal(st.code, EXIT.notRunning, st.out);
      const again = await cli(["stop"], env);
      assert.equal(again.code, EXIT.ok, again.out);
      assert.match(again.out, /not running/);
    });

    await t.step("restart: starts in the foreground, then replaces itself", async () => {
      const a = await spawnCli(["restart"], env);
      procs.push(a);
      await a.waitForLine(/kickmon started/, 30_000);
      await waitForPidFile(pidFile, a.pid);
      assert.ok(a.lines.some((l) => /was not running.*starting in the foreground/.test(l)));
      await waitHealthy(env);
      const b = await spawnCli(["restart"], env);
      procs.push(b);
      await b.waitForLine(/kickmon started/, 30_000);
      await waitForPidFile(pidFile, b.pid);
      assert.ok(
        b.lines.some((l) => new RegExp(`pid ${a.pid}\\) stopped`).test(l)),
        b.lines.join("\n"),
      );
      assert.equal((await a.status).code, 0);
      const r = await cli(["stop"], env);
      assert.equal(r.code, EXIT.ok, r.out);
      assert.equal((await b.status).code, 0);
    });
  } finally {
    for (const p of procs) await p.stop(5_000).catch(() => {});
    await sql.end({ timeout: 1 });
    await sim.close();
    await db.drop();
    await Deno.remove(state, { recursive: true }).catch(() => {});
  }
});

Deno.test("service commands: streamers add, test, remove through the official API", async (t) => {
  const sim = await startSimulator();
  const db = await createTestDatabase();
  const env = { ...sim.env(), DATABASE_URL: db.url };
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const row = async (username: string) =>
    (await sql<{ kick_user_id: string | null; kick_channel_id: string | null }[]>`
      SELECT s.kick_user_id, k.kick_channel_id::text AS kick_channel_id
      FROM streamers s LEFT JOIN kickmon.streamer_state k ON k.streamer_id = s.id
      WHERE lower(s.username) = lower(${username})`)[0];
  try {
    assert.equal((await runKickmon(["db", "migrate"], env)).code, 0);
    sim.world.add({ userId: 2570626, slug: "bossmanjack", channelId: 2515504, live: true });
    sim.world.add({ userId: 777, slug: "sleepy", channelId: 7770 });

    await t.step("test: live streamer shows user id, is_live and channel id", async () => {
      const r = await cli(["streamers", "test", "bossmanjack"], env);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /user id:\s+2570626/);
      assert.match(r.out, /is_live:\s+true/);
      assert.match(r.out, /channel id:\s+2515504/);
      const off = await cli(["streamers", "test", "sleepy", "--json"], env);
      assert.equal(off.code, 0, off.out);
      const j = JSON.parse(off.out);
      assert.equal(j.userId, 777);
      assert.equal(j.isLive, false);
      assert.equal(j.channelId, null);
    });

    await t.step("test/add: unknown channel is a clear error, exit 1", async () => {
      for (const cmd of ["test", "add"]) {
        const r = await cli(["streamers", cmd, "nosuchstreamer"], env);
        assert.equal(r.code, 1, r.out);
        assert.match(r.out, /Kick has no channel "nosuchstreamer"/);
      }
      assert.equal(await row("nosuchstreamer"), undefined);
      const bad = await cli(["streamers", "add", "not a name"], env);
      assert.equal(bad.code, 2, bad.out);
    });

    await t.step("add: resolves ids; channel id filled while live", async () => {
      const r = await cli(["streamers", "add", "bossmanjack"], env);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /added bossmanjack as #\d+: user id 2570626, channel id 2515504/);
      assert.deepEqual(await row("bossmanjack"), {
        kick_user_id: "2570626",
        kick_channel_id: "2515504",
      });
      const off = await cli(["streamers", "add", "Sleepy"], env);
      assert.equal(off.code, 0, off.out);
      assert.deepEqual(await row("sleepy"), { kick_user_id: "777", kick_channel_id: null });
      const dup = await cli(["streamers", "add", "bossmanjack"], env);
      assert.equal(dup.code, 1, dup.out);
      assert.match(dup.out, /already in the list/);
    });

    await t.step("remove: deletes the row; unknown name exits 1", async () => {
      const r = await cli(["streamers", "remove", "bossmanjack"], env);
      assert.equal(r.code, 0, r.out);
      assert.equal(await row("bossmanjack"), undefined);
      const again = await cli(["streamers", "remove", "bossmanjack"], env);
      assert.equal(again.code, 1, again.out);
      assert.match(again.out, /no streamer named "bossmanjack"/);
    });
  } finally {
    await sql.end({ timeout: 1 });
    await sim.close();
    await db.drop();
  }
});

const PG_DUMP_INSTALLED = await hasPgDump();
if (!PG_DUMP_INSTALLED) {
  console.log(
    "db backup test ignored: pg_dump is not installed (apt-get install postgresql-client)",
  );
}

Deno.test({
  name: "service commands: db backup writes a timestamped pg_dump file",
  ignore: !PG_DUMP_INSTALLED,
  fn: async () => {
    const db = await createTestDatabase();
    const out = await Deno.makeTempDir({ prefix: "kickmon-backup-" });
    try {
      const env = { DATABASE_URL: db.url };
      assert.equal((await runKickmon(["db", "migrate"], env)).code, 0);
      const r = await cli(["db", "backup", "--output", out], env);
      assert.equal(r.code, 0, r.out);
      const files = [...Deno.readDirSync(out)].map((e) => e.name);
      assert.equal(files.length, 1, files.join(", "));
      assert.match(files[0], /^kickmon-\d{8}-\d{6}\.sql$/);
      assert.match(r.out, new RegExp(`backup written to ${out}/${files[0]}`));
      const dump = await Deno.readTextFile(`${out}/${files[0]}`);
      assert.match(dump, /CREATE TABLE public\.streamers/);
      // Every row of the database: readable by its owner only, whatever the umask.
      assert.equal((await Deno.stat(`${out}/${files[0]}`)).mode! & 0o777, 0o600);

      // Without --output: <state directory>/backups, which the binary may write.
      const state = await Deno.makeTempDir({ prefix: "kickmon-backup-state-" });
      try {
        const d = await cli(["db", "backup"], { ...env, SYSTEM_STATE_DIRECTORY: state });
        assert.equal(d.code, 0, d.out);
        const [name] = [...Deno.readDirSync(`${state}/backups`)].map((e) => e.name);
        assert.match(name, /^kickmon-\d{8}-\d{6}\.sql$/);
        assert.equal((await Deno.stat(`${state}/backups/${name}`)).mode! & 0o777, 0o600);
        assert.equal((await Deno.stat(`${state}/backups`)).mode! & 0o777, 0o700);
      } finally {
        await Deno.remove(state, { recursive: true });
      }

      const empty = await Deno.makeTempDir({ prefix: "kickmon-nopath-" });
      try {
        // Its own --output: a run in the same second as the first would name the same file.
        const missing = await cli(["db", "backup", "--output", empty], { ...env, PATH: empty });
        assert.equal(missing.code, 1, missing.out);
        assert.match(missing.out, /pg_dump is not installed/);
      } finally {
        await Deno.remove(empty, { recursive: true });
      }
    } finally {
      await db.drop();
      await Deno.remove(out, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------
// CLI entry used until main.ts registers the commands (see the module doc):
// the same wiring main.ts gets, on a program with main.ts's error handling.
if (import.meta.main) {
  const args = Deno.args[0]?.endsWith("/main.ts") ? Deno.args.slice(1) : Deno.args;
  let code: number = EXIT.ok;
  const setExit = (c: number) => (code = c);
  const program = new Command().name("kickmon").exitOverride();
  registerProcessCommands(program, setExit);
  registerStreamerCommands(program, setExit);
  registerDbCommands(program, setExit);
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (e) {
    code = e instanceof CommanderError
      ? (e.code.startsWith("commander.help") || e.code === "commander.version" ? 0 : EXIT.usage)
      : reportError(e);
  }
  Deno.exit(code);
}
