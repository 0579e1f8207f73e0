/**
 * The shipped artefact under its real permissions: builds `deno bundle`'s
 * single file (what `deno task compile` turns into the binary), then runs it
 * with `deno run --no-config` from an EMPTY `DENO_DIR` with exactly
 * `permissionFlags()` (scripts/permissions.ts) — the test database and the
 * Kick simulator substituted for the build-time hosts — for `db migrate`,
 * `config validate`, `streamers list` and a real `start` that follows a
 * streamer going live. Any permission the code needs but the flags lack
 * fails here (no `-A` anywhere on the kickmon side).
 *
 * @module
 */
import type { Sql } from "../src/db/client.ts";
import { insertStreamer } from "../src/db/streamers_repo.ts";
import assert from "node:assert/strict";
import postgres from "postgres";
import { type KickmonProcess, spawnProcess } from "../dev/kickmon_process.ts";
import { bundleArgs, compileArgs, stampBundle } from "../scripts/build.ts";
import {
  defaultKickHosts,
  IGNORED_ENV_VARIABLES,
  permissionFlags,
  type PermissionOptions,
  PermissionOptionsError,
  permissionOptionsFromConfig,
  permissionOptionsFromEnv,
  RUNTIME_ENV_VARIABLES,
} from "../scripts/permissions.ts";
import { startSimulator } from "../dev/simulator/simulator.ts";
import { createTestDatabase, freePort, waitFor } from "./helpers/database.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** A child with its output lines, from the shared helper (no inherited environment). */
function spawn(cmd: string, args: string[], env: Record<string, string>, cwd: string) {
  return spawnProcess(cmd, args, env, { cwd });
}

/** Names read as `env.NAME` / `env["NAME"]` / `Deno.env.get("NAME")` in JavaScript source. */
function envReads(js: string): Set<string> {
  const names = new Set<string>();
  for (const m of js.matchAll(/\benv\.([A-Z_][A-Z0-9_]*)\b/g)) names.add(m[1]);
  for (const m of js.matchAll(/\benv\[["']([A-Z_][A-Z0-9_]*)["']\]/g)) names.add(m[1]);
  for (const m of js.matchAll(/Deno\.env\.get\(["']([A-Za-z_][A-Za-z0-9_]*)["']\)/g)) {
    names.add(m[1]);
  }
  // postgres.js: env["PG" + k.toUpperCase()] over the keys of its `defaults`.
  const dyn = js.indexOf('env["PG" + k.toUpperCase()]');
  if (dyn >= 0) {
    const start = js.lastIndexOf("const defaults = {", dyn);
    const end = js.indexOf("};", start);
    assert.ok(start >= 0 && end > start, "postgres.js defaults object not found");
    for (const m of js.slice(start, end).matchAll(/^\s*([a-z_]+)[,:]/gm)) {
      names.add(`PG${m[1].toUpperCase()}`);
    }
  }
  return names;
}

Deno.test("permissions: defaults come from config.ts; every grant is scoped", () => {
  assert.deepEqual(defaultKickHosts(), [
    "id.kick.com:443",
    "api.kick.com:443",
    "kick.com:443",
    "ws-us2.pusher.com:443",
  ]);
  const flags = permissionFlags(permissionOptionsFromEnv({
    KICKMON_DB_HOST: "db.internal:5432",
    KICKMON_EXTRA_HOSTS: "proxy.example:3128",
    KICKMON_LISTEN: "0.0.0.0:9090",
    KICKMON_STATE_DIR: "/srv/kickmon",
  }));
  const get = (name: string) => flags.find((f) => f.startsWith(`--${name}=`))?.split("=")[1];
  assert.equal(
    get("allow-net"),
    "id.kick.com:443,api.kick.com:443,kick.com:443,ws-us2.pusher.com:443,proxy.example:3128," +
      "db.internal:5432,0.0.0.0:9090,127.0.0.1:9090",
  );
  assert.equal(get("allow-write"), "/var/lib/kickmon,/srv/kickmon");
  assert.equal(get("allow-run"), "/usr/bin/pg_dump,/usr/bin/kill,/bin/kill");
  assert.equal(get("allow-sys"), "hostname"); // the leader's identity (issue 14), nothing else
  assert.ok(flags.includes("--no-prompt"));
  for (const f of flags) assert.ok(f === "--no-prompt" || /^--[a-z-]+=.+/.test(f), f);
  assert.throws(() => permissionFlags({ databaseHosts: ["db:5432/x"] }), PermissionOptionsError);
  assert.throws(() => permissionFlags({ stateDirectories: ["state"] }), PermissionOptionsError);
});

Deno.test("bundle: runs migrate, validate and start under exactly the compile flags", async (t) => {
  const work = await Deno.makeTempDir({ prefix: "kickmon-bundle-" });
  const bundle = `${work}/kickmon.js`;
  const denoDir = `${work}/deno-dir`;
  const state = `${work}/state`;
  await Deno.mkdir(denoDir);
  const sim = await startSimulator();
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const procs: KickmonProcess[] = [];
  const dbUrl = new URL(db.url);
  const healthPort = freePort();
  const api = new URL(sim.api.origin);
  const options: PermissionOptions = {
    kickHosts: [api.host, `${sim.pusher.hostname}:${sim.pusher.port}`],
    databaseHosts: [dbUrl.host],
    listenAddresses: [`127.0.0.1:${healthPort}`],
    stateDirectories: [state],
  };
  try {
    await t.step("deno bundle", async () => {
      const t0 = performance.now();
      const out = await new Deno.Command(Deno.execPath(), {
        args: bundleArgs(bundle),
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const size = (await Deno.stat(bundle)).size;
      console.log(
        `bundle: ${(size / 1e6).toFixed(2)} MB in ${Math.round(performance.now() - t0)} ms`,
      );
      const js = await Deno.readTextFile(bundle);
      assert.match(js, /CREATE TABLE streamers/, "migrations are inlined");
      // dev/ (simulator, throwaway cluster, demo) is never imported by src/.
      assert.doesNotMatch(js, /startSimulator|startThrowawayCluster|kickmon demo/, "no dev/ code");
      // What the build allows goes into the bundle (scripts/build.ts does this after bundling).
      await stampBundle(bundle, options);
      assert.match(await Deno.readTextFile(bundle), /^globalThis\[Symbol\.for\("kickmon\./);
    });

    await t.step("every environment variable the bundle reads is granted or ignored", async () => {
      const js = await Deno.readTextFile(bundle);
      const known = new Set([
        ...RUNTIME_ENV_VARIABLES,
        ...IGNORED_ENV_VARIABLES,
      ]);
      const unknown = [...envReads(js)].filter((n) => !known.has(n));
      assert.deepEqual(
        unknown,
        [],
        "add these to RUNTIME_ENV_VARIABLES or IGNORED_ENV_VARIABLES in scripts/permissions.ts",
      );
    });

    const flags = permissionFlags(options);
    assert.ok(!flags.some((f) => /^(-A|--allow-all|--allow-[a-z]+)$/.test(f)), flags.join(" "));
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      DENO_DIR: denoDir,
      NO_COLOR: "1",
      ...sim.env(),
      DATABASE_URL: db.url,
      HEALTH_CHECK_LISTEN: `127.0.0.1:${healthPort}`,
      SYSTEM_STATE_DIRECTORY: state,
      // Probed by postgres.js: must read as unset, not crash.
      PGHOST: "should-be-ignored.invalid",
      PGPASSWORD: "should-be-ignored",
    };
    const run = (args: string[], extra: Record<string, string> = {}) =>
      spawn(Deno.execPath(), ["run", "--no-config", ...flags, bundle, ...args], {
        ...env,
        ...extra,
      }, work);
    const runToEnd = async (args: string[], extra: Record<string, string> = {}) => {
      const p = run(args, extra);
      procs.push(p);
      const st = await p.status;
      return { code: st.code, out: p.lines.join("\n") };
    };

    await t.step("db migrate, config validate, streamers list", async () => {
      const m = await runToEnd(["db", "migrate"]);
      assert.equal(m.code, 0, m.out);
      assert.match(
        m.out,
        /applied: schema, tables, 001_state, 002_webhook_messages, 003_channel_id_source, 004_livestream_guard, 005_generic_plan, list_trigger/,
      );
      const v = await runToEnd(["config", "validate"]);
      assert.equal(v.code, 0, v.out);
      assert.match(v.out, /configuration ok/);
      const l = await runToEnd(["streamers", "list"]);
      assert.equal(l.code, 0, l.out);
    });

    await t.step("start: follows a streamer going live; stop/SIGTERM exits 0", async () => {
      const s = sim.world.add({ userId: 4242, slug: "bundled", channelId: 42420 });
      await insertStreamer(sql as unknown as Sql, {
        username: s.slug,
        kickUserId: s.userId,
        kickChannelId: s.channelId,
      });
      const t0 = performance.now();
      const p = run(["start"]);
      procs.push(p);
      await p.waitForLine(/kickmon started/, 30_000);
      console.log(`start: "kickmon started" after ${Math.round(performance.now() - t0)} ms`);
      assert.equal((await Deno.readTextFile(`${state}/kickmon.pid`)).trim().length > 0, true);
      const health = await fetch(`http://127.0.0.1:${healthPort}/health`);
      assert.equal(health.status, 200, await health.clone().text());
      await health.body?.cancel();
      sim.world.setLive(s.userId, true);
      await waitFor(
        async () =>
          (await sql`SELECT status FROM streamers WHERE kick_user_id = ${s.userId}`)[0]
            ?.status === "online",
        { timeoutMs: 30_000, intervalMs: 100, message: "streamer online" },
      );
      const wired = /Usage: kickmon status/.test((await runToEnd(["status", "--help"])).out);
      if (wired) {
        // The operator commands (src/cli/process_commands.ts, …) under the same flags.
        await waitFor(async () => (await runToEnd(["status"])).code === 0, {
          timeoutMs: 30_000,
          intervalMs: 200,
          message: "status exit 0",
        });
        const test = await runToEnd(["streamers", "test", s.slug]);
        assert.equal(test.code, 0, test.out);
        assert.match(test.out, /user id:\s+4242/);
        // Under the state directory: the only place this build may create files.
        const backup = await runToEnd(["db", "backup"]);
        assert.ok(
          backup.code === 0 || /pg_dump is not installed/.test(backup.out),
          backup.out,
        );
        if (backup.code === 0) {
          const [name] = [...Deno.readDirSync(`${state}/backups`)].map((e) => e.name);
          assert.equal((await Deno.stat(`${state}/backups/${name}`)).mode! & 0o777, 0o600);
        }
        const stop = await runToEnd(["stop"]);
        assert.equal(stop.code, 0, stop.out);
        assert.match(stop.out, /stopped/);
      } else {
        console.log("main.ts does not register the service commands yet: stopping with SIGTERM");
        p.kill("SIGTERM");
      }
      const st = await p.status;
      assert.equal(st.code, 0, p.lines.join("\n"));
      const out = p.lines.join("\n");
      assert.doesNotMatch(out, /NotCapable|Requires \w+ access/);
    });

    await t.step("settings the build does not allow: exit 2, in kickmon's words", async () => {
      const otherPort = freePort();
      const movedDb = new URL(db.url);
      movedDb.port = String(otherPort);
      const cli = await runToEnd(["streamers", "remove", "nobody"], {
        DATABASE_URL: movedDb.href,
      });
      assert.equal(cli.code, 2, cli.out);
      assert.match(
        cli.out,
        new RegExp(
          `this kickmon build may not connect to 127\\.0\\.0\\.1:${otherPort}, the database`,
        ),
      );
      assert.match(cli.out, new RegExp(`built to allow connecting to ${dbUrl.host}`));
      assert.match(cli.out, new RegExp(`KICKMON_DB_HOST=127\\.0\\.0\\.1:${otherPort}`));
      assert.doesNotMatch(cli.out, /run again with the --allow-net flag/);

      const listen = await runToEnd(["start"], { HEALTH_CHECK_LISTEN: `127.0.0.1:${otherPort}` });
      assert.equal(listen.code, 2, listen.out);
      assert.match(
        listen.out,
        new RegExp(
          `may not listen on 127\\.0\\.0\\.1:${otherPort}, the health endpoint ` +
            `\\(HEALTH_CHECK_LISTEN\\); it was built to allow listening on 127\\.0\\.0\\.1:${healthPort}`,
        ),
      );
      assert.match(listen.out, /KICKMON_LISTEN=/);
      assert.doesNotMatch(listen.out, /--allow-net flag/);
    });

    await t.step("without SYSTEM_STATE_DIRECTORY: the build's own state directory", async () => {
      const noState = { ...env };
      delete noState.SYSTEM_STATE_DIRECTORY;
      const p = spawn(
        Deno.execPath(),
        ["run", "--no-config", ...flags, bundle, "start"],
        noState,
        work,
      );
      procs.push(p);
      await p.waitForLine(/kickmon started/, 30_000);
      assert.match(await Deno.readTextFile(`${state}/kickmon.pid`), /^\d+\n$/);
      p.kill("SIGTERM");
      assert.equal((await p.status).code, 0, p.lines.join("\n"));
      assert.doesNotMatch(p.lines.join("\n"), /NotCapable|Requires \w+ access|\.\/state/);
    });

    await t.step("deno compile accepts the same flags", async () => {
      // Without a real denort (DENORT_BIN) the deno binary stands in: the
      // result is not a kickmon binary and is not run, but deno compile has
      // parsed every flag and embedded the bundle.
      const denort = Deno.env.get("DENORT_BIN");
      const binary = `${work}/kickmon`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: compileArgs({ output: binary, bundle, permissions: flags }),
        cwd: work,
        env: { DENORT_BIN: denort ?? Deno.execPath() },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      if (denort) {
        const v = await new Deno.Command(binary, {
          args: ["config", "validate"],
          env,
          clearEnv: true,
          stdout: "piped",
          stderr: "piped",
        }).output();
        assert.ok(v.success, new TextDecoder().decode(v.stderr));
      }
      await Deno.remove(binary);
    });
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

Deno.test("deno task kickmon: the database and listen addresses come from the configuration", async () => {
  assert.deepEqual(
    permissionOptionsFromConfig({ DATABASE_URL: "postgres://k@db.internal:6432/k" }).databaseHosts,
    ["db.internal:6432"],
  );
  assert.deepEqual(permissionOptionsFromConfig({ DATABASE_PORT: "5433" }).databaseHosts, [
    "localhost:5433",
    "127.0.0.1:5433",
    "[::1]:5433",
  ]);
  const fromConfig = permissionOptionsFromConfig({ HEALTH_CHECK_LISTEN: "0.0.0.0:9100" });
  assert.deepEqual(fromConfig.listenAddresses, ["0.0.0.0:9100", "127.0.0.1:8081"]);

  // For real: scripts/run.ts with the narrow flags, a database on a random port.
  const db = await createTestDatabase();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-env",
        "--allow-read",
        "--allow-run=deno",
        `${ROOT}scripts/run.ts`,
        "streamers",
        "remove",
        "nobody",
      ],
      cwd: await Deno.makeTempDir({ prefix: "kickmon-task-" }),
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", NO_COLOR: "1", DATABASE_URL: db.url },
      clearEnv: true,
      stdin: "null",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    // It reached the database (a fresh one, not set up yet: exit 2): not a refused permission.
    assert.equal(out.code, 2, stderr);
    assert.match(stderr, /not set up for kickmon yet/);
    assert.doesNotMatch(stderr, /may not connect|Requires net access/);
  } finally {
    await db.drop();
  }
});
