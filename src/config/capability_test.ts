import assert from "node:assert/strict";
import { BUILD_STAMP_KEY } from "../build_info.ts";
import { explainNotCapable, findNotCapable, parseRefusal } from "./capability.ts";
import { loadConfig } from "./config.ts";

const refused = (kind: string, target: string) =>
  new Deno.errors.NotCapable(
    `Requires ${kind} access to "${target}", run again with the --allow-${kind} flag`,
  );

Deno.test("capability: Deno's refusal, found in a cause chain and parsed", () => {
  const nc = refused("net", "db:5432");
  const wrapped = new Error("query failed", { cause: new Error("connect", { cause: nc }) });
  assert.equal(findNotCapable(wrapped), nc);
  assert.equal(findNotCapable(new Error("x")), null);
  assert.deepEqual(parseRefusal(nc.message), { kind: "net", target: "db:5432" });
  assert.equal(explainNotCapable(new Error("not a permission")), null);
});

Deno.test("capability: explanations name the setting, what the build allows, the build variable", () => {
  const g = globalThis as Record<symbol, unknown>;
  g[BUILD_STAMP_KEY] = {
    kickHosts: ["id.kick.com:443"],
    extraHosts: [],
    databaseHosts: ["localhost:5432"],
    listenAddresses: ["127.0.0.1:8080"],
    stateDirectories: ["/var/lib/kickmon"],
    readPaths: ["/etc/ssl/ca.pem"],
    programs: ["/usr/bin/pg_dump"],
  };
  try {
    const config = loadConfig({
      DATABASE_PORT: "6432",
      SYSTEM_STATE_DIRECTORY: "/srv/k",
      KICK_OAUTH_URL: "https://oauth.example",
    }, { requireKickCredentials: false });
    assert.equal(
      explainNotCapable(refused("net", "localhost:6432"), config),
      "this kickmon build may not connect to localhost:6432, the database (DATABASE_URL, or " +
        "DATABASE_HOST and DATABASE_PORT); it was built to allow connecting to localhost:5432. " +
        "Use one of those, or rebuild with KICKMON_DB_HOST=localhost:6432 (deno task compile; " +
        "see scripts/permissions.ts)",
    );
    assert.match(
      explainNotCapable(refused("net", "oauth.example:443"), config)!,
      /Kick \(KICK_OAUTH_URL\); it was built to allow connecting to id\.kick\.com:443.*KICKMON_EXTRA_HOSTS=oauth\.example:443/,
    );
    assert.match(
      explainNotCapable(refused("write", "/srv/k/kickmon.pid"), config)!,
      /may not write \/srv\/k\/kickmon\.pid \(the state directory, SYSTEM_STATE_DIRECTORY\); it was built to allow \/var\/lib\/kickmon .*KICKMON_STATE_DIR=/,
    );
    assert.match(
      explainNotCapable(refused("read", "/etc/other.pem"), config)!,
      /may not read \/etc\/other\.pem; it was built to allow reading \/var\/lib\/kickmon, \/etc\/ssl\/ca\.pem\. Rebuild with KICKMON_READ_PATHS=/,
    );
    assert.match(
      explainNotCapable(refused("run", "pg_dump"), config)!,
      /may not run pg_dump; it was built to allow running \/usr\/bin\/pg_dump.*KICKMON_PG_DUMP=/,
    );
    // The binary's default state directory is one its flags allow.
    assert.equal(
      loadConfig({}, { requireKickCredentials: false }).system.stateDirectory,
      "/var/lib/kickmon",
    );
  } finally {
    delete g[BUILD_STAMP_KEY];
  }
  assert.equal(loadConfig({}, { requireKickCredentials: false }).system.stateDirectory, "./state");
});
