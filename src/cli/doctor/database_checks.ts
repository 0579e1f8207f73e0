/**
 * `kickmon doctor`'s checks of this host's own setup: the configuration
 * (`configuration`) and the database (`database reachable`, `database schema`,
 * `database privileges`, from {@linkcode databaseHealth}), which also reads the
 * streamer list for the later checks. Each never throws.
 *
 * @module
 */
import { type Config, ConfigError, loadConfig, secretValues } from "../../config/config.ts";
import { connectDatabase, DatabaseError } from "../../db/client.ts";
import { listStreamerViews } from "../../db/streamers_repo.ts";
import { registerSecret } from "../../log/logging.ts";
import { databaseHealth } from "../db_commands.ts";
import { type CheckResult, errText, type Found, result } from "./check.ts";

/**
 * `configuration`: every variable valid, Kick credentials present. Registers
 * every configured secret for masking in logs.
 *
 * @param env the environment to read.
 * @returns the line, and the configuration when it loaded (else `null`).
 *
 * @example
 * ```ts
 * const { check, config } = checkConfig(readEnvironment());
 * ```
 */
export function checkConfig(
  env: Record<string, string | undefined>,
): { check: CheckResult; config: Config | null } {
  const t = performance.now();
  try {
    const config = loadConfig(env, { requireKickCredentials: true });
    for (const s of secretValues(config)) registerSecret(s);
    return {
      config,
      check: result(
        "configuration",
        t,
        "ok",
        `valid${config.envFile ? ` (${config.envFile})` : ""}; API ${config.kick.apiUrl}, ` +
          `Pusher ${config.kick.pusher.host}:${config.kick.pusher.port}`,
      ),
    };
  } catch (e) {
    return {
      config: null,
      check: result(
        "configuration",
        t,
        "fail",
        e instanceof ConfigError ? e.message.replace(/\s*\n\s*/g, "; ") : errText(e),
        "fix the named variables in the env file ('kickmon config generate-template' lists them all)",
      ),
    };
  }
}

/**
 * `database reachable`, `database schema`, `database privileges`; reads the
 * list too (into `found.rows`, `null` when it cannot be read). Opens one
 * connection and closes it before returning.
 *
 * @returns the three lines, in that order.
 *
 * @example
 * ```ts
 * checks.push(...await checkDatabase(config, found));
 * ```
 */
export async function checkDatabase(config: Config, found: Found): Promise<CheckResult[]> {
  const t = performance.now();
  registerSecret(config.database.password);
  const sql = connectDatabase(config.database, { max: 1 });
  try {
    let h;
    try {
      h = await databaseHealth(sql, config);
    } catch (e) {
      const t2 = performance.now();
      const why = "not checked: the database is unreachable";
      const fix = "fix the database reachable check first";
      return [
        result(
          "database reachable",
          t,
          "fail",
          e instanceof DatabaseError && e.code ? `${e.code}: ${errText(e)}` : errText(e),
          "check DATABASE_URL (host, port, user, password, TLS) and that PostgreSQL accepts this host",
        ),
        result("database schema", t2, "fail", why, fix),
        result("database privileges", t2, "fail", why, fix),
      ];
    }
    const out = [
      result(
        "database reachable",
        t,
        "ok",
        `PostgreSQL ${h.server_version}, ${h.tls ?? "no TLS"}, ${h.latency_ms} ms round trip; ` +
          `role ${h.role} on ${h.database}`,
      ),
    ];
    const t2 = performance.now();
    out.push(
      h.pending.length === 0
        ? result("database schema", t2, "ok", `current (kickmon schema ${h.kickmon_schema})`)
        : result(
          "database schema",
          t2,
          "warn",
          `pending: ${h.pending.join(", ")}`,
          "run 'kickmon db migrate' (or let 'kickmon start' do it)",
        ),
    );
    out.push(
      h.problems.length === 0
        ? result(
          "database privileges",
          t2,
          "ok",
          `role ${h.role} has what kickmon needs on schema ${h.schema}`,
        )
        : result(
          "database privileges",
          t2,
          "fail",
          h.problems.map((p) => p.message).join("; "),
          `as the tables' owner or a superuser run: ${h.problems.map((p) => p.fix).join(" ")}`,
        ),
    );
    try {
      found.rows = await listStreamerViews(sql);
    } catch {
      found.rows = null; // the privileges line already says why
    }
    return out;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}
