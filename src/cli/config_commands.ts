/**
 * `kickmon config`: the configuration kickmon reads from its environment.
 *
 * | command | what it prints | exit codes |
 * |---|---|---|
 * | `kickmon config show [--json]` | every variable, normalized as kickmon uses it, secrets redacted | 0, 2 invalid |
 * | `kickmon config validate` | `configuration ok (…)`, or each bad variable by name | 0, 2 invalid |
 * | `kickmon config generate-template` | an env file with every variable and its default | 0 |
 *
 * The variables themselves are documented in `src/config/config.ts`.
 *
 * @module
 */
import type { Command } from "commander";
import {
  configTemplate,
  loadConfig,
  normalizedConfig,
  readEnvironment,
  redactUrlPassword,
} from "../config/config.ts";

/**
 * Registers the `config` group (`show`, `validate`, `generate-template`) on
 * the program. Its commands exit 0 unless they throw (`ConfigError`: exit 2).
 *
 * @param program the `kickmon` commander program.
 *
 * @example
 * ```ts
 * registerConfigCommands(program);
 * await program.parseAsync(["config", "validate"], { from: "user" });
 * ```
 */
export function registerConfigCommands(program: Command): void {
  const cfg = program.command("config").description("configuration commands");
  cfg.command("show")
    .description(
      "print the effective configuration, normalized as kickmon uses it (secrets redacted)",
    )
    .option("--json", "print one JSON object")
    .action((opts: { json?: boolean }) => {
      const values = normalizedConfig(
        loadConfig(readEnvironment(), { requireKickCredentials: false }),
      );
      if (opts.json) console.log(JSON.stringify(values, null, 2));
      else for (const [k, v] of Object.entries(values)) console.log(`${k}=${v}`);
    });
  cfg.command("validate")
    .description("check every variable; names each bad one (exit 2)")
    .action(() => {
      const c = loadConfig(readEnvironment());
      console.log(
        `configuration ok (database ${
          redactUrlPassword(c.database.url)
        }, pusher ${c.kick.pusher.host}:${c.kick.pusher.port})`,
      );
    });
  cfg.command("generate-template")
    .description("print an env file with every variable and its default")
    .action(() => console.log(configTemplate()));
}
