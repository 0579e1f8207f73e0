/**
 * Issue 10, item 1: a log destination that goes away must not take kickmon
 * with it. `kickmon start | head -1` for real (bash, a real pipe that `head`
 * closes after one line), then kickmon's CPU time and resident size are read
 * from `/proc/<pid>` over a few seconds of normal logging into the closed
 * pipe, and a real SIGTERM must end it cleanly. Before the fix it ran at
 * 100 % of a core, grew by megabytes per second and ignored SIGTERM.
 *
 * @module
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import type { Sql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { insertStreamer } from "../src/db/streamers_repo.ts";
import { startSimulator } from "../dev/simulator/simulator.ts";
import { createTestDatabase, freePort, waitFor } from "./helpers/database.ts";
import { baseEnv } from "../dev/kickmon_process.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
/** Kernel clock ticks per second (`getconf CLK_TCK`; 100 on Linux). */
const CLK_TCK = 100;

/** utime + stime of a process in seconds, and its VmRSS in bytes. */
export async function processUsage(pid: number): Promise<{ cpuSec: number; rssBytes: number }> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // "pid (comm) state …": fields after the closing parenthesis, utime is the 12th of them.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const rssKb = Number(status.match(/^VmRSS:\s+(\d+) kB/m)?.[1] ?? NaN);
  return { cpuSec: ticks / CLK_TCK, rssBytes: rssKb * 1024 };
}

const alive = (pid: number) => Deno.stat(`/proc/${pid}`).then(() => true, () => false);
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Runs `kickmon start <redirections> | head -1` in bash against the
 * simulator and a fresh database; measures kickmon once the pipe is closed.
 */
async function closedPipe(redirect: "stdout" | "stdout+stderr") {
  const sim = await startSimulator();
  const db = await createTestDatabase();
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const work = await Deno.makeTempDir({ prefix: "kickmon-pipe-" });
  const state = `${work}/state`;
  const healthPort = freePort();
  await migrate(sql as unknown as Sql, { appSchema: "public" });
  const s = sim.world.add({ userId: 7001, slug: "piped", channelId: 7002 });
  await insertStreamer(sql as unknown as Sql, {
    username: s.slug,
    kickUserId: s.userId,
    kickChannelId: s.channelId,
    status: "offline",
  });
  const env: Record<string, string> = {
    ...baseEnv(),
    NO_COLOR: "1",
    ...sim.env(),
    DATABASE_URL: db.url,
    SYSTEM_STATE_DIRECTORY: state,
    HEALTH_CHECK_LISTEN: `127.0.0.1:${healthPort}`,
    // Something to log all the time: a reconciliation every second, at debug.
    SYSTEM_LOG_LEVEL: "debug",
    MONITORING_RECONCILE_INTERVAL: "1",
  };
  const kickmon = `${q(Deno.execPath())} run -A ${q(`${ROOT}main.ts`)} start`;
  const errTo = redirect === "stdout" ? `2> ${q(`${work}/stderr`)}` : "2>&1";
  const script = `${kickmon} ${errTo} | head -1 > ${q(`${work}/first`)}; ` +
    `echo "\${PIPESTATUS[0]}" > ${q(`${work}/code`)}`;
  const bash = new Deno.Command("bash", {
    args: ["-c", script],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  let pid = 0;
  try {
    await waitFor(() => Deno.readTextFile(`${work}/first`).then((t) => t.length > 0, () => false), {
      timeoutMs: 60_000,
      message: "head's one line",
    });
    pid = await waitFor(
      () => Deno.readTextFile(`${state}/kickmon.pid`).then((t) => Number(t.trim()), () => 0),
      { timeoutMs: 30_000, message: "the PID file" },
    );
    await waitFor(async () => {
      const r = await fetch(`http://127.0.0.1:${healthPort}/health`, {
        signal: AbortSignal.timeout(5_000),
      }).catch(() => null);
      await r?.body?.cancel();
      return r?.status === 200;
    }, { timeoutMs: 60_000, intervalMs: 250, message: "kickmon healthy after the pipe closed" });
    // A second of logging into the closed pipe, then the measured window.
    await new Promise((r) => setTimeout(r, 1_000));
    const windowSec = 4;
    const before = await processUsage(pid);
    const t0 = performance.now();
    sim.world.setLive(s.userId, true); // a transition and its log lines inside the window
    await new Promise((r) => setTimeout(r, windowSec * 1000));
    const after = await processUsage(pid);
    const metrics = await fetch(`http://127.0.0.1:${healthPort}/metrics`).then((r) => r.text());
    const dropped = Number(metrics.match(/^kickmon_log_lines_dropped_total (\d+)/m)?.[1] ?? NaN);
    const elapsed = (performance.now() - t0) / 1000;
    const cpuShare = (after.cpuSec - before.cpuSec) / elapsed;
    const rssGrowth = after.rssBytes - before.rssBytes;
    console.log(
      `${redirect} closed: kickmon CPU ${(cpuShare * 100).toFixed(1)} % of a core over ` +
        `${elapsed.toFixed(1)} s, RSS ${(after.rssBytes / 1e6).toFixed(1)} MB ` +
        `(${rssGrowth >= 0 ? "+" : ""}${(rssGrowth / 1e6).toFixed(1)} MB)`,
    );
    const status = await waitFor(async () => {
      const [row] = await sql`SELECT status FROM streamers WHERE kick_user_id = ${s.userId}`;
      return row?.status === "online" ? "online" : null;
    }, { timeoutMs: 15_000, intervalMs: 100 }).catch(() => "not online within 15 s");

    const termAt = performance.now();
    Deno.kill(pid, "SIGTERM");
    const exited = await waitFor(async () => !(await alive(pid)), {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: "kickmon to exit after SIGTERM",
    }).then(() => true, () => false);
    const stopSec = (performance.now() - termAt) / 1000;
    const bashStatus = exited ? await bash.status : null;
    const code = exited ? (await Deno.readTextFile(`${work}/code`)).trim() : null;
    const stderr = redirect === "stdout"
      ? await Deno.readTextFile(`${work}/stderr`).catch(() => "")
      : "";
    return { dropped, cpuShare, rssGrowth, exited, stopSec, code, bashStatus, stderr, status };
  } finally {
    if (pid && await alive(pid)) Deno.kill(pid, "SIGKILL");
    try {
      bash.kill("SIGKILL");
    } catch { /* exited */ }
    await bash.status;
    await sql.end({ timeout: 1 });
    await db.drop();
    await sim.close();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

Deno.test("kickmon start | head -1: idles after the pipe closes, stays bounded, obeys SIGTERM", async () => {
  const r = await closedPipe("stdout");
  // An idle kickmon uses a few % of a core; the broken sink spun at 100 %.
  assert.ok(r.cpuShare < 0.5, `CPU ${(r.cpuShare * 100).toFixed(1)} % of a core`);
  assert.ok(r.rssGrowth < 8e6, `RSS grew ${(r.rssGrowth / 1e6).toFixed(1)} MB in 4 s`);
  assert.ok(r.dropped > 0, `log lines went into the closed pipe (${r.dropped} dropped)`);
  assert.equal(r.status, "online", "kickmon kept working with its stdout gone");
  assert.ok(r.exited, "kickmon ignored SIGTERM (still running 30 s later)");
  assert.equal(r.code, "0", "exit code after SIGTERM");
  // Said once, on stderr, which still works.
  const notes = r.stderr.split("\n").filter((l) => /log output to stdout failed/.test(l));
  assert.equal(notes.length, 1, `stderr:\n${r.stderr}`);
  assert.match(notes[0], /Broken pipe|broken pipe/);
});

Deno.test("kickmon start 2>&1 | head -1: stdout and stderr both gone, same bounds", async () => {
  const r = await closedPipe("stdout+stderr");
  assert.ok(r.cpuShare < 0.5, `CPU ${(r.cpuShare * 100).toFixed(1)} % of a core`);
  assert.ok(r.rssGrowth < 8e6, `RSS grew ${(r.rssGrowth / 1e6).toFixed(1)} MB in 4 s`);
  assert.ok(r.dropped > 0, `log lines went into the closed pipe (${r.dropped} dropped)`);
  assert.equal(r.status, "online");
  assert.ok(r.exited, "kickmon ignored SIGTERM (still running 30 s later)");
  assert.equal(r.code, "0", "exit code after SIGTERM");
});

/**
 * Runs `kickmon start` with stdout and stderr in a file, as systemd does
 * with a journal stream: `JOURNAL_STREAM` names stdout's device and inode
 * (or, with `mismatch`, some other file's). Returns the lines after SIGTERM.
 */
async function underJournal(env: Record<string, string>, mismatch = false): Promise<string[]> {
  const sim = await startSimulator();
  const db = await createTestDatabase();
  const work = await Deno.makeTempDir({ prefix: "kickmon-journal-" });
  const envFile = `${work}/kickmon.env`;
  await Deno.writeTextFile(envFile, "SYSTEM_LOG_LEVEL=info\n", { mode: 0o644 }); // a warning
  await Deno.chmod(envFile, 0o644);
  const out = `${work}/journal`;
  const kickmon = `${q(Deno.execPath())} run -A ${q(`${ROOT}main.ts`)} start`;
  const stream = mismatch ? `stat -L -c %d:%i ${q(envFile)}` : "stat -L -c %d:%i /proc/$$/fd/1";
  const bash = new Deno.Command("bash", {
    args: ["-c", `exec > ${q(out)} 2>&1; export JOURNAL_STREAM="$(${stream})"; exec ${kickmon}`],
    cwd: ROOT,
    env: {
      ...baseEnv(),
      NO_COLOR: "1",
      ...sim.env(),
      DATABASE_URL: db.url,
      SYSTEM_STATE_DIRECTORY: `${work}/state`,
      HEALTH_CHECK_LISTEN: `127.0.0.1:${freePort()}`,
      KICKMON_ENV_FILE: envFile,
      ...env,
    },
    clearEnv: true,
    stdin: "null",
  }).spawn();
  try {
    const read = () => Deno.readTextFile(out).catch(() => "");
    await waitFor(async () => /kickmon started/.test(await read()), {
      timeoutMs: 60_000,
      message: "kickmon started",
    });
    bash.kill("SIGTERM"); // bash exec'd kickmon: this is kickmon's PID
    assert.equal((await bash.status).code, 0, await read());
    return (await read()).split("\n").filter((l) => l !== "");
  } finally {
    try {
      bash.kill("SIGKILL");
    } catch { /* exited */ }
    await bash.status;
    await db.drop();
    await sim.close();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

Deno.test("journald, plain text: <priority> on every line, no timestamp, values unquoted", async () => {
  const lines = await underJournal({ SYSTEM_JSON_LOGGING: "false" });
  for (const l of lines) assert.match(l, /^<[2-7]>\[(FTL|ERR|WRN|INF|DBG|TRC)\] kickmon\.\S+: /, l);
  assert.ok(
    lines.some((l) =>
      /^<6>\[INF\] kickmon\.http: health and metrics on http:\/\/127\.0\.0\.1:\d+\/health$/.test(l)
    ),
    lines.join("\n"),
  );
  assert.ok(lines.some((l) => /^<4>\[WRN\] kickmon\.cli: env file \/\S+ is readable/.test(l)));
  assert.ok(lines.includes("<6>[INF] kickmon.cli: SIGTERM: shutting down"), lines.join("\n"));
  assert.ok(lines.some((l) => /^<6>\[INF\] kickmon\.reconcile: reconciled \(start\): /.test(l)));
  assert.ok(!lines.some((l) => /\d{4}-\d\d-\d\d \d\d:\d\d/.test(l)), "journald stamps lines");
  assert.ok(!lines.some((l) => l.includes('"')), "no quoted values");
});

Deno.test("journald, JSON: <priority>{…}; a JOURNAL_STREAM naming another file is ignored", async () => {
  const lines = await underJournal({});
  const warn = lines.find((l) => l.startsWith("<4>{"));
  assert.ok(warn, lines.join("\n"));
  assert.equal(JSON.parse(warn.slice(3)).level, "WARN");
  for (const l of lines) assert.match(l, /^<[2-7]>\{"@timestamp":/, l);
  const messages = lines.map((l) => JSON.parse(l.slice(3)).message as string);
  assert.ok(messages.includes("SIGTERM: shutting down"), messages.join("\n"));
  assert.ok(messages.some((m) => /^reconciled \(start\): \d+ checked/.test(m)));

  const elsewhere = await underJournal({ SYSTEM_JSON_LOGGING: "false" }, true);
  for (const l of elsewhere) {
    assert.match(l, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \+00 \[[A-Z]{3}\] kickmon\./, l);
  }
});
