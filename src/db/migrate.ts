/**
 * Schema set-up, embedded in the program (the compiled binary carries the
 * SQL; nothing is read from disk at run time). The SQL lives in
 * `migrations/*.sql`; each file is imported as text here.
 *
 * What `kickmon db migrate` does depends on what it finds
 * (see {@linkcode planMigration}):
 *
 * | found | steps |
 * |---|---|
 * | no `streamers` table (an empty database) | the specification's three tables, kickmon's schema, the list trigger |
 * | the other system's tables | kickmon's schema only; the tables are not touched |
 * | the same, with `--install-trigger` | also the list trigger (NOTIFY on list changes) |
 * | a database laid out by kickmon 0.1.0 | kickmon's schema, then the 0.1.0 upgrade (history kept), the list trigger |
 *
 * Everything runs in one transaction under an advisory lock, so two
 * instances cannot migrate at once, and only after
 * {@linkcode schemaProblems} found nothing missing.
 *
 * @module
 */
import appTables from "../../migrations/app_tables.sql" with { type: "text" };
import kickmon001 from "../../migrations/kickmon_001_state.sql" with { type: "text" };
import kickmon002 from "../../migrations/kickmon_002_webhook_messages.sql" with { type: "text" };
import kickmon003 from "../../migrations/kickmon_003_channel_id_source.sql" with { type: "text" };
import commitTransitions from "../../migrations/commit_transitions.sql" with { type: "text" };
import listTrigger from "../../migrations/list_trigger.sql" with { type: "text" };
import upgrade010 from "../../migrations/upgrade_from_0.1.0.sql" with { type: "text" };
import { type Sql, toDatabaseError } from "./client.ts";
import {
  type DatabaseInspection,
  inspectDatabase,
  KICKMON_SCHEMA,
  SchemaError,
  schemaProblems,
} from "./inspect.ts";

/** One versioned migration of kickmon's own schema. */
export interface Migration {
  /** e.g. `001_state`; applied in this order, recorded in `kickmon.schema_migrations`. */
  readonly version: string;
  readonly sql: string;
}

/** kickmon's own migrations, in order. */
export const MIGRATIONS: readonly Migration[] = [
  { version: "001_state", sql: `${kickmon001.trim()}\n\n${commitTransitions.trim()}` },
  { version: "002_webhook_messages", sql: kickmon002 },
  { version: "003_channel_id_source", sql: kickmon003 },
  // The same function with the livestream guard (two instances' copies of one frame, issue 14).
  { version: "004_livestream_guard", sql: commitTransitions },
  // The same function planned once per connection instead of on every call (issue 15).
  { version: "005_generic_plan", sql: commitTransitions },
];

/** Key of the advisory lock that serialises migrations across instances. */
export const MIGRATION_LOCK_KEY = 0x6b69636b; // "kick"

/** One step of a migration plan. */
export interface MigrationStep {
  /** What it is, e.g. `001_state`, `tables`, `upgrade_from_0.1.0`, `list_trigger`. */
  readonly name: string;
  readonly sql: string;
}

/** Options for {@linkcode migrate} and {@linkcode planMigration}. */
export interface MigrateOptions {
  /** Schema of the other system's tables (`DATABASE_SCHEMA`). */
  readonly appSchema: string;
  /** Install the list trigger on existing tables (`--install-trigger`). */
  readonly installTrigger?: boolean;
}

/**
 * The steps that bring this database to the current layout (empty when it is current).
 *
 * @param found the result of {@linkcode inspectDatabase}.
 *
 * @example
 * ```ts
 * const steps = planMigration(await inspectDatabase(sql, "public"), { appSchema: "public" });
 * for (const s of steps) console.log(s.name);
 * ```
 */
export function planMigration(found: DatabaseInspection, options: MigrateOptions): MigrationStep[] {
  const steps: MigrationStep[] = [];
  if (!found.kickmonSchema.exists) {
    steps.push({ name: "schema", sql: `CREATE SCHEMA IF NOT EXISTS ${KICKMON_SCHEMA};` });
  }
  const pending = MIGRATIONS.filter((m) => !found.appliedVersions.has(m.version));
  if (pending.length) {
    steps.push({
      name: "bookkeeping",
      sql: `CREATE TABLE IF NOT EXISTS ${KICKMON_SCHEMA}.schema_migrations (
    version    TEXT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);`,
    });
  }
  const creating = !found.streamers.exists;
  if (creating) steps.push({ name: "tables", sql: appTables });
  for (const m of pending) {
    steps.push({
      name: m.version,
      sql: `${m.sql.trim()}\n\nINSERT INTO ${KICKMON_SCHEMA}.schema_migrations (version) ` +
        `VALUES ('${m.version}');`,
    });
  }
  if (found.legacy) steps.push({ name: "upgrade_from_0.1.0", sql: upgrade010 });
  if (!found.listTrigger && (creating || found.legacy || options.installTrigger)) {
    steps.push({ name: "list_trigger", sql: listTrigger });
  }
  return steps;
}

/**
 * Names of what `db migrate` would do now (for `db health`): empty when the layout is current.
 *
 * @example
 * ```ts
 * if (pendingSteps(found, { appSchema: "public" }).length) console.log("run kickmon db migrate");
 * ```
 */
export function pendingSteps(found: DatabaseInspection, options: MigrateOptions): string[] {
  return planMigration(found, options).map((s) => s.name).filter((n) => n !== "bookkeeping");
}

/**
 * Applies the plan in one transaction holding an advisory lock, after
 * checking that nothing kickmon needs is missing. Idempotent.
 *
 * @returns the names of the steps applied by this call (empty when up to date).
 * @throws {SchemaError} when a privilege, column or schema is missing (nothing is changed).
 * @throws {DatabaseError} when the database is unreachable or a statement fails.
 *
 * @example
 * ```ts
 * const applied = await migrate(sql, { appSchema: "public" });
 * console.log(applied.length ? `applied ${applied}` : "up to date");
 * ```
 */
export async function migrate(sql: Sql, options: MigrateOptions): Promise<string[]> {
  let applied: string[] = [];
  try {
    await sql.begin(async (tx) => {
      const t = tx as unknown as Sql;
      await t`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
      const found = await inspectDatabase(t, options.appSchema);
      const steps = planMigration(found, options);
      const problems = schemaProblems(found, {
        migrating: steps.length > 0,
        trigger: options.installTrigger,
      });
      if (problems.length) {
        throw new SchemaError(
          `the database is not ready for kickmon (role ${found.role}, database ${found.database})`,
          problems,
        );
      }
      for (const s of steps) await t.unsafe(s.sql);
      applied = steps.map((s) => s.name).filter((n) => n !== "bookkeeping");
    });
  } catch (e) {
    if (e instanceof SchemaError) throw e;
    throw toDatabaseError(e, "migration failed");
  }
  return applied;
}

/**
 * The SQL `migrate` would run, as one script a DBA can apply with psql
 * (`kickmon db migrate --print`). When kickmon's role lacks privileges, the
 * statements that grant them follow; run the script as the tables' owner.
 *
 * @returns the script (ends with a newline).
 * @throws {DatabaseError} when the database is unreachable.
 *
 * @example
 * ```ts
 * console.log(await migrationScript(sql, { appSchema: "public" }));
 * ```
 */
export async function migrationScript(sql: Sql, options: MigrateOptions): Promise<string> {
  const found = await inspectDatabase(sql, options.appSchema);
  const steps = planMigration(found, options);
  const lines = [
    `-- kickmon db migrate --print: role ${found.role}, database ${found.database}, ` +
    `tables in schema ${found.appSchema}`,
  ];
  if (steps.length === 0) lines.push("-- the layout is current: nothing to do");
  else {
    lines.push(`SET search_path TO ${found.appSchema};`, "BEGIN;");
    lines.push(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY});`);
    for (const s of steps) {
      let text = s.sql.trim();
      // Run by another role, kickmon's schema must still belong to kickmon's login.
      if (s.name === "schema") {
        text = `CREATE SCHEMA IF NOT EXISTS ${KICKMON_SCHEMA} AUTHORIZATION ${found.role};`;
      }
      lines.push("", `-- step: ${s.name}`, text);
    }
    lines.push(
      "",
      "-- kickmon's login uses what this script creates:",
      `GRANT USAGE ON SCHEMA ${KICKMON_SCHEMA} TO ${found.role};`,
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${KICKMON_SCHEMA} TO ${found.role};`,
      `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${KICKMON_SCHEMA} TO ${found.role};`,
      "COMMIT;",
    );
  }
  const problems = schemaProblems(found, { trigger: options.installTrigger })
    .filter((p) => p.fix.startsWith("GRANT") || p.fix.startsWith("ALTER"));
  if (problems.length) {
    lines.push("", `-- privileges and columns ${found.role} still lacks:`);
    for (const p of problems) lines.push(`-- ${p.message}`, p.fix);
  }
  return lines.join("\n") + "\n";
}
