/**
 * Issue 10, item 7: what the README tells an operator to type works, and
 * says what it must. The env-file idiom with values that broke
 * `env $(grep -v '^#' f | xargs)`, the exact command that runs the bundle,
 * the demo's `/health`, the variable table against `config.ts`, and
 * `./state` (made by running from source) neither tracked nor failing
 * `deno fmt --check`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { buildBundle } from "../scripts/build.ts";
import { CONFIG_DOCS, CONFIG_VARIABLES } from "../src/config/config.ts";
import { isPgServerInstalled } from "../dev/pg_cluster.ts";
import { waitFor } from "./helpers/database.ts";
import { baseEnv, runCommand, spawnProcess } from "../dev/kickmon_process.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname).replace(/\/$/, "");
const README = await Deno.readTextFile(`${ROOT}/README.md`);
const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

const bash = (script: string, env: Record<string, string> = {}) =>
  runCommand("bash", ["-c", script], env);

Deno.test("README: the env-file idiom keeps quotes, spaces and shell characters", async () => {
  const blocks = [...README.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]).join("\n");
  assert.doesNotMatch(blocks, /xargs/, "no command to type uses the grep | xargs idiom");
  const line = README.split("\n").find((l) => l.includes("set -a; . /etc/kickmon/kickmon.env"));
  assert.ok(line, "the README gives the set -a idiom");
  const dir = await Deno.makeTempDir({ prefix: "kickmon-envfile-" });
  try {
    const file = `${dir}/kickmon.env`;
    await Deno.writeTextFile(
      file,
      [
        "# kickmon configuration",
        "KICK_CLIENT_ID=cid",
        "KICK_CLIENT_SECRET='s3cr&t with spaces #not-a-comment'",
        "DATABASE_PASSWORD='p@ss $HOME \"quoted\"'",
        "DATABASE_NAME=kickmon_db",
        "SYSTEM_LOG_LEVEL=debug",
        "",
      ].join("\n"),
    );
    // The README's line, with the test's file and kickmon from source.
    const kickmon = `${q(Deno.execPath())} run -A ${q(`${ROOT}/main.ts`)}`;
    const script = line.replace(/#.*$/, "").trim()
      .replace("/etc/kickmon/kickmon.env", q(file))
      .replace("kickmon db migrate", `${kickmon} config show --json`);
    const r = await bash(script);
    assert.equal(r.code, 0, r.stderr);
    const shown = JSON.parse(r.stdout);
    assert.equal(shown.DATABASE_NAME, "kickmon_db");
    assert.equal(shown.SYSTEM_LOG_LEVEL, "debug");
    assert.equal(shown.KICK_CLIENT_SECRET, "[REDACTED]");
    // The password arrived whole: it is the one kickmon redacts in the URL.
    assert.match(
      shown.DATABASE_URL,
      /^postgres:\/\/kickmon:\[REDACTED\]@localhost:5432\/kickmon_db$/,
    );
    const secret = await bash(
      `${script.replace(/\S+ run -A \S+ config show --json/, `printf %s "$KICK_CLIENT_SECRET"`)}`,
    );
    assert.equal(secret.stdout, "s3cr&t with spaces #not-a-comment");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README: every configuration row says what config.ts says", () => {
  for (const v of CONFIG_VARIABLES) {
    const row = README.match(new RegExp(`^\\| \`${v}\` +\\| ([^|]+?) +\\| (.*?) +\\|$`, "m"));
    assert.ok(row, `${v} has a row in the README's table (with three cells)`);
    const def = CONFIG_DOCS[v].def;
    assert.equal(row[1], def ? `\`${def}\`` : "—", `${v} default`);
    const cell = row[2].replaceAll("\\|", "|").replaceAll("`", "");
    assert.equal(cell, CONFIG_DOCS[v].doc.replaceAll("`", ""), `${v} meaning`);
  }
  assert.match(CONFIG_DOCS.KICKMON_ENV_FILE.doc, /not loaded at start/);
});

Deno.test("README: the exact command that runs the bundle runs it", async () => {
  const line = README.split("\n").find((l) => l.startsWith("deno run --no-config $(deno run -A"));
  assert.ok(line, "the README gives the command");
  assert.match(line, / dist\/kickmon\.js start$/);
  const dir = await Deno.makeTempDir({ prefix: "kickmon-readme-bundle-" });
  try {
    await buildBundle(`${dir}/kickmon.js`);
    const deno = q(Deno.execPath());
    const script = line.replaceAll("deno run", `${deno} run`)
      .replace("dist/kickmon.js start", `${q(`${dir}/kickmon.js`)} config validate`);
    const r = await bash(script, { KICK_CLIENT_ID: "cid", KICK_CLIENT_SECRET: "secret" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^configuration ok/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const NO_PG = isPgServerInstalled() ? "" : " [IGNORED: no PostgreSQL server binaries]";
Deno.test({
  name: "README: the demo serves /health on the port it prints" + NO_PG,
  ignore: !!NO_PG,
  async fn() {
    assert.match(README, /demo[\s\S]{0,400}`\/health`/, "the README says where the demo's is");
    const tmp = await Deno.makeTempDir({ prefix: "kickmon-demo-health-" });
    await Deno.chmod(tmp, 0o1777); // as root, the cluster runs as `postgres`
    const p = spawnProcess(Deno.execPath(), ["run", "-A", `${ROOT}/dev/demo.ts`, "--no-view"], {
      ...baseEnv(),
      NO_COLOR: "1",
      TMPDIR: tmp,
      HEALTH_CHECK_LISTEN: "127.0.0.1:1", // the demo's own settings win
    });
    try {
      const line = await p.waitForLine(
        /health and metrics on http:\/\/127\.0\.0\.1:\d+\/health/,
        60_000,
      );
      const url = line.match(/http:\/\/127\.0\.0\.1:\d+\/health/)![0];
      const body = await waitFor(async () => {
        const r = await fetch(url).catch(() => null);
        return r ? await r.json() : null;
      }, { timeoutMs: 30_000, message: `an answer from ${url}` });
      assert.match(body.status, /^(un)?healthy$/);
      assert.ok(body.streamers, JSON.stringify(body));
      p.kill("SIGINT");
      assert.equal((await p.status).code, 0, p.lines.slice(-10).join("\n"));
    } finally {
      p.kill("SIGKILL");
      await p.status;
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("repo: ./state from running from source is git-ignored and not formatted", async () => {
  const existed = await Deno.stat(`${ROOT}/state`).then(() => true, () => false);
  const probe = `${ROOT}/state/readme-test-${crypto.randomUUID().slice(0, 8)}.json`;
  await Deno.mkdir(`${ROOT}/state`, { recursive: true });
  // What kickmon writes there (the list snapshot): compact JSON, not deno fmt's style.
  await Deno.writeTextFile(probe, '{"id":1,  "username":"x","status":"offline"}');
  try {
    const ignored = await bash(`git check-ignore -q ${q(probe)}`);
    assert.equal(ignored.code, 0, "state/ is in .gitignore");
    const fmt = await bash(`${q(Deno.execPath())} fmt --check`);
    assert.equal(fmt.code, 0, `deno fmt --check with a state/ directory:\n${fmt.stderr}`);
  } finally {
    await Deno.remove(probe);
    if (!existed) await Deno.remove(`${ROOT}/state`, { recursive: true }).catch(() => {});
  }
});
