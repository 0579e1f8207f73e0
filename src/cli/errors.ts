/**
 * Exit codes and the error-to-exit-code mapping shared by every command.
 *
 * | code | meaning |
 * |---|---|
 * | 0 | success |
 * | 1 | runtime failure (database unreachable, Kick refused, …) |
 * | 2 | usage or configuration error |
 * | 3 | `kickmon status`: no instance running |
 *
 * @module
 */
import { explainNotCapable } from "../config/capability.ts";
import { type Config, ConfigError, loadConfig, readEnvironment } from "../config/config.ts";
import { SchemaError } from "../db/inspect.ts";
import { describeError } from "../log/errors.ts";
import { redactSecrets } from "../log/logging.ts";

/** Process exit codes (documented in `--help` and the README). */
export const EXIT = { ok: 0, failure: 1, usage: 2, notRunning: 3 } as const;

/**
 * An error a command reports as one line and a chosen exit code.
 *
 * @example
 * ```ts
 * throw new CliError("no streamer named foo", EXIT.failure);
 * ```
 */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "CliError";
  }
}

/**
 * Prints an error the way every command does (one clear message with its
 * causes, no stack trace, secrets redacted) and returns the exit code to
 * use. A permission this build lacks (Deno's `NotCapable` anywhere in the
 * cause chain) is explained in kickmon's words (what is allowed, which build
 * variable changes it) and is a configuration error: exit 2.
 *
 * @example
 * ```ts
 * try { await run(); } catch (e) { return reportError(e); }
 * ```
 */
export function reportError(e: unknown): number {
  // Before everything else: Deno's "run again with the --allow-net flag" is
  // advice the user of a built kickmon cannot follow.
  const refused = explainNotCapable(e, configForExplanation());
  if (refused) {
    console.error(`kickmon: ${redactSecrets(refused)}`);
    return EXIT.usage;
  }
  if (e instanceof ConfigError) {
    console.error(redactSecrets(e.message));
    return EXIT.usage;
  }
  if (e instanceof SchemaError) {
    console.error(`kickmon: ${redactSecrets(e.message)}`);
    return EXIT.usage;
  }
  if (e instanceof CliError) {
    console.error(`kickmon: ${redactSecrets(e.message)}`);
    return e.exitCode;
  }
  // With its causes: Deno's "fetch failed" keeps the useful part in `cause`.
  console.error(`kickmon: ${redactSecrets(describeError(e))}`);
  return EXIT.failure;
}

/** The configuration in use, if it loads, to name the setting behind a refused permission. */
function configForExplanation(): Config | undefined {
  try {
    return loadConfig(readEnvironment(), { requireKickCredentials: false });
  } catch {
    return undefined;
  }
}
