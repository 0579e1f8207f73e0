/**
 * What kickmon finds in the user's database before it touches anything: the
 * other system's tables and columns, the privileges kickmon's login has on
 * them, kickmon's own schema, and the optional list trigger. Every missing
 * piece becomes a {@linkcode SchemaProblem} that names it in the operator's
 * terms and carries the exact SQL (`GRANT …`, `CREATE SCHEMA …`) that fixes it.
 *
 * Columns are read from `pg_attribute`, not `information_schema.columns`
 * (which hides the columns the current role has no privilege on), and
 * privileges with PostgreSQL's `has_*_privilege` functions, so the answer is
 * the server's own.
 *
 * @module
 */
import { type Sql, toDatabaseError } from "./client.ts";

/** kickmon's own schema (its bookkeeping; see migrations/kickmon_*.sql). */
export const KICKMON_SCHEMA = "kickmon";

/** Names of the optional list-change triggers on `streamers` (migrations/list_trigger.sql). */
export const LIST_TRIGGERS = ["kickmon_streamers_notify", "kickmon_streamers_notify_update"];

/**
 * Columns kickmon reads or writes in the other system's tables, with the
 * specification's type (used in the suggested `ALTER TABLE … ADD COLUMN`).
 */
export const REQUIRED_COLUMNS = {
  streamers: {
    id: "SERIAL PRIMARY KEY",
    kick_user_id: "VARCHAR(255)",
    username: "VARCHAR(255)",
    status: "VARCHAR(50) NOT NULL DEFAULT 'unknown'",
    last_seen_online: "TIMESTAMP WITH TIME ZONE",
    last_status_update: "TIMESTAMP WITH TIME ZONE",
    is_active: "BOOLEAN NOT NULL DEFAULT true",
    updated_at: "TIMESTAMP WITH TIME ZONE DEFAULT NOW()",
  },
  status_events: {
    id: "SERIAL PRIMARY KEY",
    streamer_id: "INTEGER NOT NULL REFERENCES streamers(id)",
    event_type: "VARCHAR(100) NOT NULL",
    timestamp: "TIMESTAMP WITH TIME ZONE NOT NULL",
    details: "JSONB",
    created_at: "TIMESTAMP WITH TIME ZONE DEFAULT NOW()",
  },
} as const;

/** The `streamers` columns kickmon updates (and needs column UPDATE privilege on). */
export const UPDATED_COLUMNS = [
  "status",
  "last_seen_online",
  "last_status_update",
  "updated_at",
] as const;

/** One of the other system's tables as found. */
export interface TableInfo {
  /** `schema.table`, quoted where needed, for messages and fixes. */
  readonly qualified: string;
  readonly exists: boolean;
  /** Owner role name. */
  readonly owner: string | null;
  /** Whether kickmon's role is the owner (or a member of it). */
  readonly owned: boolean;
  readonly columns: ReadonlySet<string>;
  readonly select: boolean;
  readonly insert: boolean;
  readonly delete: boolean;
  readonly trigger: boolean;
  /** Columns kickmon's role may UPDATE. */
  readonly updatable: ReadonlySet<string>;
}

/** Everything {@linkcode inspectDatabase} finds. */
export interface DatabaseInspection {
  /** kickmon's login role, quoted where needed. */
  readonly role: string;
  /** The database name, quoted where needed. */
  readonly database: string;
  /** `DATABASE_SCHEMA`, quoted where needed. */
  readonly appSchema: string;
  readonly appSchemaExists: boolean;
  readonly appSchemaUsage: boolean;
  readonly appSchemaCreate: boolean;
  readonly databaseCreate: boolean;
  readonly streamers: TableInfo;
  readonly statusEvents: TableInfo;
  /** `status_events.id`'s sequence (null for an identity column, which needs no grant). */
  readonly eventSequence: { readonly name: string; readonly usage: boolean } | null;
  readonly kickmonSchema: {
    readonly exists: boolean;
    readonly usage: boolean;
    readonly create: boolean;
    readonly owner: string | null;
  };
  /** Versions recorded in `kickmon.schema_migrations` (empty when it does not exist). */
  readonly appliedVersions: ReadonlySet<string>;
  /** Whether kickmon's role may read and write `kickmon.streamer_state` (true when absent). */
  readonly kickmonTablesUsable: boolean;
  /** Both list triggers are installed on `streamers`. */
  readonly listTrigger: boolean;
  /** A database laid out by kickmon 0.1.0 (kickmon's columns inside `streamers`). */
  readonly legacy: boolean;
}

/**
 * Something kickmon needs and does not have, in the operator's terms.
 *
 * @example
 * ```ts
 * const p: SchemaProblem = {
 *   message: "missing privilege: UPDATE (status) on public.streamers",
 *   fix: "GRANT UPDATE (status) ON public.streamers TO kickmon;",
 * };
 * ```
 */
export interface SchemaProblem {
  /** One line: what is missing. */
  readonly message: string;
  /** SQL (or a command) that fixes it, run by the table owner or a superuser. */
  readonly fix: string;
}

/**
 * The database is reachable but not ready for kickmon: missing privileges,
 * columns or schema. A configuration problem (exit 2), not an outage.
 *
 * @example
 * ```ts
 * try { await migrate(sql, { appSchema: "public" }); } catch (e) {
 *   if (e instanceof SchemaError) for (const p of e.problems) console.error(p.message, p.fix);
 * }
 * ```
 */
export class SchemaError extends Error {
  /** Every problem found (at least one). */
  readonly problems: readonly SchemaProblem[];
  constructor(what: string, problems: readonly SchemaProblem[], options?: ErrorOptions) {
    super(
      `${what}:\n${problems.map((p) => `  - ${p.message}\n    fix: ${p.fix}`).join("\n")}`,
      options,
    );
    this.name = "SchemaError";
    this.problems = problems;
  }
}

async function tableInfo(sql: Sql, schema: string, table: string): Promise<TableInfo> {
  const [t] = await sql<
    {
      oid: number | null;
      qualified: string;
      owner: string | null;
      owned: boolean | null;
      sel: boolean | null;
      ins: boolean | null;
      del: boolean | null;
      trg: boolean | null;
    }[]
  >`
    SELECT c.oid::int AS oid,
           quote_ident(${schema}) || '.' || quote_ident(${table}) AS qualified,
           pg_get_userbyid(c.relowner) AS owner,
           pg_has_role(c.relowner, 'USAGE') AS owned,
           has_table_privilege(c.oid, 'SELECT') AS sel,
           has_table_privilege(c.oid, 'INSERT') AS ins,
           has_table_privilege(c.oid, 'DELETE') AS del,
           has_table_privilege(c.oid, 'TRIGGER') AS trg
    FROM (SELECT 1) one
    LEFT JOIN pg_namespace n ON n.nspname = ${schema}
    LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = ${table}
      AND c.relkind IN ('r', 'p')`;
  const columns = new Set<string>();
  const updatable = new Set<string>();
  if (t.oid !== null) {
    const cols = await sql<{ attname: string; upd: boolean }[]>`
      SELECT attname, has_column_privilege(attrelid, attnum, 'UPDATE') AS upd
      FROM pg_attribute WHERE attrelid = ${t.oid} AND attnum > 0 AND NOT attisdropped`;
    for (const c of cols) {
      columns.add(c.attname);
      if (c.upd) updatable.add(c.attname);
    }
  }
  return {
    qualified: t.qualified,
    exists: t.oid !== null,
    owner: t.owner,
    owned: t.owned ?? false,
    columns,
    select: t.sel ?? false,
    insert: t.ins ?? false,
    delete: t.del ?? false,
    trigger: t.trg ?? false,
    updatable,
  };
}

/**
 * Reads the catalog (read-only; any role may) and reports what kickmon finds.
 *
 * @param appSchema the schema of the other system's tables (`DATABASE_SCHEMA`).
 * @returns see {@linkcode DatabaseInspection}.
 * @throws {DatabaseError} when the database cannot be reached or a catalog query fails.
 *
 * @example
 * ```ts
 * const found = await inspectDatabase(sql, "public");
 * if (!found.listTrigger) console.log("list changes are polled");
 * ```
 */
export async function inspectDatabase(sql: Sql, appSchema: string): Promise<DatabaseInspection> {
  try {
    const [g] = await sql<
      {
        role: string;
        database: string;
        app: string;
        app_exists: boolean;
        app_usage: boolean | null;
        app_create: boolean | null;
        db_create: boolean;
        k_exists: boolean;
        k_usage: boolean | null;
        k_create: boolean | null;
        k_owner: string | null;
      }[]
    >`
      SELECT quote_ident(current_user) AS role,
             quote_ident(current_database()) AS database,
             quote_ident(${appSchema}) AS app,
             a.oid IS NOT NULL AS app_exists,
             CASE WHEN a.oid IS NOT NULL THEN has_schema_privilege(a.oid, 'USAGE') END AS app_usage,
             CASE WHEN a.oid IS NOT NULL THEN has_schema_privilege(a.oid, 'CREATE') END AS app_create,
             has_database_privilege(current_database(), 'CREATE') AS db_create,
             k.oid IS NOT NULL AS k_exists,
             CASE WHEN k.oid IS NOT NULL THEN has_schema_privilege(k.oid, 'USAGE') END AS k_usage,
             CASE WHEN k.oid IS NOT NULL THEN has_schema_privilege(k.oid, 'CREATE') END AS k_create,
             pg_get_userbyid(k.nspowner) AS k_owner
      FROM (SELECT 1) one
      LEFT JOIN pg_namespace a ON a.nspname = ${appSchema}
      LEFT JOIN pg_namespace k ON k.nspname = ${KICKMON_SCHEMA}`;
    const streamers = await tableInfo(sql, appSchema, "streamers");
    const statusEvents = await tableInfo(sql, appSchema, "status_events");
    let eventSequence: DatabaseInspection["eventSequence"] = null;
    if (statusEvents.exists && statusEvents.columns.has("id")) {
      const [s] = await sql<{ seq: string | null; usage: boolean | null }[]>`
        SELECT seq, CASE WHEN seq IS NOT NULL THEN has_sequence_privilege(seq, 'USAGE') END AS usage
        FROM (SELECT pg_get_serial_sequence(${statusEvents.qualified}, 'id') AS seq) s
        WHERE NOT EXISTS (
          SELECT 1 FROM pg_attribute
          WHERE attrelid = ${statusEvents.qualified}::regclass AND attname = 'id' AND attidentity <> '')`;
      if (s?.seq) eventSequence = { name: s.seq, usage: s.usage ?? false };
    }
    let appliedVersions = new Set<string>();
    let kickmonTablesUsable = true;
    if (g.k_exists && g.k_usage) {
      const [m] = await sql<{ migrations: boolean; state: boolean | null }[]>`
        SELECT to_regclass('kickmon.schema_migrations') IS NOT NULL AS migrations,
               CASE WHEN to_regclass('kickmon.streamer_state') IS NOT NULL THEN
                 has_table_privilege('kickmon.streamer_state', 'SELECT, INSERT, UPDATE, DELETE')
                 AND has_table_privilege('kickmon.schema_migrations', 'SELECT') END AS state`;
      kickmonTablesUsable = m.state ?? true;
      if (m.migrations && kickmonTablesUsable) {
        appliedVersions = new Set(
          (await sql<{ version: string }[]>`SELECT version FROM kickmon.schema_migrations`)
            .map((r) => r.version),
        );
      }
    }
    let listTrigger = false;
    let legacy = false;
    if (streamers.exists) {
      const [t] = await sql<{ n: number; legacy: boolean }[]>`
        SELECT (SELECT count(*)::int FROM pg_trigger
                WHERE tgrelid = ${streamers.qualified}::regclass
                  AND tgname = ANY(${LIST_TRIGGERS}::text[]) AND NOT tgisinternal) AS n,
               EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = ${appSchema} AND c.relname = 'schema_migrations')
                 AS legacy`;
      listTrigger = t.n === LIST_TRIGGERS.length;
      legacy = t.legacy && streamers.columns.has("kick_channel_id");
    }
    return {
      role: g.role,
      database: g.database,
      appSchema: g.app,
      appSchemaExists: g.app_exists,
      appSchemaUsage: g.app_usage ?? false,
      appSchemaCreate: g.app_create ?? false,
      databaseCreate: g.db_create,
      streamers,
      statusEvents,
      eventSequence,
      kickmonSchema: {
        exists: g.k_exists,
        usage: g.k_usage ?? false,
        create: g.k_create ?? false,
        owner: g.k_owner,
      },
      appliedVersions,
      kickmonTablesUsable,
      listTrigger,
      legacy,
    };
  } catch (e) {
    throw toDatabaseError(e, "inspecting the database");
  }
}

/** What the caller is about to do, for {@linkcode schemaProblems}. */
export interface ProblemOptions {
  /** Pending kickmon migrations will be applied (needs CREATE on kickmon's schema). */
  readonly migrating?: boolean;
  /** The list trigger is required (`MONITORING_LIST_FOLLOW=trigger` or `--install-trigger`). */
  readonly trigger?: boolean;
}

/**
 * Every problem that keeps kickmon from running on this database, each with its fix.
 * An empty database where kickmon may create tables has none: `db migrate` creates them.
 *
 * @returns the problems (empty when ready).
 *
 * @example
 * ```ts
 * const problems = schemaProblems(await inspectDatabase(sql, "public"), { migrating: true });
 * if (problems.length) throw new SchemaError("the database is not ready", problems);
 * ```
 */
export function schemaProblems(
  db: DatabaseInspection,
  options: ProblemOptions = {},
): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  const role = db.role;
  if (!db.appSchemaExists) {
    out.push({
      message: `schema ${db.appSchema} (DATABASE_SCHEMA) does not exist`,
      fix:
        `set DATABASE_SCHEMA to the schema of the streamers table, or CREATE SCHEMA ${db.appSchema};`,
    });
    return out;
  }
  if (!db.appSchemaUsage) {
    out.push({
      message: `missing privilege: USAGE on schema ${db.appSchema}`,
      fix: `GRANT USAGE ON SCHEMA ${db.appSchema} TO ${role};`,
    });
  }
  const creatingTables = !db.streamers.exists;
  if (creatingTables && !db.appSchemaCreate) {
    out.push({
      message: `table ${db.streamers.qualified} does not exist and ${role} may not create it`,
      fix: `GRANT CREATE ON SCHEMA ${db.appSchema} TO ${role}; ` +
        `(or let the system that owns the list create its tables first)`,
    });
  }
  if (!creatingTables) {
    for (
      const [table, info] of [["streamers", db.streamers], [
        "status_events",
        db.statusEvents,
      ]] as const
    ) {
      if (!info.exists) {
        out.push({
          message: `table ${info.qualified} does not exist`,
          fix: `CREATE TABLE ${info.qualified} (${
            Object.entries(REQUIRED_COLUMNS[table]).map(([c, t]) => `${c} ${t}`).join(", ")
          });`,
        });
        continue;
      }
      const missing = Object.keys(REQUIRED_COLUMNS[table]).filter((c) => !info.columns.has(c));
      for (const c of missing) {
        out.push({
          message: `column ${info.qualified}.${c} is missing`,
          fix: `ALTER TABLE ${info.qualified} ADD COLUMN ${c} ${
            (REQUIRED_COLUMNS[table] as Record<string, string>)[c].replace(
              / NOT NULL.*| PRIMARY.*| REFERENCES.*/,
              "",
            )
          };`,
        });
      }
    }
    const s = db.streamers;
    if (s.exists && !s.select) {
      out.push({
        message: `missing privilege: SELECT on ${s.qualified}`,
        fix: `GRANT SELECT ON ${s.qualified} TO ${role};`,
      });
    }
    const noUpdate = UPDATED_COLUMNS.filter((c) => s.columns.has(c) && !s.updatable.has(c));
    if (s.exists && noUpdate.length) {
      out.push({
        message: `missing privilege: UPDATE (${noUpdate.join(", ")}) on ${s.qualified}`,
        fix: `GRANT UPDATE (${noUpdate.join(", ")}) ON ${s.qualified} TO ${role};`,
      });
    }
    const e = db.statusEvents;
    const noEvents = [...(e.select ? [] : ["SELECT"]), ...(e.insert ? [] : ["INSERT"])];
    if (e.exists && noEvents.length) {
      out.push({
        message: `missing privilege: ${noEvents.join(", ")} on ${e.qualified}`,
        fix: `GRANT ${noEvents.join(", ")} ON ${e.qualified} TO ${role};`,
      });
    }
    if (db.eventSequence && !db.eventSequence.usage) {
      out.push({
        message: `missing privilege: USAGE on sequence ${db.eventSequence.name} (status_events.id)`,
        fix: `GRANT USAGE ON SEQUENCE ${db.eventSequence.name} TO ${role};`,
      });
    }
  }
  const k = db.kickmonSchema;
  const pendingOwn = options.migrating === true;
  if (!k.exists && !db.databaseCreate) {
    out.push({
      message: `kickmon's schema ${KICKMON_SCHEMA} does not exist and ${role} may not create it`,
      fix: `CREATE SCHEMA ${KICKMON_SCHEMA} AUTHORIZATION ${role}; ` +
        `(or GRANT CREATE ON DATABASE ${db.database} TO ${role};)`,
    });
  } else if (k.exists && (!k.usage || (pendingOwn && !k.create))) {
    const need = [...(k.usage ? [] : ["USAGE"]), ...(pendingOwn && !k.create ? ["CREATE"] : [])];
    out.push({
      message: `missing privilege: ${
        need.join(", ")
      } on schema ${KICKMON_SCHEMA} (owned by ${k.owner})`,
      fix: `GRANT ${need.join(", ")} ON SCHEMA ${KICKMON_SCHEMA} TO ${role};`,
    });
  } else if (!db.kickmonTablesUsable) {
    out.push({
      message: `missing privileges on kickmon's tables in schema ${KICKMON_SCHEMA}`,
      fix:
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${KICKMON_SCHEMA} TO ${role}; ` +
        `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${KICKMON_SCHEMA} TO ${role};`,
    });
  }
  if (options.trigger && !db.listTrigger && !creatingTables) {
    const s = db.streamers;
    if (!s.owned && !s.trigger) {
      out.push({
        message:
          `the list trigger is requested but ${role} may not create triggers on ${s.qualified}`,
        fix:
          `GRANT TRIGGER ON ${s.qualified} TO ${role}; then kickmon db migrate --install-trigger ` +
          `(or unset MONITORING_LIST_FOLLOW to poll the list instead)`,
      });
    }
  }
  return out;
}
