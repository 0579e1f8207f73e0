/**
 * `kickmon demo [--no-view]`: registers the demo command on the CLI. The
 * demo itself (`src/view/demo.ts`) is loaded only when the command runs.
 *
 * @module
 */
import type { Command } from "commander";

/**
 * Adds `demo [--no-view]` to a commander program.
 *
 * @param program the `kickmon` program (sub-commands are added to it).
 * @param setExit receives the command's exit code (0 clean stop, 1 failure, 2 usage).
 *
 * @example
 * ```ts
 * let code = 0;
 * registerDemoCommand(program, (c) => (code = c));
 * await program.parseAsync(["demo", "--no-view"], { from: "user" });
 * ```
 */
export function registerDemoCommand(program: Command, setExit: (code: number) => void): void {
  program.command("demo")
    .summary("watch kickmon work against a built-in Kick simulator (no Kick app needed)")
    .description(
      "run the real monitor against a built-in Kick simulator (a dozen made-up streamers " +
        "going live and offline) with the live view; uses DATABASE_URL (an empty database) " +
        "or a throwaway PostgreSQL cluster, and removes everything on exit",
    )
    .option("--no-view", "log to stdout as 'kickmon start' does instead of the live view")
    .action(async (opts: { view: boolean }) => {
      const { runDemo } = await import("../view/demo.ts");
      setExit(await runDemo({ view: opts.view }));
    });
}

// Also runnable on its own (before or without the main CLI):
// `deno run -A src/cli/demo_command.ts demo [--no-view]`.
if (import.meta.main) {
  const { Command } = await import("commander");
  let code = 0;
  const program = new Command().name("kickmon").exitOverride();
  registerDemoCommand(program, (c) => (code = c));
  try {
    await program.parseAsync(Deno.args, { from: "user" });
  } catch (e) {
    // commander already printed the help or the usage error.
    code = (e as { code?: string }).code === "commander.helpDisplayed" ? 0 : 2;
  }
  Deno.exit(code);
}
