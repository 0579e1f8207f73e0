/**
 * The PostgreSQL connection (postgres.js) and the error type every database
 * call reports with. Only modules under `src/db/` import postgres.js.
 *
 * @module
 */
import postgres from "postgres";
import type { DatabaseConfig } from "../config/config.ts";

/** A postgres.js client. */
export type Sql = postgres.Sql<Record<string, never>>;

/**
 * A database failure with the server's SQLSTATE (`code`) when PostgreSQL
 * sent one, or a client-side code such as `ECONNREFUSED` / `CONNECT_TIMEOUT`.
 *
 * @example
 * ```ts
 * try { await pingDatabase(sql); } catch (e) {
 *   if (e instanceof DatabaseError && e.connection) console.log("database unreachable");
 * }
 * ```
 */
export class DatabaseError extends Error {
  /** SQLSTATE (e.g. `23505`) or a client code (e.g. `ECONNREFUSED`), if known. */
  readonly code: string | undefined;
  /** True when the failure is about reaching the server (retry later), not the statement. */
  readonly connection: boolean;
  constructor(message: string, options: { cause?: unknown; code?: string } = {}) {
    super(message, { cause: options.cause });
    this.name = "DatabaseError";
    this.code = options.code;
    this.connection = isConnectionError(options.cause ?? this);
  }
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
]);

/**
 * Whether an error means "the server is unreachable or went away" (queue and
 * retry) rather than "this statement is wrong" (a bug or a constraint).
 *
 * @example
 * ```ts
 * isConnectionError(Object.assign(new Error("x"), { code: "ECONNREFUSED" })); // true
 * ```
 */
export function isConnectionError(e: unknown): boolean {
  if (e instanceof DatabaseError) return e.connection;
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    if (CONNECTION_CODES.has(code)) return true;
    // A SQLSTATE from the server settles it: class 08 is a connection
    // exception; anything else (e.g. 57014 statement timeout) is not an outage.
    if (/^[0-9A-Z]{5}$/.test(code)) return code.startsWith("08");
  }
  if (e instanceof Deno.errors.ConnectionRefused || e instanceof Deno.errors.ConnectionReset) {
    return true;
  }
  const msg = e instanceof Error ? e.message : String(e);
  return /connect|ECONNREFUSED|terminat|closed|broken pipe|timeout/i.test(msg) &&
    !/syntax|violat/i.test(msg);
}

/**
 * Whether PostgreSQL refused a statement because of its data (SQLSTATE class
 * 22 data exception or 23 integrity constraint violation): retrying the same
 * statement cannot succeed.
 *
 * @example
 * ```ts
 * isDataError(Object.assign(new Error("x"), { code: "23505" })); // true
 * ```
 */
export function isDataError(e: unknown): boolean {
  const code = e instanceof DatabaseError ? e.code : (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^2[23][0-9A-Z]{3}$/.test(code);
}

/**
 * Wraps any error from postgres.js in a {@linkcode DatabaseError} with a
 * one-line message that never contains the connection password.
 *
 * @example
 * ```ts
 * throw toDatabaseError(e, "listing streamers");
 * ```
 */
export function toDatabaseError(e: unknown, doing: string): DatabaseError {
  if (e instanceof DatabaseError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  const raw = e instanceof Error ? e.message : String(e);
  const msg = raw.split("\n")[0].replace(/:\/\/[^@\s]*@/g, "://[REDACTED]@");
  return new DatabaseError(`${doing}: ${msg}`, {
    cause: e,
    code: typeof code === "string" ? code : undefined,
  });
}

/** Options for {@linkcode connectDatabase}. */
export interface ConnectOptions {
  /** Pool size override (default: `config.poolSize`). */
  readonly max?: number;
  /** Called when postgres.js reports a server notice. */
  readonly onNotice?: (notice: postgres.Notice) => void;
}

/**
 * Creates a postgres.js client for the configured database. Nothing is sent
 * until the first query. Reconnection backoff and the connect timeout are
 * set explicitly (postgres.js's defaults take 5–20 s to come back after a
 * PostgreSQL restart).
 *
 * @example
 * ```ts
 * const sql = connectDatabase(config.database);
 * await pingDatabase(sql);
 * await sql.end();
 * ```
 */
export function connectDatabase(db: DatabaseConfig, options: ConnectOptions = {}): Sql {
  return postgres(db.url, {
    max: options.max ?? db.poolSize,
    connect_timeout: db.connectTimeoutSec,
    idle_timeout: 0,
    max_lifetime: 60 * 60,
    // Seconds before reconnect attempt n: 0.1, 0.2, 0.4 … capped at 2 s.
    backoff: (attempt: number) => Math.min(2, 0.05 * 2 ** attempt),
    ssl: sslOptions(db) as "require" | false,
    onnotice: options.onNotice ?? (() => {}),
    // Unqualified names (streamers, status_events) are the other system's
    // tables in DATABASE_SCHEMA; kickmon's own objects are always qualified.
    connection: { application_name: "kickmon", search_path: quoteIdent(db.schema) },
  }) as unknown as Sql;
}

/**
 * Quotes a PostgreSQL identifier (`my schema` → `"my schema"`).
 *
 * @example
 * ```ts
 * quoteIdent('we"ird'); // "\"we\"\"ird\""
 * ```
 */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * postgres.js `ssl` for `DATABASE_SSLMODE`: `disable` → no TLS; `require` →
 * TLS without certificate checks; `verify-full` → TLS with the chain checked
 * against `DATABASE_SSLROOTCERT` (else the system's roots) and the host name
 * checked against the configured host. The host is passed explicitly: for an
 * IP address postgres.js sends no server name, and the TLS layer would then
 * check the certificate against "localhost" instead of that address.
 * Exported for connections that cannot use {@linkcode connectDatabase}'s
 * pool settings (the leader lock's session, `db/leader_lock.ts`).
 *
 * @example
 * ```ts
 * postgres(config.database.url, { max: 1, ssl: sslOptions(config.database) as "require" | false });
 * ```
 */
export function sslOptions(db: DatabaseConfig): false | "require" | Record<string, unknown> {
  if (db.sslmode === "disable") return false;
  if (db.sslmode === "require") return "require";
  return {
    // A multi-host URL (`h1,h2`) leaves the name to postgres.js, per host.
    ...(db.host.includes(",") ? {} : { host: db.host }),
    rejectUnauthorized: true,
    ...(db.sslRootCert !== undefined ? { ca: db.sslRootCert } : {}),
  };
}

/**
 * Whether the connection serving this query is encrypted, from
 * `pg_stat_ssl` of its backend (for `kickmon db health`).
 *
 * @returns the TLS protocol version (e.g. `TLSv1.3`), or null for a plain connection.
 * @throws {DatabaseError} when the query fails.
 *
 * @example
 * ```ts
 * console.log((await connectionTls(sql)) ?? "no TLS");
 * ```
 */
export async function connectionTls(sql: Sql): Promise<string | null> {
  try {
    const rows = await sql<{ version: string }[]>`
      SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl`;
    return rows[0]?.version ?? null;
  } catch (e) {
    throw toDatabaseError(e, "reading the connection's TLS state");
  }
}

/**
 * Round-trips one query and returns the server version.
 *
 * @returns `{ latencyMs, version }` (latency in ms).
 * @throws {DatabaseError} when the server cannot be reached or answers with an error.
 *
 * @example
 * ```ts
 * const { latencyMs } = await pingDatabase(sql);
 * ```
 */
export async function pingDatabase(sql: Sql): Promise<{ latencyMs: number; version: string }> {
  const t0 = performance.now();
  try {
    const rows = await sql<{ v: string }[]>`SELECT current_setting('server_version') AS v`;
    return { latencyMs: performance.now() - t0, version: rows[0].v };
  } catch (e) {
    throw toDatabaseError(e, "database unreachable");
  }
}
