import assert from "node:assert/strict";
import { loadConfig, normalizedConfig } from "./config.ts";
import { CONFIG_DOCS, CONFIG_VARIABLES, SECRET_VARIABLES, VARIABLES } from "./variables.ts";

const DURATION = /TIMEOUT|DELAY|INTERVAL|RATE$|_BYTES$/;

Deno.test("variables: every duration and size has its unit in its row", () => {
  const missing = CONFIG_VARIABLES.filter((n) => DURATION.test(n) && !VARIABLES[n].unit);
  assert.deepEqual(missing, []);
  assert.equal(VARIABLES.KICK_API_TIMEOUT.unit, "s");
  assert.equal(VARIABLES.MONITORING_RECONNECT_DELAY.unit, "ms");
  assert.equal(VARIABLES.SYSTEM_SPOOL_MAX_BYTES.unit, "bytes");
});

Deno.test("variables: every default parses with its own row's parser", () => {
  for (const name of CONFIG_VARIABLES) {
    const row = VARIABLES[name];
    if (name === "KICK_CLIENT_ID" || name === "KICK_CLIENT_SECRET") continue; // required
    if (name === "DATABASE_HOST" || name === "DATABASE_NAME" || name === "DATABASE_USER") {
      assert.notEqual(row.default, "", `${name} has a default`);
    }
    assert.ok(row.parse.safeParse(row.default).success, `${name} default ${row.default}`);
  }
});

Deno.test("variables: secrets ship empty and are the ones config show redacts", () => {
  assert.deepEqual([...SECRET_VARIABLES], ["KICK_CLIENT_SECRET", "DATABASE_PASSWORD"]);
  for (const name of SECRET_VARIABLES) assert.equal(VARIABLES[name].default, "");
  assert.deepEqual(
    Object.keys(CONFIG_DOCS),
    [...CONFIG_VARIABLES],
    "CONFIG_DOCS is the rows' view, in the same order",
  );
});

Deno.test("variables: show gives back, in the variable's unit, what loadConfig read", () => {
  const env: Record<string, string> = {
    KICK_CLIENT_ID: "cid",
    KICK_CLIENT_SECRET: "secret-value",
    KICK_OAUTH_URL: "https://oauth.example",
    KICK_API_URL: "https://api.example/v1",
    KICK_API_MAX_REQUESTS_PER_MINUTE: "61",
    KICK_API_TIMEOUT: "11",
    KICK_UNOFFICIAL_CHANNEL_LOOKUP: "true",
    KICK_UNOFFICIAL_API_URL: "https://unofficial.example/v2",
    KICK_PUSHER_KEY: "abcdef",
    KICK_PUSHER_CLUSTER: "eu",
    KICK_PUSHER_HOST: "pusher.example",
    KICK_PUSHER_PORT: "444",
    KICK_PUSHER_TLS: "false",
    KICK_PUSHER_MAX_CHANNELS_PER_CONNECTION: "251",
    KICK_PUSHER_CONNECT_SPACING: "21",
    KICK_PUSHER_PONG_TIMEOUT: "30001",
    KICK_PUSHER_REFUSED_RETRY_DELAY: "60001",
    KICK_WEBHOOK_ENABLED: "true",
    KICK_WEBHOOK_LISTEN: "127.0.0.2:8082",
    DATABASE_HOST: "db.example",
    DATABASE_PORT: "5433",
    DATABASE_NAME: "kdb",
    DATABASE_USER: "kuser",
    DATABASE_SSLMODE: "require",
    DATABASE_POOL_SIZE: "6",
    DATABASE_CONNECT_TIMEOUT: "6",
    DATABASE_SCHEMA: "other",
    MONITORING_RECONNECT_DELAY: "1001",
    MONITORING_MAX_RECONNECT_DELAY: "30001",
    MONITORING_MAX_RECONNECT_ATTEMPTS: "3",
    MONITORING_RECONCILE_INTERVAL: "61",
    MONITORING_RESYNC_INTERVAL: "301",
    MONITORING_SHUTDOWN_TIMEOUT: "11",
    MONITORING_LIST_FOLLOW: "poll",
    MONITORING_LIST_POLL_INTERVAL: "1001",
    SYSTEM_LOG_LEVEL: "debug",
    SYSTEM_JSON_LOGGING: "false",
    SYSTEM_STATE_DIRECTORY: "/srv/kickmon",
    SYSTEM_SPOOL_MAX_BYTES: "65537",
    HEALTH_CHECK_ENABLED: "false",
    HEALTH_CHECK_LISTEN: "[::1]:8083",
    MANUAL_MODE_REFRESH_RATE: "1001",
    MANUAL_MODE_MAX_STREAMERS: "51",
    KICKMON_ENV_FILE: "/etc/kickmon/kickmon.env",
  };
  const shown = normalizedConfig(loadConfig(env));
  for (const [name, value] of Object.entries(env)) {
    const expected = SECRET_VARIABLES.has(name as never) ? "[REDACTED]" : value;
    assert.equal(shown[name as keyof typeof shown], expected, name);
  }
  assert.equal(shown.DATABASE_URL, "postgres://kuser@db.example:5433/kdb");
  const c = loadConfig(env);
  assert.equal(c.kick.apiTimeoutMs, 11_000, "seconds become ms inside kickmon");
  assert.equal(c.monitoring.reconcileIntervalMs, 61_000);
  assert.equal(c.monitoring.resyncIntervalMs, 301_000);
  assert.equal(c.monitoring.shutdownTimeoutMs, 11_000);
  assert.equal(c.database.connectTimeoutSec, 6);
});
