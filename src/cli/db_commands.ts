/**
 * `kickmon db migrate` and `kickmon db health`: set up kickmon's schema in
 * the user's database and say, in the operator's terms, what is missing.
 *
 * | command | does | exit |
 * |---|---|---|
 * | `db migrate` | applies what {@linkcode planMigration} plans (tables only in an empty database) | 0; 1 unreachable; 2 a privilege, column or schema missing |
 * | `db migrate --install-trigger` | also installs the list trigger on existing tables | as above |
 * | `db migrate --print` | prints the SQL instead of running it (for DBAs) | 0; 1 unreachable |
 * | `db health [--json]` | reachability, TLS, privileges, columns, pending steps, how the list is followed | 0 ready; 1 unreachable; 2 not ready |
 *
 * @module
 */
import type { Command } from "commander";
import type { Config } from "../config/config.ts";
import { connectionTls, pingDatabase } from "../db/client.ts";
import {
  type DatabaseInspection,
  inspectDatabase,
  KICKMON_SCHEMA,
  SchemaError,
  schemaProblems,
} from "../db/inspect.ts";
import { migrate, migrationScript, pendingSteps } from "../db/migrate.ts";
import { EXIT } from "./errors.ts";
import { loadOperatorConfig, withDatabase } from "./service_commands.ts";

/** What `db health --json` prints. */
export interface DbHealth {
  readonly ok: boolean;
  readonly server_version: string;
  readonly tls: string | null;
  /** ms. */
  readonly latency_ms: number;
  readonly role: string;
  readonly database: string;
  readonly schema: string;
  readonly kickmon_schema: string;
  /** How `kickmon start` will follow list changes. */
  readonly list_follow: "trigger" | "poll";
  /** Steps `db migrate` would apply (empty: the layout is current). */
  readonly pending: readonly string[];
  readonly problems: ReadonlyArray<{ readonly message: string; readonly fix: string }>;
}

function listFollow(config: Config, found: DatabaseInspection): "trigger" | "poll" {
  const mode = config.monitoring.listFollow;
  if (mode === "auto") return found.listTrigger ? "trigger" : "poll";
  return mode;
}

/**
 * Checks the database as `kickmon start` would need it.
 *
 * @returns the report; `ok` is false when a problem or a pending step stands.
 * @throws {DatabaseError} when the database is unreachable.
 *
 * @example
 * ```ts
 * const h = await databaseHealth(sql, config);
 * if (!h.ok) for (const p of h.problems) console.log(p.message, p.fix);
 * ```
 */
export async function databaseHealth(
  sql: Parameters<typeof inspectDatabase>[0],
  config: Config,
): Promise<DbHealth> {
  const { latencyMs, version } = await pingDatabase(sql);
  const tls = await connectionTls(sql);
  const found = await inspectDatabase(sql, config.database.schema);
  const follow = listFollow(config, found);
  const options = { appSchema: config.database.schema, installTrigger: follow === "trigger" };
  const pending = pendingSteps(found, options);
  const problems = schemaProblems(found, {
    migrating: pending.length > 0,
    trigger: follow === "trigger",
  });
  return {
    ok: problems.length === 0 && pending.length === 0,
    server_version: version,
    tls,
    latency_ms: Math.round(latencyMs * 10) / 10,
    role: found.role,
    database: found.database,
    schema: found.appSchema,
    kickmon_schema: KICKMON_SCHEMA,
    list_follow: follow,
    pending,
    problems,
  };
}

/**
 * Registers `migrate` and `health` under the `kickmon db` command.
 *
 * @param db the `kickmon db` command.
 * @param setExit receives each command's exit code.
 *
 * @example
 * ```ts
 * registerDbCommands(program.command("db"), (c) => (code = c));
 * ```
 */
export function registerDbCommands(db: Command, setExit: (code: number) => void): void {
  db.command("migrate")
    .description(
      "set up kickmon's schema (and the tables, in an empty database); idempotent, advisory-locked",
    )
    .option("--print", "print the SQL instead of running it (for a DBA to apply)")
    .option(
      "--install-trigger",
      "also install the list trigger on existing tables (list changes by LISTEN, not polling)",
    )
    .action(async (opts: { print?: boolean; installTrigger?: boolean }) => {
      const config = loadOperatorConfig(false);
      const options = {
        appSchema: config.database.schema,
        installTrigger: opts.installTrigger === true ||
          config.monitoring.listFollow === "trigger",
      };
      if (opts.print) {
        const script = await withDatabase((sql) => migrationScript(sql, options), config);
        await Deno.stdout.write(new TextEncoder().encode(script));
        return;
      }
      const applied = await withDatabase((sql) => migrate(sql, options), config);
      console.log(applied.length ? `applied: ${applied.join(", ")}` : "schema is up to date");
    });

  db.command("health")
    .description(
      "check reachability, privileges, columns and pending steps; print the fix for each problem",
    )
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      const config = loadOperatorConfig(false);
      const h = await withDatabase((sql) => databaseHealth(sql, config), config);
      if (!h.ok) setExit(EXIT.usage);
      if (opts.json) {
        console.log(JSON.stringify(h, null, 2));
        return;
      }
      const head = `PostgreSQL ${h.server_version}, ${h.tls ?? "no TLS"}, ${
        h.latency_ms.toFixed(1)
      } ms round trip; role ${h.role} on database ${h.database}, tables in schema ${h.schema}`;
      if (h.problems.length) {
        console.log(`database reachable but not ready for kickmon: ${head}`);
        console.log(new SchemaError("what is missing", h.problems).message);
      } else if (h.pending.length) {
        console.log(`schema out of date: ${head}`);
        console.log(`  pending: ${h.pending.join(", ")}; run 'kickmon db migrate'`);
      } else {
        console.log(`database ok: ${head}`);
      }
      console.log(
        h.list_follow === "trigger"
          ? "list changes: LISTEN (list trigger installed)"
          : `list changes: polled every ${config.monitoring.listPollIntervalMs} ms ` +
            "(no list trigger; 'kickmon db migrate --install-trigger' to LISTEN instead)",
      );
    });
}
