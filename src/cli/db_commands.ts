/**
 * `kickmon db`: set up kickmon's schema in the user's database, say in the
 * operator's terms what is missing, and back the database up.
 *
 * | command | does | exit |
 * |---|---|---|
 * | `db migrate` | applies what {@linkcode planMigration} plans (tables only in an empty database) | 0; 1 unreachable; 2 a privilege, column or schema missing |
 * | `db migrate --install-trigger` | also installs the list trigger on existing tables | as above |
 * | `db migrate --print` | prints the SQL instead of running it (for DBAs) | 0; 1 unreachable |
 * | `db health [--json]` | reachability, TLS, privileges, columns, pending steps, how the list is followed | 0 ready; 1 unreachable; 2 not ready |
 * | `db backup [--output DIR]` | `pg_dump` into `kickmon-<YYYYmmdd-HHMMSS>.sql` (UTC), mode 0600, in `<state dir>/backups` by default | 0, 1 pg_dump missing or failed |
 *
 * The database password reaches `pg_dump` through `PGPASSWORD` in its
 * environment, never on its command line.
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
import { statePaths } from "../service/state_paths.ts";
import { CliError, EXIT } from "./errors.ts";
import { loadOperatorConfig, type SetExit, withDatabase } from "./operator.ts";

const errText = (e: unknown) => e instanceof Error ? e.message : String(e);

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
 * The file name `kickmon db backup` writes: `kickmon-YYYYmmdd-HHMMSS.sql`, in UTC.
 *
 * @example
 * ```ts
 * backupFileName(new Date("2025-03-04T05:06:07Z")); // "kickmon-20250304-050607.sql"
 * ```
 */
export function backupFileName(at: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `kickmon-${at.getUTCFullYear()}${p(at.getUTCMonth() + 1)}${p(at.getUTCDate())}-${
    p(at.getUTCHours())
  }${p(at.getUTCMinutes())}${p(at.getUTCSeconds())}.sql`;
}

/** Quotes a libpq conninfo value. */
function conninfoValue(v: string): string {
  return `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/**
 * The `pg_dump` invocation for a database config: arguments (no password,
 * ever) and the extra environment (`PGPASSWORD`, `PGCONNECT_TIMEOUT`, …).
 *
 * @example
 * ```ts
 * const { args, env } = pgDumpInvocation(config.database, "kickmon-20250101-000000.sql");
 * ```
 */
export function pgDumpInvocation(
  db: Config["database"],
  file: string,
): { args: string[]; env: Record<string, string> } {
  const conninfo = [
    `host=${conninfoValue(db.host)}`,
    `port=${db.port}`,
    `dbname=${conninfoValue(db.name)}`,
    `user=${conninfoValue(db.user)}`,
    `sslmode=${db.sslmode}`,
    `application_name='kickmon-backup'`,
  ].join(" ");
  const env: Record<string, string> = { PGCONNECT_TIMEOUT: String(db.connectTimeoutSec) };
  if (db.password) env.PGPASSWORD = db.password;
  return {
    args: ["--no-password", "--format=plain", `--file=${file}`, `--dbname=${conninfo}`],
    env,
  };
}

/**
 * Registers the `db` group (`migrate`, `health`, `backup`) on the program.
 *
 * @param program the `kickmon` commander program.
 * @param setExit receives each command's exit code.
 *
 * @example
 * ```ts
 * let code = 0;
 * registerDbCommands(program, (c) => (code = c));
 * await program.parseAsync(["db", "health"], { from: "user" });
 * ```
 */
export function registerDbCommands(program: Command, setExit: SetExit): void {
  const db = program.command("db").description("database commands");
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

  db.command("backup")
    .description("pg_dump the database into kickmon-<YYYYmmdd-HHMMSS>.sql (UTC), mode 0600")
    .option(
      "-o, --output <dir>",
      "directory for the file (default: <state directory>/backups, which the binary may write)",
    )
    .action(async (opts: { output?: string }) => {
      const config = loadOperatorConfig(false);
      const dir = (opts.output ?? statePaths(config.system.stateDirectory).backups).replace(
        /(.)\/+$/,
        "$1",
      );
      if (opts.output === undefined) await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      const file = dir === "." ? backupFileName() : `${dir}/${backupFileName()}`;
      // The dump holds every row: create it 0600 before pg_dump writes into it
      // (pg_dump would create it with the caller's umask, typically 0644).
      await Deno.writeFile(file, new Uint8Array(), { createNew: true, mode: 0o600 });
      await Deno.chmod(file, 0o600); // whatever the umask
      const { args, env } = pgDumpInvocation(config.database, file);
      let out: Deno.CommandOutput;
      try {
        out = await new Deno.Command("pg_dump", {
          args,
          env,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).output();
      } catch (e) {
        await Deno.remove(file).catch(() => {});
        if (e instanceof Deno.errors.NotFound) {
          throw new CliError(
            "pg_dump is not installed (Debian: apt-get install postgresql-client)",
            EXIT.failure,
            { cause: e },
          );
        }
        throw new CliError(
          `cannot run pg_dump (${errText(e)}); this build allows only the path named by ` +
            "KICKMON_PG_DUMP at build time",
          EXIT.failure,
          { cause: e },
        );
      }
      if (!out.success) {
        await Deno.remove(file).catch(() => {});
        const stderr = new TextDecoder().decode(out.stderr).trim().split("\n").slice(0, 5).join(
          "; ",
        );
        throw new CliError(`pg_dump failed (exit ${out.code}): ${stderr}`, EXIT.failure);
      }
      console.log(`backup written to ${file}`);
      setExit(EXIT.ok);
    });
}
