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
  normalizedConfig,
  readEnvironment,
  redactUrlPassword,
} from "../config/config.ts";
import { listStreamerViews } from "../db/streamers_repo.ts";
import { registerDbCommands } from "./db_commands.ts";
import { registerDoctorCommand } from "./doctor.ts";
import {
  registerDbBackup,
  registerServiceCommands,
  registerStreamerCommands,
  withDatabase,
} from "./service_commands.ts";
import { EXIT, reportError } from "./errors.ts";
import { VERSION } from "../version.ts";

export { VERSION };

const EXIT_HELP = `
Exit codes:
  0  success
  1  runtime failure (database unreachable, Kick refused, service gave up)
  2  usage or configuration error
  3  (status) no running instance

Configuration comes from environment variables (see 'kickmon config generate-template');
use 'deno run --env-file=.env' or systemd's EnvironmentFile=.`;

/** `kickmon streamers add`: the command's name with its parents'. */
function commandPath(c: Command): string {
  const names: string[] = [];
  for (let cur: Command | null = c; cur; cur = cur.parent) names.unshift(cur.name());
  return names.join(" ");
}

/** A command and all its subcommands, depth first. */
function allCommands(c: Command): Command[] {
  return [c, ...c.commands.flatMap((s) => allCommands(s as Command))];
}

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

  registerDoctorCommand(program, (c) => (code = c));
  registerServiceCommands(program, (c) => (code = c));
  registerStreamerCommands(streamers, (c) => (code = c));
  registerDbBackup(db, (c) => (code = c));

  // Every command's usage errors point at its own help, not the program's.
  let running: Command = program;
  const hint = (c: Command) => `(run '${commandPath(c)} --help' for usage)`;
  for (const c of allCommands(program)) c.showHelpAfterError(hint(c));
  program.hook("preAction", (_root, action) => {
    running = action;
  });

  // `kickmon help bogus`: commander would print the whole help and exit 1.
  if (args[0] === "help" && args.length > 1) {
    let c: Command | undefined = program;
    for (const name of args.slice(1)) {
      c = c?.commands.find((x) => x.name() === name || x.aliases().includes(name)) as Command;
    }
    if (!c) {
      console.error(`error: unknown command '${args.slice(1).join(" ")}'\n${hint(program)}`);
      return EXIT.usage;
    }
  }

  try {
    await program.parseAsync([...args], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return EXIT.ok;
      // commander.help with exit code 0 is help asked for (`kickmon help streamers`);
      // with 1 it is help shown because the command line named no command
      // (`kickmon`, `kickmon streamers`, `kickmon help bogus`): a usage error.
      if (e.code === "commander.help" && e.exitCode === 0) return EXIT.ok;
      return EXIT.usage;
    }
    const exit = reportError(e);
    if (exit === EXIT.usage && !(e instanceof ConfigError) && running !== program) {
      console.error(hint(running));
    }
    return exit;
  }
  return code;
}
