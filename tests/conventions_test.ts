/**
 * Issue 10, item 6: conventions of the operator surface. Exit codes of the
 * command line (usage errors are 2, hints name the subcommand's help,
 * progress lines on stderr), `config show` normalized and `--json`,
 * snake_case JSON everywhere, and the metrics' names and coverage.
 *
 * @module
 */
import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import denoJson from "../deno.json" with { type: "json" };
import { VERSION } from "../src/version.ts";
import { freePort, waitFor } from "./helpers/database.ts";
import { startRig } from "./helpers/harness.ts";
import { runKickmon } from "../dev/kickmon_process.ts";

const creds = { KICK_CLIENT_ID: "cid", KICK_CLIENT_SECRET: "secret-value" };

Deno.test("cli: no command is a usage error (2); asked-for help is 0", async () => {
  const bare = await runKickmon([], {});
  assert.equal(bare.code, 2);
  assert.equal(bare.stdout, "", "help shown for a usage error goes to stderr");
  assert.match(bare.stderr, /Usage: kickmon/);
  const group = await runKickmon(["streamers"], {});
  assert.equal(group.code, 2);
  const bogus = await runKickmon(["help", "bogus"], {});
  assert.equal(bogus.code, 2);
  assert.equal(
    bogus.stderr.trim(),
    "error: unknown command 'bogus'\n(run 'kickmon --help' for usage)",
  );
  assert.equal((await runKickmon(["help", "streamers"], {})).code, 0);
  assert.equal((await runKickmon(["--help"], {})).code, 0);
  assert.equal((await runKickmon(["streamers", "add", "--help"], {})).code, 0);
  const version = await runKickmon(["--version"], {});
  assert.equal(version.stdout.trim(), denoJson.version);
  assert.equal(VERSION, denoJson.version);
});

Deno.test("cli: a subcommand's usage error points at that subcommand's help", async () => {
  const missing = await runKickmon(["streamers", "add"], {});
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /\(run 'kickmon streamers add --help' for usage\)$/m);
  const option = await runKickmon(["config", "show", "--bogus"], {});
  assert.equal(option.code, 2);
  assert.match(option.stderr, /\(run 'kickmon config show --help' for usage\)/);
  const slug = await runKickmon(["streamers", "add", "bad name!"], creds);
  assert.equal(slug.code, 2);
  assert.match(slug.stderr, /is not a Kick username/);
  assert.match(slug.stderr, /\(run 'kickmon streamers add --help' for usage\)/);
  assert.doesNotMatch(slug.stderr, /kickmon --help/);
});

Deno.test("cli: stop's progress goes to stderr, its answer to stdout", async () => {
  const state = await Deno.makeTempDir({ prefix: "kickmon-conv-" });
  try {
    const gone = new Deno.Command("true").spawn();
    await gone.status; // a PID nobody has any more
    await Deno.writeTextFile(`${state}/kickmon.pid`, `${gone.pid}\n`);
    const r = await runKickmon(["stop"], {
      SYSTEM_STATE_DIRECTORY: state,
      HEALTH_CHECK_ENABLED: "false",
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /removing stale PID file/);
    assert.doesNotMatch(r.stdout, /removing stale PID file/);
    assert.match(r.stdout, /^kickmon is not running/);
  } finally {
    await Deno.remove(state, { recursive: true });
  }
});

Deno.test("cli: config show prints normalized values; --json the same as one object", async () => {
  const env = {
    ...creds,
    SYSTEM_LOG_LEVEL: " WARN ",
    KICK_PUSHER_TLS: "yes",
    KICK_API_URL: "https://api.example/v1/",
    DATABASE_URL: "postgres://u:db-password@db.example:6543/kdb",
    SYSTEM_STATE_DIRECTORY: "/srv/kickmon",
  };
  const r = await runKickmon(["config", "show"], env);
  assert.equal(r.code, 0, r.stderr);
  const lines = new Map(
    r.stdout.trim().split("\n").map((l) => {
      const i = l.indexOf("=");
      return [l.slice(0, i), l.slice(i + 1)];
    }),
  );
  assert.equal(lines.get("SYSTEM_LOG_LEVEL"), "warning");
  assert.equal(lines.get("KICK_PUSHER_TLS"), "true");
  assert.equal(lines.get("KICK_API_URL"), "https://api.example/v1");
  assert.equal(lines.get("KICK_PUSHER_HOST"), "ws-us2.pusher.com");
  assert.equal(lines.get("DATABASE_HOST"), "db.example");
  assert.equal(lines.get("DATABASE_PORT"), "6543");
  assert.equal(lines.get("DATABASE_NAME"), "kdb");
  assert.equal(lines.get("DATABASE_PASSWORD"), "[REDACTED]");
  assert.equal(lines.get("DATABASE_URL"), "postgres://u:[REDACTED]@db.example:6543/kdb");
  assert.equal(lines.get("KICK_CLIENT_SECRET"), "[REDACTED]");
  assert.ok(!r.stdout.includes("db-password") && !r.stdout.includes("secret-value"));
  const j = await runKickmon(["config", "show", "--json"], env);
  assert.equal(j.code, 0, j.stderr);
  assert.deepEqual(JSON.parse(j.stdout), Object.fromEntries(lines));
});

Deno.test("http and metrics: snake_case JSON, standard names, every API request counted", async () => {
  const port = freePort();
  const rig = await startRig({
    HEALTH_CHECK_ENABLED: "true",
    HEALTH_CHECK_LISTEN: `127.0.0.1:${port}`,
    MONITORING_RECONCILE_INTERVAL: "1",
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    const { id } = await rig.watch({ userId: 41, slug: "conventional", channelId: 42 });
    await rig.waitStatus(id, "offline");
    // One failing reconciliation request, answered 500 three times (retries included).
    rig.sim.api.failNext("/public/v1/channels", { status: 500, body: "{}" }, 4);
    // And a failing token refresh.
    rig.sim.api.failNext("/oauth/token", { status: 503, body: "" }, 1);
    rig.sim.api.expireAllTokens();
    const metrics = await waitFor(async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      return /endpoint="GET \/channels",code="500"/.test(text) &&
          /endpoint="POST \/oauth\/token",code="503"/.test(text)
        ? text
        : null;
    }, { timeoutMs: 30_000, message: "failed requests in kickmon_api_requests_total" });
    const families = parsePrometheusTextFormat(metrics) as Array<
      { name: string; metrics: Array<{ labels?: Record<string, string>; value?: string }> }
    >;
    const byName = new Map(families.map((f) => [f.name, f]));
    const api = byName.get("kickmon_api_requests_total")!.metrics;
    assert.ok(
      api.some((m) => m.labels?.endpoint === "POST /oauth/token" && m.labels?.code === "200"),
      `token requests are counted: ${JSON.stringify(api)}`,
    );
    assert.ok(api.some((m) => m.labels?.endpoint === "GET /channels" && m.labels?.code === "200"));
    assert.deepEqual(byName.get("kickmon_build_info")?.metrics, [{
      labels: { version: VERSION },
      value: "1",
    }]);
    const started = Number(byName.get("process_start_time_seconds")?.metrics[0].value);
    assert.ok(started > Date.now() / 1000 - 600 && started <= Date.now() / 1000, String(started));
    assert.ok(Number(byName.get("process_resident_memory_bytes")?.metrics[0].value) > 1e6);
    const events = byName.get("kickmon_events_received_total")!.metrics;
    assert.ok(!events.some((m) => m.labels?.event?.startsWith("GET ")), JSON.stringify(events));
    assert.ok(
      events.some((m) => m.labels?.source === "reconcile" && m.labels?.event === "stream.is_live"),
    );

    const list = await (await fetch(`${base}/streamers`)).json();
    assert.equal(list.length, 1);
    for (const key of Object.keys(list[0])) assert.match(key, /^[a-z0-9_]+$/, key);
    assert.equal(list[0].kick_user_id, 41);
    assert.equal(list[0].is_active, true);
    const one = await (await fetch(`${base}/streamers/conventional/status`)).json();
    for (const key of Object.keys(one)) assert.match(key, /^[a-z0-9_]+$/, key);
    const health = await (await fetch(`${base}/health`)).json();
    const keys = (o: unknown): string[] =>
      o && typeof o === "object"
        ? Object.entries(o).flatMap(([k, v]) => Array.isArray(o) ? keys(v) : [k, ...keys(v)])
        : [];
    for (const key of keys(health)) assert.match(key, /^[a-z0-9_]+$/, key);
  } finally {
    await rig.close();
  }
});
