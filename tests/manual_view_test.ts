/**
 * The live view (`kickmon start --manual`) and `deno task demo`, used the way
 * a person uses them: a real kickmon process in a real terminal (tmux),
 * keys typed with `send-keys`, the screen read with `capture-pane`, against
 * the Kick simulator and a real PostgreSQL.
 *
 * Needs tmux (CI installs it); those tests are ignored, saying so, without it.
 */
import { insertStreamer } from "../src/db/streamers_repo.ts";
import assert from "node:assert/strict";
import postgres from "postgres";
import type { Sql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { isPgServerInstalled } from "../dev/pg_cluster.ts";
import { startSimulator } from "../dev/simulator/simulator.ts";
import { NOT_A_TERMINAL_MESSAGE } from "../src/cli/manual.ts";
import { createTestDatabase, waitFor } from "./helpers/database.ts";
import { baseEnv, runKickmon, spawnKickmon, spawnProcess } from "../dev/kickmon_process.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

function hasTmux(): boolean {
  try {
    return new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}
const TMUX = hasTmux();
const NO_TMUX = TMUX ? "" : " [IGNORED: tmux is not installed; apt-get install -y tmux]";
const NO_PG = isPgServerInstalled() ? "" : " [IGNORED: no PostgreSQL server binaries]";

/** What `deno task demo` runs (a dev tool of its own, not a command of the binary). */
const DEMO_ENTRY = [`${ROOT}dev/demo.ts`];

/** Shell-quotes one word. */
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * One detached tmux session on a private tmux server (its own socket, no
 * user config) running one command with exactly the given environment.
 */
class TmuxSession {
  readonly socket = `kickmon-test-${crypto.randomUUID().slice(0, 8)}`;
  readonly name = "view";
  readonly codeFile: string;

  private constructor(readonly dir: string) {
    this.codeFile = `${dir}/exit-code`;
  }

  /** Starts `deno run -A <args>` in a `width`×`height` terminal. */
  static async start(
    args: string[],
    env: Record<string, string>,
    size: { width: number; height: number },
  ): Promise<TmuxSession> {
    const dir = await Deno.makeTempDir({ prefix: "kickmon-tmux-" });
    const s = new TmuxSession(dir);
    const envWords = Object.entries({ ...baseEnv(), TERM: "tmux-256color", ...env })
      .map(([k, v]) => q(`${k}=${v}`));
    const cmd = `cd ${q(ROOT)} && env -i ${envWords.join(" ")} ${q(Deno.execPath())} run -A ${
      args.map(q).join(" ")
    }; echo $? > ${q(s.codeFile)}`;
    await s.tmux(
      "new-session",
      "-d",
      "-s",
      s.name,
      "-x",
      String(size.width),
      "-y",
      String(size.height),
      cmd,
    );
    return s;
  }

  async tmux(...args: string[]): Promise<{ ok: boolean; out: string }> {
    const r = await new Deno.Command("tmux", {
      args: ["-L", this.socket, "-f", "/dev/null", ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { ok: r.success, out: new TextDecoder().decode(r.stdout) };
  }

  /** The screen as text (`escapes`: with colour/attribute sequences; `join`: wrapped lines joined). */
  async capture(opts: { escapes?: boolean; join?: boolean } = {}): Promise<string> {
    const r = await this.tmux(
      "capture-pane",
      "-p",
      ...(opts.escapes ? ["-e"] : []),
      ...(opts.join ? ["-J"] : []),
      "-t",
      this.name,
    );
    return r.out;
  }

  /** Waits until the screen matches; returns it. The error shows the last screen. */
  async waitForScreen(re: RegExp, timeoutMs = 10_000, what = String(re)): Promise<string> {
    let last = "";
    try {
      return await waitFor(async () => {
        last = await this.capture();
        return re.test(last) ? last : "";
      }, { timeoutMs, intervalMs: 100, message: what });
    } catch (e) {
      throw new Error(`${(e as Error).message}; the screen was:\n${last}`, { cause: e });
    }
  }

  async keys(...keys: string[]): Promise<void> {
    await this.tmux("send-keys", "-t", this.name, ...keys);
  }

  async alive(): Promise<boolean> {
    return (await this.tmux("has-session", "-t", this.name)).ok;
  }

  /** Waits for the program to end (the session closes) and returns its exit code. */
  async exitCode(timeoutMs = 30_000): Promise<number> {
    await waitFor(async () => !(await this.alive()), {
      timeoutMs,
      intervalMs: 100,
      message: "the tmux session to end",
    });
    return Number((await Deno.readTextFile(this.codeFile)).trim());
  }

  async dispose(): Promise<void> {
    await this.tmux("kill-server");
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** Lines of a capture without the trailing blank ones. */
const screenLines = (s: string) => s.replace(/\n+$/, "").split("\n");
/** Display columns of a captured line (everything the view draws is 1 column per code point). */
const columns = (line: string) => [...line].length;

/** Directories in `dir` (names), for "nothing left behind". */
async function entries(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** Processes whose command line mentions `text` (e.g. a postgres of a temp dir). */
async function processesMentioning(text: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    try {
      const cmd = (await Deno.readTextFile(`/proc/${e.name}/cmdline`)).replaceAll("\0", " ");
      if (cmd.includes(text)) out.push(`${e.name}: ${cmd}`);
    } catch { /* gone */ }
  }
  return out;
}

/** The simulator, a migrated database and one streamer, for `start --manual`. */
async function setup(slug: string, ids: { userId: number; channelId: number }) {
  const sim = await startSimulator();
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  await migrate(sql as unknown as Sql, { appSchema: "public" });
  const s = sim.world.add({ userId: ids.userId, slug, channelId: ids.channelId });
  await insertStreamer(sql as unknown as Sql, {
    username: slug,
    kickUserId: ids.userId,
    kickChannelId: ids.channelId,
    status: "offline",
  });
  const stateDir = await Deno.makeTempDir({ prefix: "kickmon-view-state-" });
  const env = {
    ...sim.env(),
    DATABASE_URL: db.url,
    SYSTEM_STATE_DIRECTORY: stateDir,
    HEALTH_CHECK_ENABLED: "false",
    MONITORING_RESYNC_INTERVAL: "3600",
    MANUAL_MODE_REFRESH_RATE: "200",
  };
  return {
    sim,
    s,
    sql,
    env,
    stateDir,
    async close() {
      await sql.end({ timeout: 2 });
      await db.drop();
      await sim.close();
      await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    },
  };
}

Deno.test({
  name: "manual view: live status, keys, help, clean quit in a 100x30 terminal" + NO_TMUX,
  ignore: !TMUX,
  async fn() {
    const t = await setup("tmuxstreamer", { userId: 9_200_001, channelId: 2_600_017 });
    let tmux: TmuxSession | undefined;
    try {
      tmux = await TmuxSession.start(["main.ts", "start", "--manual"], t.env, {
        width: 100,
        height: 30,
      });
      const row = (status: string) => new RegExp(`^tmuxstreamer\\s+${status}\\s`, "m");
      const first = await tmux.waitForScreen(row("offline"), 30_000, "the streamer row");
      // The role follows the title (issue 14): alone on its state directory, it leads.
      assert.match(
        first,
        /^kickmon live view {2}(?:leader|role unknown) {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/m,
      );
      await tmux.waitForScreen(/^kickmon live view {2}leader {2}/m, 10_000, "the role: leader");
      assert.match(first, /Database up/);
      assert.match(first, new RegExp(`logs: ${t.stateDir}/kickmon-manual\\.log`));
      await waitFor(() => t.sim.pusher.subscriberCount("channel.2600017") === 1, {
        timeoutMs: 15_000,
        message: "kickmon subscribed to channel.2600017",
      });
      await tmux.waitForScreen(/Pusher: #0 connected 1 ch/, 5_000);

      t.sim.world.setLive(t.s.userId, true);
      const live = await tmux.waitForScreen(row("online"), 5_000, "online within 5 s");
      assert.match(live, /Streamers 1: 1 online · 0 offline · 0 unknown/);
      assert.match(live, /tmuxstreamer\s+online\s+\d\d-\d\d \d\d:\d\d:\d\d\s+(just now|\d+s ago)/);
      assert.match(live, /tmuxstreamer\s+offline → online\s+pusher/);
      const colored = await tmux.capture({ escapes: true });
      assert.ok(colored.includes("\x1b["), "colour is on without NO_COLOR");

      t.sim.world.setLive(t.s.userId, false);
      const off = await tmux.waitForScreen(row("offline"), 5_000, "offline within 5 s");
      assert.match(off, /tmuxstreamer\s+online\s+→ offline\s+pusher/);
      assert.ok(!/"level"|INFO|kickmon started/.test(off), "no log line is drawn on the view");

      await tmux.keys("u");
      await tmux.waitForScreen(/sort: username$/m, 3_000);
      await tmux.keys("u");
      await tmux.waitForScreen(/sort: username \(reversed\)$/m, 3_000);
      await tmux.keys("t");
      await tmux.waitForScreen(/sort: last update$/m, 3_000);
      await tmux.keys("s");
      await tmux.waitForScreen(/sort: status$/m, 3_000);
      await tmux.keys("h");
      const help = await tmux.waitForScreen(/kickmon live view: keys/, 3_000, "the help");
      assert.match(help, /q, Ctrl-C\s+quit \(clean shutdown\)/);
      assert.match(help, /t\s+sort by last update/);
      await tmux.keys("h");
      await tmux.waitForScreen(row("offline"), 3_000, "the table after closing the help");
      await tmux.keys("c");
      await tmux.waitForScreen(/\(cleared\)/, 3_000, "recent changes cleared");
      await tmux.keys("r");
      await tmux.keys("q");
      assert.equal(await tmux.exitCode(), 0, "q exits 0");
      assert.equal(await tmux.alive(), false, "the tmux session ended");

      const log = await Deno.readTextFile(`${t.stateDir}/kickmon-manual.log`);
      assert.match(log, /kickmon started/);
      assert.match(log, /kickmon stopped/);
      const [r] = await t.sql`SELECT status FROM streamers WHERE username = 'tmuxstreamer'`;
      assert.equal(r.status, "offline");
    } finally {
      await tmux?.dispose();
      await t.close();
    }
  },
});

Deno.test({
  name: "manual view: NO_COLOR and a 40-column terminal (nothing wraps), then a resize" + NO_TMUX,
  ignore: !TMUX,
  async fn() {
    const slug = "a_rather_long_streamer_name_for_narrow_terminals";
    const t = await setup(slug, { userId: 9_200_002, channelId: 2_600_029 });
    let tmux: TmuxSession | undefined;
    try {
      tmux = await TmuxSession.start(
        ["main.ts", "start", "--manual"],
        { ...t.env, NO_COLOR: "1" },
        { width: 40, height: 20 },
      );
      const screen = await tmux.waitForScreen(/^a_rather_long\S*…\s+offline\s/m, 30_000, "the row");
      assert.ok(!screen.includes("LAST CHANGE"), "the last-change column is dropped at 40 columns");
      await waitFor(() => t.sim.pusher.subscriberCount("channel.2600029") === 1, {
        timeoutMs: 15_000,
        message: "kickmon subscribed",
      });
      t.sim.world.setLive(t.s.userId, true);
      await tmux.waitForScreen(/^a_rather_long\S*…\s+online\s/m, 5_000, "online");

      const escaped = await tmux.capture({ escapes: true });
      assert.ok(!escaped.includes("\x1b["), `NO_COLOR: no escape on screen:\n${escaped}`);
      const joined = screenLines(await tmux.capture({ join: true }));
      assert.ok(joined.length <= 20, `${joined.length} lines`);
      for (const line of joined) {
        assert.ok(columns(line) <= 40, `line longer than 40 columns: ${JSON.stringify(line)}`);
      }
      assert.ok(joined.some((l) => l.startsWith("logs: …")), "the log path is cut from the left");

      await tmux.tmux("resize-window", "-t", tmux.name, "-x", "70", "-y", "24");
      const wide = await tmux.waitForScreen(/LAST CHANGE/, 5_000, "the wider layout");
      for (const line of screenLines(wide)) assert.ok(columns(line) <= 70, line);

      await tmux.keys("C-c");
      assert.equal(await tmux.exitCode(), 0, "Ctrl-C exits 0");
    } finally {
      await tmux?.dispose();
      await t.close();
    }
  },
});

Deno.test({
  name: "manual view: its log file on a full disk (/dev/full) costs no CPU; q still quits" +
    NO_TMUX,
  ignore: !TMUX,
  async fn() {
    const t = await setup("fulldisk", { userId: 9_200_003, channelId: 2_600_031 });
    let tmux: TmuxSession | undefined;
    try {
      // Every write to the log file fails with ENOSPC, as on a full disk.
      await Deno.symlink("/dev/full", `${t.stateDir}/kickmon-manual.log`);
      tmux = await TmuxSession.start(
        ["main.ts", "start", "--manual"],
        { ...t.env, SYSTEM_LOG_LEVEL: "debug", MONITORING_RECONCILE_INTERVAL: "1" },
        { width: 120, height: 30 },
      );
      await tmux.waitForScreen(/^fulldisk\s+offline\s/m, 30_000, "the streamer row");
      const screen = await tmux.waitForScreen(
        /not written: No space left on device/,
        10_000,
        "the footer naming the failing log file",
      );
      assert.match(screen, /logs: .*kickmon-manual\.log/);
      const pid = Number((await Deno.readTextFile(`${t.stateDir}/kickmon.pid`)).trim());
      const usage = async () => {
        const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return (Number(f[11]) + Number(f[12])) / 100; // CLK_TCK = 100
      };
      const before = await usage();
      const t0 = performance.now();
      t.sim.world.setLive(t.s.userId, true);
      await tmux.waitForScreen(/^fulldisk\s+online\s/m, 10_000, "online while logging fails");
      await new Promise((r) => setTimeout(r, 4_000));
      const share = (await usage() - before) / ((performance.now() - t0) / 1000);
      console.log(`log file on /dev/full: kickmon CPU ${(share * 100).toFixed(1)} % of a core`);
      assert.ok(share < 0.5, `CPU ${(share * 100).toFixed(1)} % of a core`);
      await tmux.keys("q");
      assert.equal(await tmux.exitCode(30_000), 0, "q exits 0");
    } finally {
      await tmux?.dispose();
      await t.close();
    }
  },
});

Deno.test("manual view: without a terminal, start --manual says so and exits 2", async () => {
  const r = await runKickmon(["start", "--manual"], {});
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim(), NOT_A_TERMINAL_MESSAGE);
  assert.ok(r.stderr.includes("--manual needs a terminal"));
});

/** Runs `deno run -A <args>` collecting output lines (the demo's stdout is JSON log lines). */
function spawn(args: string[], env: Record<string, string>) {
  const p = spawnProcess(Deno.execPath(), ["run", "-A", ...args], {
    ...baseEnv(),
    NO_COLOR: "1",
    ...env,
  });
  return { ...p, done: p.status };
}

Deno.test({
  name: "demo --no-view: streamers change state within seconds; nothing is left behind" + NO_PG,
  ignore: !!NO_PG,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "kickmon-demo-test-" });
    await Deno.chmod(tmp, 0o1777); // like /tmp: as root, the cluster runs as `postgres`
    const p = spawn([...DEMO_ENTRY, "--no-view"], { TMPDIR: tmp });
    try {
      const transitions = await Promise.race([
        waitFor(() => {
          const t = p.logs().filter((l) => l.logger === "kickmon.demo" && l.source === "pusher");
          return t.length >= 3 ? t : undefined;
        }, { timeoutMs: 45_000, intervalMs: 100, message: "3 live/offline changes via Pusher" }),
        p.done.then((s) => {
          throw new Error(`the demo exited early with code ${s.code}`);
        }),
      ]).catch((e) => {
        throw new Error(`${e.message}; output:\n${p.lines.slice(-30).join("\n")}`);
      });
      for (const t of transitions ?? []) assert.match(String(t.to), /^(online|offline)$/);
      const made = await entries(tmp);
      assert.ok(made.some((n) => n.startsWith("kickmon-pg-")), `a cluster dir: ${made}`);
      assert.ok(made.some((n) => n.startsWith("kickmon-demo-")), `a state dir: ${made}`);
      assert.ok((await processesMentioning(tmp)).length > 0, "its postgres is running");

      p.kill("SIGINT");
      const status = await p.done;
      assert.equal(status.code, 0, p.lines.slice(-20).join("\n"));
      assert.deepEqual(await entries(tmp), [], "the temporary directory is empty again");
      assert.deepEqual(await processesMentioning(tmp), [], "no postgres process is left");
      assert.ok(p.lines.some((l) => l.includes("cleaned up")));
    } finally {
      try {
        p.kill("SIGKILL");
      } catch { /* exited */ }
      await p.done;
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("demo: refuses a DATABASE_URL whose streamers table has rows (exit 1)", async () => {
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    await migrate(sql as unknown as Sql, { appSchema: "public" });
    await sql`INSERT INTO streamers (username, kick_user_id) VALUES ('somebody_real', '1')`;
    const p = spawn([...DEMO_ENTRY, "--no-view"], { DATABASE_URL: db.url });
    const status = await p.done;
    assert.equal(status.code, 1);
    assert.ok(p.lines.some((l) => l.includes("the streamers table at DATABASE_URL has 1 rows")));
    const rows = await sql`SELECT username, status FROM streamers`;
    assert.deepEqual(rows.map((r) => [r.username, r.status]), [["somebody_real", "unknown"]]);
  } finally {
    await sql.end({ timeout: 2 });
    await db.drop();
  }
});

Deno.test({
  name: "demo with the view (tmux, DATABASE_URL): changes on screen, q removes the demo rows" +
    NO_TMUX,
  ignore: !TMUX,
  async fn() {
    const db = await createTestDatabase();
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    const tmp = await Deno.makeTempDir({ prefix: "kickmon-demo-test-" });
    let tmux: TmuxSession | undefined;
    try {
      tmux = await TmuxSession.start(DEMO_ENTRY, {
        DATABASE_URL: db.url,
        TMPDIR: tmp,
        MANUAL_MODE_REFRESH_RATE: "250",
      }, { width: 100, height: 30 });
      await tmux.waitForScreen(/^kickmon demo \(simulated Kick\)/m, 30_000, "the demo view");
      // Committed Pusher transitions show up in the recent-changes area.
      const screen = await tmux.waitForScreen(
        /(online|offline)\s+→ (online|offline)\s+pusher[\s\S]*(online|offline)\s+→ (online|offline)\s+pusher/,
        30_000,
        "two changes via Pusher",
      );
      assert.match(screen, /Streamers 12: \d+ online · \d+ offline · \d+ unknown/);
      const [{ n }] = await sql`SELECT count(*)::int AS n FROM streamers`;
      assert.equal(n, 12);
      await tmux.keys("q");
      assert.equal(await tmux.exitCode(), 0);
      const [{ left }] = await sql`SELECT count(*)::int AS left FROM streamers`;
      assert.equal(left, 0, "the demo rows are deleted from DATABASE_URL");
      assert.deepEqual(await entries(tmp), [], "the temporary state directory is removed");
    } finally {
      await tmux?.dispose();
      await sql.end({ timeout: 2 });
      await db.drop();
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "manual view beside a running service: another instance, standby, in its own directory" +
    NO_TMUX,
  ignore: !TMUX,
  async fn() {
    const t = await setup("besidestreamer", { userId: 9_200_031, channelId: 2_600_031 });
    let tmux: TmuxSession | undefined;
    const service = spawnKickmon(["start"], { ...t.env, MONITORING_LEADER_TAKEOVER: "5" });
    try {
      await service.waitForLine(/kickmon started/, 30_000);
      const pid = await Deno.readTextFile(`${t.stateDir}/kickmon.pid`);
      // The same environment, so the same SYSTEM_STATE_DIRECTORY (issue 14).
      tmux = await TmuxSession.start(["main.ts", "start", "--manual"], t.env, {
        width: 100,
        height: 30,
      });
      const standby = await tmux.waitForScreen(
        new RegExp(`^kickmon live view {2}standby \\(leader [^:]+:${service.pid}\\)`, "m"),
        30_000,
        "the view is a standby naming the service as leader",
      );
      assert.match(standby, new RegExp(`logs: ${t.stateDir}/kickmon-manual\\.log`));
      await waitFor(() => t.sim.pusher.subscriberCount("channel.2600031") === 2, {
        timeoutMs: 15_000,
        message: "both instances subscribed",
      });
      const own = [...Deno.readDirSync(t.stateDir)].filter((e) => e.name.startsWith("manual-"));
      assert.equal(own.length, 1, "the view's own state directory");
      t.sim.world.setLive(t.s.userId, true);
      await tmux.waitForScreen(/^besidestreamer\s+online\s/m, 5_000, "the view hears Pusher");
      await tmux.keys("q");
      assert.equal(await tmux.exitCode(), 0, "q exits 0");
      assert.deepEqual(
        [...Deno.readDirSync(t.stateDir)].filter((e) => e.name.startsWith("manual-")),
        [],
        "its directory is removed",
      );
      // The service: the same PID file, still running, still the only writer of its spool.
      assert.equal(await Deno.readTextFile(`${t.stateDir}/kickmon.pid`), pid);
      const rows = await t.sql`SELECT count(*)::int AS n FROM status_events`;
      assert.equal(rows[0].n, 1, "one row for one transition heard by two instances");
      assert.equal(await service.stop(), 0);
    } finally {
      await tmux?.dispose();
      service.kill("SIGKILL");
      await service.status;
      await t.close();
    }
  },
});
