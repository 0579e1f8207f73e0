import assert from "node:assert/strict";
import {
  CONFIG_VARIABLES,
  ConfigError,
  configTemplate,
  loadConfig,
  redactedConfig,
} from "./config.ts";

const base = {
  KICK_CLIENT_ID: "client-id",
  KICK_CLIENT_SECRET: "s3cr3t-value",
  DATABASE_URL: "postgres://kickmon:pw-secret@db.example:6543/kick",
};

Deno.test("config: defaults and DATABASE_URL parsing", () => {
  const c = loadConfig(base);
  assert.equal(c.kick.oauthUrl, "https://id.kick.com");
  assert.equal(c.kick.apiUrl, "https://api.kick.com/public/v1");
  assert.equal(c.kick.pusher.key, "32cbd69e4b950bf97679");
  assert.equal(c.kick.pusher.host, "ws-us2.pusher.com");
  assert.equal(c.kick.pusher.port, 443);
  assert.equal(c.kick.pusher.tls, true);
  assert.equal(c.database.host, "db.example");
  assert.equal(c.database.port, 6543);
  assert.equal(c.database.name, "kick");
  assert.equal(c.database.password, "pw-secret");
  assert.equal(c.monitoring.reconcileIntervalMs, 60_000);
});

Deno.test("config: DATABASE_* parts build a URL when DATABASE_URL is unset", () => {
  const c = loadConfig({
    KICK_CLIENT_ID: "a",
    KICK_CLIENT_SECRET: "b",
    DATABASE_HOST: "10.0.0.5",
    DATABASE_PORT: "5433",
    DATABASE_USER: "mon",
    DATABASE_PASSWORD: "p@ss word",
    DATABASE_NAME: "kick",
  });
  assert.equal(c.database.url, "postgres://mon:p%40ss%20word@10.0.0.5:5433/kick");
  assert.equal(new URL(c.database.url).password, "p%40ss%20word");
});

Deno.test("config: every bad variable is named with what was expected", () => {
  let err: unknown;
  try {
    loadConfig({
      ...base,
      KICK_CLIENT_ID: "",
      DATABASE_POOL_SIZE: "many",
      KICK_PUSHER_TLS: "maybe",
      HEALTH_CHECK_LISTEN: "8080",
      KICK_API_URL: "ftp://x",
    });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError);
  const vars = err.issues.map((i) => i.variable).sort();
  assert.deepEqual(vars, [
    "DATABASE_POOL_SIZE",
    "HEALTH_CHECK_LISTEN",
    "KICK_API_URL",
    "KICK_CLIENT_ID",
    "KICK_PUSHER_TLS",
  ]);
  assert.match(err.message, /DATABASE_POOL_SIZE: expected an integer/);
  assert.match(err.message, /KICK_PUSHER_TLS: expected true or false/);
});

Deno.test("config: credentials are optional for database-only commands", () => {
  const c = loadConfig({ DATABASE_URL: base.DATABASE_URL }, { requireKickCredentials: false });
  assert.equal(c.database.name, "kick");
  assert.throws(() => loadConfig({ DATABASE_URL: base.DATABASE_URL }), ConfigError);
});

Deno.test("config: show redacts secrets, template lists every variable", () => {
  const shown = redactedConfig(base);
  const text = JSON.stringify(shown);
  assert.ok(!text.includes("s3cr3t-value"));
  assert.ok(!text.includes("pw-secret"));
  assert.equal(shown.KICK_CLIENT_SECRET, "[REDACTED]");
  const tpl = configTemplate();
  for (const v of CONFIG_VARIABLES) assert.match(tpl, new RegExp(`^${v}=`, "m"));
});
