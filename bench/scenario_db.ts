/**
 * The end of a bench scenario's database: the bench's LISTEN, its client,
 * and the scenario's own database on the throwaway cluster. Shared by the
 * one-instance, two-instance and reconciliation scenarios.
 *
 * @module
 */
import type postgres from "postgres";

/** What a scenario holds open on the cluster. */
export interface ScenarioDatabase {
  /** Stops the bench's `LISTEN kickmon_status`, when one was started. */
  readonly unlisten: (() => Promise<void>) | null;
  /** The bench's client of the scenario database. */
  readonly sql: postgres.Sql;
  /** The admin client that created the database. */
  readonly admin: postgres.Sql;
  /** The scenario database's name. */
  readonly dbName: string;
}

/**
 * Ends the LISTEN and the clients and drops the scenario database (forcing
 * out any session left); never throws, so a failed scenario still cleans up.
 *
 * @example
 * ```ts
 * import { dropScenarioDatabase } from "./scenario_db.ts";
 * await dropScenarioDatabase({ unlisten: null, sql, admin, dbName: "bench_1" });
 * ```
 */
export async function dropScenarioDatabase(db: ScenarioDatabase): Promise<void> {
  await db.unlisten?.().catch(() => {});
  await db.sql.end({ timeout: 2 }).catch(() => {});
  await db.admin.unsafe(`DROP DATABASE IF EXISTS ${db.dbName} WITH (FORCE)`).catch(() => {});
  await db.admin.end({ timeout: 2 }).catch(() => {});
}

/**
 * Keeps kickmon's output of a scenario when `BENCH_KICKMON_LOG=<file>` is set
 * (a debugging aid; the last scenario's output wins).
 *
 * @example
 * ```ts
 * import { keepKickmonLog } from "./scenario_db.ts";
 * await keepKickmonLog(["line 1", "line 2"]);
 * ```
 */
export async function keepKickmonLog(lines: readonly string[]): Promise<void> {
  const logFile = Deno.env.get("BENCH_KICKMON_LOG");
  if (logFile) await Deno.writeTextFile(logFile, lines.join("\n") + "\n");
}
