/**
 * All SQL of leadership (issue 14): one PostgreSQL session of its own that
 * holds a session-level advisory lock while this instance leads, checks in
 * `pg_locks` that it still holds it, and publishes who holds it, with no
 * table of kickmon's.
 *
 * **The key.** `pg_try_advisory_lock(int4, int4)` with
 * {@linkcode LEADER_LOCK_NAMESPACE} (`0x6b6d6c64`, "kmld") and a 31-bit
 * FNV-1a hash of `DATABASE_SCHEMA` (see {@linkcode leaderLockKey}). Advisory
 * locks are per database already (`pg_locks.database`), so the database name
 * is not part of the key; the schema is, so two deployments that follow
 * different `streamers` tables in one database elect a leader each. The
 * two-key form lives in its own key space (`pg_locks.objsubid = 2`), apart
 * from the migration lock's one-key `pg_advisory_xact_lock(0x6b69636b)`
 * (`db/migrate.ts`).
 *
 * **Who leads.** The leader's session sets its `application_name` to
 * `kickmon-leader:<since s>:<pid>:<host>` (a standby's session carries
 * `kickmon-elector:<pid>:<host>`); {@linkcode LeaderLock.holder} finds the
 * session granted the lock in `pg_locks` and reads its name from
 * `pg_stat_activity`. Neither view needs a privilege: `pg_locks` is readable
 * by every role, and `pg_stat_activity` shows `pid` and `application_name`
 * of every session, also of other roles (only the query text, client address
 * and times are hidden from a role that is not the session's and lacks
 * `pg_read_all_stats`); `tests/leader_lock_test.ts` proves it for two
 * least-privilege roles. PostgreSQL keeps 63 bytes of an `application_name`
 * and turns non-ASCII characters into `?`, so a host name longer than what
 * fits (about 29 bytes) is shown truncated.
 *
 * **The session.** A postgres.js client with `max: 1` that never recycles
 * its connection (`max_lifetime`, `idle_timeout` off: recycling would drop
 * the lock), TLS as `DATABASE_SSLMODE` says (`sslOptions` of `client.ts`),
 * and server-side TCP keepalives (`tcp_keepalives_idle`/`_interval`/`_count`
 * sent as startup parameters, so every reconnect has them) so that the
 * server ends the session, and frees the lock, about `deadPeerSec` after its
 * client went silent (a dead host, a partition). A statement that does not
 * answer within `queryTimeoutMs` ends the client (a later call connects a new
 * session): a hung session must not keep the lock on this side either.
 * postgres.js reconnects on the next statement after any close; a new
 * session holds no lock, and `onClose` tells the elector at once. Behind a
 * pooler in transaction mode (PgBouncer) session locks do not work: connect
 * directly.
 *
 * Every failure is a {@linkcode DatabaseError} (`connection` true for an
 * unreachable server or a timeout).
 *
 * @module
 */
import postgres from "postgres";
import type { DatabaseConfig } from "../config/config.ts";
import { DatabaseError, type Sql, sslOptions, toDatabaseError } from "./client.ts";

/**
 * First key of the leader lock: `0x6b6d6c64`, "kmld" in ASCII.
 *
 * @example
 * ```ts
 * leaderLockKey("public")[0] === LEADER_LOCK_NAMESPACE; // true
 * ```
 */
export const LEADER_LOCK_NAMESPACE = 0x6b6d6c64;

/**
 * Prefix of the leader session's `application_name`.
 *
 * @example
 * ```ts
 * applicationName({ host: "h", pid: 1, since: 0 }).startsWith(LEADER_APP_PREFIX); // true
 * ```
 */
export const LEADER_APP_PREFIX = "kickmon-leader";
/**
 * Prefix of a candidate's (standby's) session `application_name`.
 *
 * @example
 * ```ts
 * applicationName({ host: "h", pid: 1, since: null }).startsWith(ELECTOR_APP_PREFIX); // true
 * ```
 */
export const ELECTOR_APP_PREFIX = "kickmon-elector";
/** PostgreSQL keeps this many bytes of an `application_name` (NAMEDATALEN − 1). */
const APP_NAME_MAX = 63;

/**
 * The two `int4` keys of the leader lock for a `DATABASE_SCHEMA`:
 * `[LEADER_LOCK_NAMESPACE, fnv1a32(utf8(schema)) & 0x7fffffff]`. Both are
 * below 2³¹, so they read the same as `pg_locks.classid` / `objid` (oid).
 *
 * @param schema `DATABASE_SCHEMA` (case-sensitive, as configured).
 * @returns `[namespace, schema hash]`.
 *
 * @example
 * ```ts
 * leaderLockKey("public"); // [1802333284, 1284543360]
 * ```
 */
export function leaderLockKey(schema: string): readonly [number, number] {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(schema)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return [LEADER_LOCK_NAMESPACE, h & 0x7fffffff];
}

/**
 * Who holds (or is about to hold) the lock, as published in
 * `application_name`.
 *
 * @example
 * ```ts
 * const id: LeaderIdentity = { host: "kick-01", pid: 4242, since: 1_764_650_000_000 };
 * ```
 */
export interface LeaderIdentity {
  /** Host name of the instance (possibly truncated, see the module doc). */
  readonly host: string;
  /** OS process id of the kickmon instance (not the PostgreSQL backend's). */
  readonly pid: number;
  /**
   * When it became leader, ms since the Unix epoch, whole seconds; null while
   * its session still carries the candidate's name (for one poll at most).
   */
  readonly since: number | null;
}

/**
 * The `application_name` that publishes an identity:
 * `kickmon-leader:<since s>:<pid>:<host>` when `since` is set, else
 * `kickmon-elector:<pid>:<host>`; cut to 63 bytes, non-ASCII as `?` (what
 * PostgreSQL would store anyway).
 *
 * @example
 * ```ts
 * applicationName({ host: "db1", pid: 42, since: 1_764_650_000_000 });
 * // "kickmon-leader:1764650000:42:db1"
 * ```
 */
export function applicationName(id: LeaderIdentity): string {
  const head = id.since === null
    ? `${ELECTOR_APP_PREFIX}:${id.pid}:`
    : `${LEADER_APP_PREFIX}:${Math.floor(id.since / 1000)}:${id.pid}:`;
  return (head + id.host.replace(/[^\x20-\x7e]/g, "?")).slice(0, APP_NAME_MAX);
}

/**
 * Reads an identity back from an `application_name` made by
 * {@linkcode applicationName}.
 *
 * @returns the identity, or null for any other name.
 *
 * @example
 * ```ts
 * parseApplicationName("kickmon-leader:1764650000:42:db1");
 * // { host: "db1", pid: 42, since: 1764650000000 }
 * ```
 */
export function parseApplicationName(name: string | null | undefined): LeaderIdentity | null {
  if (!name) return null;
  let m = /^kickmon-leader:(\d{1,12}):(\d{1,10}):(.*)$/s.exec(name);
  if (m) return { host: m[3], pid: Number(m[2]), since: Number(m[1]) * 1000 };
  m = /^kickmon-elector:(\d{1,10}):(.*)$/s.exec(name);
  if (m) return { host: m[2], pid: Number(m[1]), since: null };
  return null;
}

/**
 * The session that holds the lock, from `pg_locks` ⋈ `pg_stat_activity`.
 *
 * @example
 * ```ts
 * const h: LockHolder | null = await lock.holder();
 * ```
 */
export interface LockHolder {
  /** Its PostgreSQL backend pid (what `pg_terminate_backend` takes). */
  readonly backendPid: number;
  /** Its `application_name`, "" when not visible. */
  readonly applicationName: string;
  /** The identity published there, null when it is not kickmon's format. */
  readonly identity: LeaderIdentity | null;
}

/**
 * What {@linkcode LeaderLock.sessionInfo} reports of the current session.
 *
 * @example
 * ```ts
 * const { keepalives }: LeaderSessionInfo = await lock.sessionInfo();
 * ```
 */
export interface LeaderSessionInfo {
  /** `pg_backend_pid()`. */
  readonly backendPid: number;
  /** `current_setting('application_name')`. */
  readonly applicationName: string;
  /** Server-side keepalive settings in effect, in s (0: the OS default, e.g. over a unix socket). */
  readonly keepalives: {
    readonly idleSec: number;
    readonly intervalSec: number;
    readonly count: number;
  };
}

/**
 * Options for {@linkcode LeaderLock}.
 *
 * @example
 * ```ts
 * const opts: LeaderLockOptions = { identity: { host: "kick-01", pid: Deno.pid }, deadPeerSec: 6 };
 * ```
 */
export interface LeaderLockOptions {
  /** This instance, published in `application_name` (`since` is set by {@linkcode LeaderLock.tryAcquire}). */
  readonly identity: { readonly host: string; readonly pid: number };
  /** The schema the key is derived from (default: `db.schema`, i.e. `DATABASE_SCHEMA`). */
  readonly schema?: string;
  /**
   * How long, in s, the server keeps the session after its client went
   * silent (TCP keepalives; at least 3). Default 6.
   */
  readonly deadPeerSec?: number;
  /** A statement not answered within this many ms ends the client (default 2000). */
  readonly queryTimeoutMs?: number;
  /**
   * Called (synchronously) whenever the session's connection closed, for any
   * reason, and also BEFORE this side ends it ({@linkcode LeaderLock.reset},
   * a statement timeout, `close()`), so that leadership is given up before
   * the server can free the lock. May be called more than once per session.
   */
  readonly onClose?: () => void;
}

/** The server's keepalive settings for a dead-peer bound: idle + interval × count = `deadPeerSec`. */
function keepalives(deadPeerSec: number): { idle: number; interval: number; count: number } {
  const total = Math.max(3, Math.floor(deadPeerSec));
  return { idle: total - 2, interval: 1, count: 2 };
}

/**
 * The leader lock's own PostgreSQL session. Nothing is sent until the first
 * call; each call is one or two statements on that one session.
 *
 * @example
 * ```ts
 * const lock = new LeaderLock(config.database, { identity: { host: "db1", pid: Deno.pid } });
 * if (await lock.tryAcquire(Date.now())) {
 *   console.log("leading; still?", await lock.verify());
 *   await lock.release();
 * } else {
 *   console.log("led by", (await lock.holder())?.identity);
 * }
 * await lock.close();
 * ```
 */
export class LeaderLock {
  /** The lock's two keys, see {@linkcode leaderLockKey}. */
  readonly key: readonly [number, number];
  readonly #db: DatabaseConfig;
  readonly #identity: { readonly host: string; readonly pid: number };
  readonly #keepalives: { idle: number; interval: number; count: number };
  readonly #queryTimeoutMs: number;
  readonly #onClose: () => void;
  #sql: Sql | null = null;
  #closed = false;

  /**
   * Makes the lock; nothing is sent before the first call.
   *
   * @param db the database settings (`config.database`).
   * @param options identity, key schema, timeouts, `onClose`.
   */
  constructor(db: DatabaseConfig, options: LeaderLockOptions) {
    this.#db = db;
    this.#identity = options.identity;
    this.key = leaderLockKey(options.schema ?? db.schema);
    this.#keepalives = keepalives(options.deadPeerSec ?? 6);
    this.#queryTimeoutMs = options.queryTimeoutMs ?? 2000;
    this.#onClose = options.onClose ?? (() => {});
  }

  #client(): Sql {
    if (this.#closed) throw new DatabaseError("the leader lock's session is closed");
    this.#sql ??= postgres(this.#db.url, {
      max: 1,
      connect_timeout: this.#db.connectTimeoutSec,
      idle_timeout: 0,
      max_lifetime: null,
      backoff: (attempt: number) => Math.min(2, 0.05 * 2 ** attempt),
      ssl: sslOptions(this.#db) as "require" | false,
      onnotice: () => {},
      onclose: () => this.#onClose(),
      connection: {
        application_name: applicationName({ ...this.#identity, since: null }),
        tcp_keepalives_idle: String(this.#keepalives.idle),
        tcp_keepalives_interval: String(this.#keepalives.interval),
        tcp_keepalives_count: String(this.#keepalives.count),
      },
    }) as unknown as Sql;
    return this.#sql;
  }

  /** Runs one statement with the timeout; a timeout ends the client. */
  async #run<T>(doing: string, q: (sql: Sql) => Promise<T>): Promise<T> {
    const sql = this.#client();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new DatabaseError(`${doing}: no answer within ${this.#queryTimeoutMs} ms`, {
      code: "CONNECT_TIMEOUT",
    });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timedOut), this.#queryTimeoutMs);
    });
    try {
      return await Promise.race([q(sql), timeout]);
    } catch (e) {
      if (e === timedOut) await this.reset();
      throw toDatabaseError(e, doing);
    } finally {
      clearTimeout(timer);
    }
  }

  /** `EXISTS` of this session's granted lock in `pg_locks`, as SQL. */
  #heldSql(sql: Sql) {
    return sql`EXISTS (
      SELECT 1 FROM pg_locks
      WHERE locktype = 'advisory'
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND classid = ${this.key[0]}::oid AND objid = ${this.key[1]}::oid AND objsubid = 2
        AND pid = pg_backend_pid() AND granted)`;
  }

  /**
   * Takes the lock if it is free (never waits), checks in `pg_locks` that
   * this session holds it, and publishes `since` in `application_name`.
   * Idempotent: a session that holds it already answers true (the lock is
   * not taken twice).
   *
   * @param since when this instance becomes leader, ms since the Unix epoch.
   * @returns true when this session holds the lock now.
   * @throws {DatabaseError} when the server is unreachable or the statement fails.
   *
   * @example
   * ```ts
   * if (await lock.tryAcquire(Date.now())) console.log("leader");
   * ```
   */
  async tryAcquire(since: number): Promise<boolean> {
    const [k1, k2] = this.key;
    const got = await this.#run("taking the leader lock", async (sql) => {
      const [r] = await sql<{ got: boolean }[]>`
        SELECT CASE WHEN ${this.#heldSql(sql)} THEN true
                    ELSE pg_try_advisory_lock(${k1}::int4, ${k2}::int4) END AS got`;
      return r.got;
    });
    if (!got) return false;
    const name = applicationName({ ...this.#identity, since });
    const held = await this.#run("publishing the leader's identity", async (sql) => {
      const [r] = await sql<{ held: boolean }[]>`
        SELECT set_config('application_name', ${name}, false) IS NOT NULL
               AND ${this.#heldSql(sql)} AS held`;
      return r.held;
    });
    return held;
  }

  /**
   * Whether THIS session (`pg_backend_pid()`) holds the lock, per `pg_locks`.
   * After a reconnect the session is a new one and holds nothing: false.
   *
   * @throws {DatabaseError} when the server is unreachable or does not answer in time.
   *
   * @example
   * ```ts
   * if (!(await lock.verify())) console.log("lost leadership");
   * ```
   */
  verify(): Promise<boolean> {
    return this.#run("checking the leader lock", async (sql) => {
      const [r] = await sql<{ held: boolean }[]>`SELECT ${this.#heldSql(sql)} AS held`;
      return r.held;
    });
  }

  /**
   * The session holding the lock, whoever it is (this one included).
   *
   * @returns the holder, or null when nobody holds it.
   * @throws {DatabaseError} when the server is unreachable or does not answer in time.
   *
   * @example
   * ```ts
   * const h = await lock.holder();
   * console.log(h?.identity?.host, h?.identity?.pid);
   * ```
   */
  holder(): Promise<LockHolder | null> {
    const [k1, k2] = this.key;
    return this.#run("looking up the leader", async (sql) => {
      const rows = await sql<{ pid: number; app: string | null }[]>`
        SELECT l.pid, a.application_name AS app
        FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory'
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = ${k1}::oid AND l.objid = ${k2}::oid AND l.objsubid = 2
          AND l.granted
        LIMIT 1`;
      if (rows.length === 0) return null;
      const app = rows[0].app ?? "";
      return { backendPid: rows[0].pid, applicationName: app, identity: parseApplicationName(app) };
    });
  }

  /**
   * Gives the lock up (every level this session holds) and puts the
   * candidate's name back. Does nothing when it is not held.
   *
   * @throws {DatabaseError} when the server is unreachable (the lock then
   *   goes with the session; {@linkcode close} ends it).
   *
   * @example
   * ```ts
   * await lock.release();
   * ```
   */
  async release(): Promise<void> {
    const [k1, k2] = this.key;
    const name = applicationName({ ...this.#identity, since: null });
    await this.#run("releasing the leader lock", async (sql) => {
      // pg_advisory_unlock frees one level of a lock taken more than once.
      for (let level = 0; level < 16; level++) {
        const [r] = await sql<{ ok: boolean }[]>`
          SELECT pg_advisory_unlock(${k1}::int4, ${k2}::int4) AS ok`;
        if (!r.ok) break;
      }
      await sql`SELECT set_config('application_name', ${name}, false)`;
    });
  }

  /**
   * What the current session is: backend pid, `application_name` and the
   * keepalive settings in effect (connects if needed).
   *
   * @throws {DatabaseError} when the server is unreachable.
   *
   * @example
   * ```ts
   * const { backendPid } = await lock.sessionInfo();
   * ```
   */
  sessionInfo(): Promise<LeaderSessionInfo> {
    return this.#run("describing the leader lock's session", async (sql) => {
      const [r] = await sql<
        { pid: number; app: string; idle: string; interval: string; count: string }[]
      >`
        SELECT pg_backend_pid() AS pid, current_setting('application_name') AS app,
               current_setting('tcp_keepalives_idle') AS idle,
               current_setting('tcp_keepalives_interval') AS interval,
               current_setting('tcp_keepalives_count') AS count`;
      return {
        backendPid: r.pid,
        applicationName: r.app,
        keepalives: {
          idleSec: Number(r.idle),
          intervalSec: Number(r.interval),
          count: Number(r.count),
        },
      };
    });
  }

  /**
   * Ends the current session at once (its lock goes with it); the next call
   * connects a new one. Never throws.
   *
   * @example
   * ```ts
   * await lock.reset(); // after leadership was given up for a hung session
   * ```
   */
  async reset(): Promise<void> {
    const sql = this.#sql;
    this.#sql = null;
    if (!sql) return;
    this.#onClose(); // before the server can see the session go
    await sql.end({ timeout: 0 }).catch(() => {});
  }

  /**
   * Ends the session for good (the server frees the lock with it). Never throws.
   *
   * @example
   * ```ts
   * await lock.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.reset();
  }
}
