/**
 * The `kickmon` command line (commander). Each action returns an exit code;
 * see `errors.ts` for their meaning.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import {
  ConfigError,
  configTemplate,
  loadConfig,
  readEnvironment,
  redactedConfig,
  redactUrlPassword,
} from "../config/config.ts";
import { listStreamerViews } from "../db/streamers_repo.ts";
import { registerDbCommands } from "./db_commands.ts";
import { registerDemoCommand } from "./demo_command.ts";
import { registerDoctorCommand } from "./doctor.ts";
import {
  registerDbBackup,
  registerServiceCommands,
  registerStreamerCommands,
  withDatabase,
} from "./service_commands.ts";
import { EXIT, reportError } from "./errors.ts";

/** kickmon's version (deno.json `version`). */
export const VERSION = "0.1.0";

const EXIT_HELP = `
Exit codes:
  0  success
  1  runtime failure (database unreachable, Kick refused, service gave up)
  2  usage or configuration error
  3  (status) no running instance

Configuration comes from environment variables (see 'kickmon config generate-template');
use 'deno run --env-file=.env' or systemd's EnvironmentFile=.`;

/**
 * Runs the CLI with `args` (without the program name).
 *
 * @returns the process exit code.
 *
 * @example
 * ```ts
 * Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command()
    .name("kickmon")
    .description("Keeps Kick.com streamers' live status current in PostgreSQL.")
    .version(VERSION, "-V, --version")
    .exitOverride()
    .showHelpAfterError("(run 'kickmon --help' for usage)")
    .addHelpText("after", EXIT_HELP);

  program.command("start")
    .description("run the monitor in the foreground (JSON log lines on stdout)")
    .option("--manual", "show the live terminal view (logs go to a file)")
    .action(async (opts: { manual?: boolean }) => {
      if (opts.manual) {
        const { runManual } = await import("../view/manual.ts");
        code = await runManual();
      } else {
        const { runStart } = await import("./start.ts");
        code = await runStart();
      }
    });

  const db = program.command("db").description("database commands");
  registerDbCommands(db, (c) => (code = c));

  const cfg = program.command("config").description("configuration commands");
  cfg.command("show")
    .description("print the effective configuration (secrets redacted)")
    .action(() => {
      for (const [k, v] of Object.entries(redactedConfig(readEnvironment()))) {
        console.log(`${k}=${v}`);
      }
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

  const streamers = program.command("streamers").description("the streamer list");
  streamers.command("list")
    .description("list streamers and their status")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      const rows = await withDatabase((sql) => listStreamerViews(sql));
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      const header = [
        "ID",
        "USERNAME",
        "USER_ID",
        "CHANNEL_ID",
        "STATUS",
        "ACTIVE",
        "LAST_CHANGE",
        "PROBLEM",
      ];
      const lines = rows.map((r) => [
        String(r.id),
        r.username ?? "-",
        r.kickUserId?.toString() ?? "-",
        r.kickChannelId?.toString() ?? "-",
        r.status,
        r.isActive ? "yes" : "no",
        r.lastStatusUpdate ?? "-",
        r.resolveError ?? "",
      ]);
      const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
      for (const l of [header, ...lines]) {
        console.log(l.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
      }
      console.log(`${rows.length} streamers`);
    });

  registerDemoCommand(program, (c) => (code = c));
  registerDoctorCommand(program, (c) => (code = c));
  registerServiceCommands(program, (c) => (code = c));
  registerStreamerCommands(streamers, (c) => (code = c));
  registerDbBackup(db, (c) => (code = c));

  try {
    await program.parseAsync([...args], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return EXIT.ok;
      if (e.code === "commander.help") return EXIT.ok;
      return EXIT.usage;
    }
    if (e instanceof ConfigError) return reportError(e);
    return reportError(e);
  }
  return code;
}
