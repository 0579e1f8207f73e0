/**
 * Schema migrations, embedded in the program (the compiled binary carries
 * them; nothing is read from disk at run time). The SQL lives in
 * `migrations/*.sql`; each file is imported as text here.
 *
 * @module
 */
import m001 from "../../migrations/001_initial_schema.sql" with { type: "text" };
import { type Sql, toDatabaseError } from "./client.ts";

/** One embedded migration. */
export interface Migration {
  /** File name without `.sql`, e.g. `001_initial_schema`; applied in this order. */
  readonly version: string;
  readonly sql: string;
}

/** Every migration, in order. */
export const MIGRATIONS: readonly Migration[] = [
  { version: "001_initial_schema", sql: m001 },
];

/** Key of the advisory lock that serialises migrations across instances. */
export const MIGRATION_LOCK_KEY = 0x6b69636b; // "kick"

/**
 * Applies every migration not yet recorded in `schema_migrations`, each in
 * its own transaction, holding a transaction-level advisory lock so two
 * instances cannot migrate at once. Idempotent.
 *
 * @returns the versions applied by this call (empty when up to date).
 * @throws {DatabaseError} when the database is unreachable or a migration fails.
 *
 * @example
 * ```ts
 * const applied = await migrate(sql);
 * console.log(applied.length ? `applied ${applied}` : "up to date");
 * ```
 */
export async function migrate(sql: Sql): Promise<string[]> {
  const applied: string[] = [];
  try {
    await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
      await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
        version TEXT PRIMARY KEY,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`;
      const done = new Set(
        (await tx<{ version: string }[]>`SELECT version FROM schema_migrations`).map((r) =>
          r.version
        ),
      );
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        await tx.unsafe(m.sql);
        await tx`INSERT INTO schema_migrations (version) VALUES (${m.version})`;
        applied.push(m.version);
      }
    });
  } catch (e) {
    throw toDatabaseError(e, "migration failed");
  }
  return applied;
}

/**
 * The migrations not yet applied (empty when the schema is current).
 *
 * @throws {DatabaseError} when the database is unreachable.
 *
 * @example
 * ```ts
 * if ((await pendingMigrations(sql)).length) console.log("run kickmon db migrate");
 * ```
 */
export async function pendingMigrations(sql: Sql): Promise<string[]> {
  try {
    const exists = await sql<{ t: string | null }[]>`SELECT to_regclass('schema_migrations') AS t`;
    if (!exists[0].t) return MIGRATIONS.map((m) => m.version);
    const done = new Set(
      (await sql<{ version: string }[]>`SELECT version FROM schema_migrations`).map((r) =>
        r.version
      ),
    );
    return MIGRATIONS.filter((m) => !done.has(m.version)).map((m) => m.version);
  } catch (e) {
    throw toDatabaseError(e, "checking migrations");
  }
}
