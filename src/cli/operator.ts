/**
 * What every operator command starts from: its configuration (secrets
 * registered for redaction), a one-connection database client, and the
 * setter of its exit code. Commands report failures by throwing
 * `CliError` / `ConfigError`; `src/cli/main.ts` maps them to exit codes
 * (`errors.ts`).
 *
 * @module
 */
import { type Config, loadConfig, readEnvironment, secretValues } from "../config/config.ts";
import { connectDatabase, DatabaseError, type Sql } from "../db/client.ts";
import { registerSecret } from "../log/logging.ts";
import { CliError, EXIT } from "./errors.ts";

/**
 * Sets the process exit code of the command being run (main.ts's `code`).
 *
 * @example
 * ```ts
 * let code = 0;
 * const setExit: SetExit = (c) => (code = c);
 * ```
 */
export type SetExit = (code: number) => void;

/**
 * Loads the configuration for a CLI command and registers its secrets for redaction.
 *
 * @param requireKickCredentials whether `KICK_CLIENT_ID`/`KICK_CLIENT_SECRET` must be set.
 * @throws {ConfigError} naming each bad variable.
 *
 * @example
 * ```ts
 * const config = loadOperatorConfig(false);
 * ```
 */
export function loadOperatorConfig(requireKickCredentials = false): Config {
  const config = loadConfig(readEnvironment(), { requireKickCredentials });
  for (const secret of secretValues(config)) registerSecret(secret);
  return config;
}

/**
 * Runs `fn` with a one-connection database client and closes it afterwards,
 * however `fn` ends. The database password is registered with
 * `registerSecret` first, so no log line or error message can show it.
 *
 * @param fn what to do with the connection.
 * @param config the configuration to connect with; by default it is read
 *   from the environment (Kick credentials not required).
 * @returns what `fn` returns.
 * @throws {CliError} (exit 1) when the kickmon schema is missing (PostgreSQL
 *   `42P01`), saying to run `kickmon db migrate`; `ConfigError` for a bad
 *   configuration; otherwise whatever `fn` throws.
 *
 * @example
 * ```ts
 * const rows = await withDatabase((sql) => listStreamerViews(sql));
 * ```
 */
export async function withDatabase<T>(
  fn: (sql: Sql) => Promise<T>,
  config: Config = loadOperatorConfig(false),
): Promise<T> {
  registerSecret(config.database.password);
  const sql = connectDatabase(config.database, { max: 1 });
  try {
    return await fn(sql);
  } catch (e) {
    if (e instanceof DatabaseError && (e.code === "42P01" || e.code === "3F000")) {
      throw new CliError(
        `${e.message}: the database is not set up for kickmon yet; run 'kickmon db migrate' ` +
          "('kickmon db health' says what is missing)",
        EXIT.usage,
        { cause: e },
      );
    }
    if (e instanceof DatabaseError && e.code === "42501") {
      throw new CliError(
        `${e.message}: kickmon's database role lacks a privilege; 'kickmon db health' names it ` +
          "and prints the GRANT that fixes it",
        EXIT.usage,
        { cause: e },
      );
    }
    throw e;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}
