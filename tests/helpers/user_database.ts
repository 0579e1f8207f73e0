/**
 * Test helper: a database laid out by "the other system", as a real DBA
 * would hand it to kickmon. The specification's tables
 * (`tests/fixtures/original-schema.sql`) are created by their own owner role,
 * carry an extra column of that system's own and rows already present, and
 * kickmon gets a login role of its own with only the privileges chosen here.
 *
 * @example
 * ```ts
 * const u = await createUserDatabase({ grants: "least" });
 * try {
 *   await u.owner`INSERT INTO streamers (kick_user_id, username) VALUES ('1', 'a')`;
 *   // run kickmon with DATABASE_URL = u.kickmonUrl
 * } finally {
 *   await u.drop();
 * }
 * ```
 *
 * @module
 */
import postgres from "postgres";
import { createTestDatabase } from "./database.ts";

/** The specification's schema, verbatim. */
export const ORIGINAL_SCHEMA = Deno.readTextFileSync(
  new URL("../fixtures/original-schema.sql", import.meta.url),
);

/** The privileges a DBA gives kickmon's role (README "Your database"). */
export const LEAST_PRIVILEGE_GRANTS = (schema: string, role: string, database: string) => [
  `GRANT CONNECT ON DATABASE "${database}" TO ${role}`,
  `GRANT USAGE ON SCHEMA ${schema} TO ${role}`,
  `GRANT SELECT, UPDATE (status, last_seen_online, last_status_update, updated_at) ` +
  `ON ${schema}.streamers TO ${role}`,
  `GRANT SELECT, INSERT ON ${schema}.status_events TO ${role}`,
  `GRANT USAGE ON SEQUENCE ${schema}.status_events_id_seq TO ${role}`,
  `GRANT CREATE ON DATABASE "${database}" TO ${role}`,
];

/** Options for {@linkcode createUserDatabase}. */
export interface UserDatabaseOptions {
  /**
   * `least`: the minimum of the README; `none`: only CONNECT (for `db health`
   * tests to find everything missing); `owner`: kickmon's role owns the tables.
   */
  readonly grants: "least" | "none" | "owner";
  /** Schema of the tables (default `public`). */
  readonly schema?: string;
  /** Inactive filler rows inserted up front (default 0). */
  readonly fillerRows?: number;
}

/** What {@linkcode createUserDatabase} made. */
export interface UserDatabase {
  /** Superuser URL. */
  readonly adminUrl: string;
  /** kickmon's login (its role name is {@linkcode kickmonRole}). */
  readonly kickmonUrl: string;
  readonly kickmonRole: string;
  readonly ownerRole: string;
  readonly database: string;
  /** Connected as the tables' owner, search_path = the schema. */
  readonly owner: postgres.Sql;
  /** Connected as the superuser. */
  readonly admin: postgres.Sql;
  /**
   * The other system's table definitions: columns (information_schema),
   * constraints, indexes and triggers (pg_catalog, internal ones included),
   * as one JSON string, for byte-for-byte comparison.
   */
  definitions(): Promise<string>;
  /** md5 over every column of every row of `streamers`, by id, where `where` holds. */
  rowsDigest(where?: string): Promise<string>;
  drop(): Promise<void>;
}

/**
 * Creates the database, both roles, the tables (as the owner), an extra
 * column `team` and the filler rows, then the chosen GRANTs.
 *
 * @throws {TestDatabaseError} when the cluster is unavailable.
 */
export async function createUserDatabase(options: UserDatabaseOptions): Promise<UserDatabase> {
  const db = await createTestDatabase();
  const tag = db.name.slice(-10);
  const ownerRole = `app_owner_${tag}`;
  const kickmonRole = options.grants === "owner" ? ownerRole : `kickmon_${tag}`;
  const schema = options.schema ?? "public";
  const admin = postgres(db.url, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE ROLE ${ownerRole} LOGIN`);
  if (kickmonRole !== ownerRole) await admin.unsafe(`CREATE ROLE ${kickmonRole} LOGIN`);
  await admin.unsafe(`GRANT CONNECT ON DATABASE "${db.name}" TO ${ownerRole}`);
  if (schema === "public") await admin.unsafe(`GRANT CREATE ON SCHEMA public TO ${ownerRole}`);
  else await admin.unsafe(`CREATE SCHEMA ${schema} AUTHORIZATION ${ownerRole}`);
  if (options.grants === "owner") {
    await admin.unsafe(`GRANT CREATE ON DATABASE "${db.name}" TO ${ownerRole}`);
  }
  const as = (role: string) => {
    const u = new URL(db.url);
    u.username = role;
    u.password = "";
    return u.toString();
  };
  const owner = postgres(as(ownerRole), {
    max: 2,
    onnotice: () => {},
    connection: { search_path: schema },
  });
  await owner.unsafe(ORIGINAL_SCHEMA);
  // The other system's own column and rows, which kickmon must leave alone.
  await owner.unsafe(`ALTER TABLE streamers ADD COLUMN team TEXT NOT NULL DEFAULT 'red'`);
  if (options.fillerRows) {
    await owner`
      INSERT INTO streamers (kick_user_id, username, display_name, is_active, team)
      SELECT (90000000 + g)::text, 'filler_' || g, 'Filler ' || g, false, 'blue'
      FROM generate_series(1, ${options.fillerRows}) g`;
  }
  if (options.grants === "least") {
    for (const g of LEAST_PRIVILEGE_GRANTS(schema, kickmonRole, db.name)) await admin.unsafe(g);
  } else if (options.grants === "none") {
    await admin.unsafe(`GRANT CONNECT ON DATABASE "${db.name}" TO ${kickmonRole}`);
  }
  const tables = ["streamers", "status_events", "configurations"];
  return {
    adminUrl: db.url,
    kickmonUrl: as(kickmonRole),
    kickmonRole,
    ownerRole,
    database: db.name,
    owner,
    admin,
    definitions: async () => {
      const columns = await admin`
        SELECT table_name, column_name, ordinal_position, column_default, is_nullable,
               data_type, character_maximum_length
        FROM information_schema.columns
        WHERE table_schema = ${schema} AND table_name = ANY(${tables})
        ORDER BY table_name, ordinal_position`;
      const catalog = await admin`
        SELECT 'constraint' AS kind, conrelid::regclass::text AS rel, conname AS name,
               pg_get_constraintdef(oid) AS def
        FROM pg_constraint WHERE connamespace = ${schema}::regnamespace
        UNION ALL
        SELECT 'index', tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = ${schema}
        UNION ALL
        SELECT 'trigger', tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
        FROM pg_trigger WHERE tgrelid IN (
          SELECT c.oid FROM pg_class c WHERE c.relnamespace = ${schema}::regnamespace)
        ORDER BY 1, 2, 3`;
      return JSON.stringify({ columns, catalog });
    },
    rowsDigest: async (where = "true") => {
      const [r] = await admin.unsafe(
        `SELECT md5(coalesce(string_agg(s::text, '|' ORDER BY s.id), '')) AS d
         FROM ${schema}.streamers s WHERE ${where}`,
      );
      return r.d as string;
    },
    drop: async () => {
      await owner.end({ timeout: 1 });
      await admin.end({ timeout: 1 });
      await db.drop();
      const cleanup = postgres(db.url.replace(/\/[^/?]+(\?|$)/, "/postgres$1"), {
        max: 1,
        onnotice: () => {},
      });
      try {
        for (const r of new Set([kickmonRole, ownerRole])) {
          await cleanup.unsafe(`DROP ROLE IF EXISTS ${r}`);
        }
      } finally {
        await cleanup.end({ timeout: 1 });
      }
    },
  };
}
