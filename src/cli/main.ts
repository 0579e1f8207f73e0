/**
 * The `kickmon` command line (commander): only the wiring. Each command
 * group lives in its own module and is registered here, in the order
 * `kickmon --help` lists them:
 *
 * | group | module |
 * |---|---|
 * | `start [--manual]` | `start_command.ts` (runs `start.ts`, `manual.ts`) |
 * | `db migrate\|health\|backup` | `db_commands.ts` |
 * | `config show\|validate\|generate-template` | `config_commands.ts` |
 * | `streamers list\|add\|remove\|test` | `streamers_commands.ts` |
 * | `streamers set-channel-id` | `channel_id_command.ts` |
 * | `doctor` | `doctor.ts` |
 * | `capture [--duration] [--out] [--streamer…]` | `capture_command.ts` |
 * | `status`, `stop`, `restart` | `process_commands.ts` |
 *
 * Each action sets an exit code or throws; `errors.ts` maps what it throws
 * to the exit code and says what each code means.
 *
 * @module
 */
import { Command, CommanderError } from "commander";
import { ConfigError } from "../config/config.ts";
import { registerChannelIdCommand } from "./channel_id_command.ts";
import { registerCaptureCommand } from "./capture_command.ts";
import { registerConfigCommands } from "./config_commands.ts";
import { registerDbCommands } from "./db_commands.ts";
import { registerDoctorCommand } from "./doctor.ts";
import { EXIT, reportError } from "./errors.ts";
import { registerProcessCommands } from "./process_commands.ts";
import { registerStartCommand } from "./start_command.ts";
import { registerStreamerCommands } from "./streamers_commands.ts";
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

  // In the order `kickmon --help` lists them.
  const setExit = (c: number) => (code = c);
  registerStartCommand(program, setExit);
  registerDbCommands(program, setExit);
  registerConfigCommands(program);
  registerStreamerCommands(program, setExit);
  registerChannelIdCommand(program, setExit);
  registerDoctorCommand(program, setExit);
  registerCaptureCommand(program, setExit);
  registerProcessCommands(program, setExit);

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
