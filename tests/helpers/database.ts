/**
 * Test helpers: a fresh PostgreSQL database per test and a free TCP port.
 * Polling until a condition holds ({@linkcode waitFor}) lives in
 * `dev/wait_for.ts` (dev/ tests use it too) and is re-exported here.
 *
 * Databases are created on the cluster named by the admin URL in the
 * `TEST_DATABASE_URL` environment variable (`deno task test` starts one
 * throwaway cluster and sets it). When it is unset, e.g. under a bare
 * `deno test -A`, the first {@linkcode createTestDatabase} call starts a
 * throwaway cluster for this process (~1 s) and stops it on `unload`.
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { createTestDatabase } from "../helpers/database.ts";
 *
 * Deno.test("streamers table starts empty", async () => {
 *   const db = await createTestDatabase();
 *   const sql = postgres(db.url, { max: 2 });
 *   try {
 *     await sql`create table t (id int)`;
 *   } finally {
 *     await sql.end();
 *     await db.drop();
 *   }
 * });
 * ```
 *
 * @module
 */

import postgres from "postgres";
import { startThrowawayCluster, type ThrowawayCluster } from "../../dev/pg_cluster.ts";

export { waitFor, type WaitForOptions, WaitForTimeoutError } from "../../dev/wait_for.ts";

/**
 * A database made by {@linkcode createTestDatabase}.
 *
 * @example
 * ```ts
 * import { createTestDatabase, type TestDatabase } from "../helpers/database.ts";
 *
 * const db: TestDatabase = await createTestDatabase();
 * console.log(db.name, db.url); // kickmon_test_… postgres://postgres@127.0.0.1:5432/kickmon_test_…
 * await db.drop();
 * ```
 */
export interface TestDatabase {
  /** Connection URL of the new database: the admin URL with its database name replaced. */
  readonly url: string;
  /** The database name, `kickmon_test_<time>_<random>` (lowercase, ≤ 63 bytes). */
  readonly name: string;
  /**
   * Terminates every connection to the database and drops it. Safe to call
   * more than once. Close your own pools first to avoid their error events.
   */
  drop(): Promise<void>;
}

/**
 * Raised when a test database cannot be created or dropped; `cause` is the
 * underlying driver or cluster error.
 *
 * @example
 * ```ts
 * import { createTestDatabase, TestDatabaseError } from "../helpers/database.ts";
 *
 * try {
 *   await createTestDatabase();
 * } catch (err) {
 *   if (err instanceof TestDatabaseError) console.error(err.message, err.cause);
 * }
 * ```
 */
export class TestDatabaseError extends Error {
  /**
   * Makes the error.
   *
   * @param message What failed.
   * @param options `cause`: the underlying error.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TestDatabaseError";
  }
}

let ownCluster: Promise<ThrowawayCluster> | undefined;

/** Admin URL: `TEST_DATABASE_URL`, else this process's own throwaway cluster. */
async function adminUrl(): Promise<string> {
  const fromEnv = Deno.env.get("TEST_DATABASE_URL");
  if (fromEnv) return fromEnv;
  ownCluster ??= startThrowawayCluster().then((cluster) => {
    // `unload` handlers cannot await, hence the synchronous stop.
    globalThis.addEventListener("unload", () => cluster.stopSync());
    return cluster;
  });
  return (await ownCluster).url;
}

function adminConnection(url: string) {
  return postgres(url, { max: 1, connect_timeout: 10, onnotice: () => {} });
}

let counter = 0;

/**
 * Creates a fresh, empty, uniquely named database and returns its URL.
 * Uses `TEST_DATABASE_URL` (an admin URL allowed to `create database`) or,
 * if unset, a throwaway cluster started once per process.
 *
 * @returns `{ url, name, drop }`, see {@linkcode TestDatabase}.
 * @throws {TestDatabaseError} if the cluster cannot be reached or started, or
 *   `create database` fails (`cause` says why).
 *
 * @example
 * ```ts
 * import postgres from "postgres";
 * import { createTestDatabase } from "../helpers/database.ts";
 *
 * const db = await createTestDatabase();
 * const sql = postgres(db.url);
 * await sql`select 1`;
 * await sql.end();
 * await db.drop();
 * ```
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  let admin: string;
  try {
    admin = await adminUrl();
  } catch (cause) {
    throw new TestDatabaseError(
      "no PostgreSQL cluster for tests: TEST_DATABASE_URL is unset and a throwaway cluster " +
        `could not be started (${cause instanceof Error ? cause.message : String(cause)})`,
      { cause },
    );
  }
  const random = crypto.randomUUID().replaceAll("-", "").slice(0, 10);
  const name = `kickmon_test_${Date.now().toString(36)}_${(counter++).toString(36)}_${random}`;

  const sql = adminConnection(admin);
  try {
    await sql.unsafe(`create database "${name}"`);
  } catch (cause) {
    throw new TestDatabaseError(`could not create test database ${name} via ${redact(admin)}`, {
      cause,
    });
  } finally {
    await sql.end({ timeout: 5 });
  }

  const dbUrl = new URL(admin);
  dbUrl.pathname = `/${name}`;
  let dropped = false;

  return {
    url: dbUrl.toString(),
    name,
    async drop() {
      if (dropped) return;
      const sql = adminConnection(admin);
      try {
        await sql`
          select pg_terminate_backend(pid) from pg_stat_activity
          where datname = ${name} and pid <> pg_backend_pid()`;
        await sql.unsafe(`drop database if exists "${name}" with (force)`);
        dropped = true;
      } catch (cause) {
        throw new TestDatabaseError(`could not drop test database ${name}`, { cause });
      } finally {
        await sql.end({ timeout: 5 });
      }
    },
  };
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "<unparseable TEST_DATABASE_URL>";
  }
}

/**
 * A TCP port that was free a moment ago on `hostname`: binds port 0, reads
 * the port the OS chose and closes the listener. Another process may take it
 * before you bind it, so retry on `AddrInUse` where that matters.
 *
 * @param hostname Interface to probe; default `"127.0.0.1"`.
 * @returns A port number in the OS ephemeral range (e.g. 32768–60999 on Linux).
 *
 * @example
 * ```ts
 * import { freePort } from "../helpers/database.ts";
 *
 * const port = freePort();
 * const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, () => new Response("ok"));
 * await server.shutdown();
 * ```
 */
export function freePort(hostname = "127.0.0.1"): number {
  const listener = Deno.listen({ hostname, port: 0 });
  try {
    return (listener.addr as Deno.NetAddr).port;
  } finally {
    listener.close();
  }
}
