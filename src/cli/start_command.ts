/**
 * `kickmon start [--manual]`: registers the command that runs the monitor in
 * the foreground.
 *
 * | command | what it does | exit codes |
 * |---|---|---|
 * | `kickmon start` | the monitor, JSON log lines on stdout, until SIGTERM/SIGINT (`start.ts`) | 0 clean stop, 1 failure, 2 configuration, permission or schema |
 * | `kickmon start --manual` | the same monitor under the live terminal view, logs to a file (`manual.ts`) | as `start`; 2 without a terminal |
 *
 * `start.ts` and `manual.ts` load the whole monitor, so they are imported
 * only when the command runs: `kickmon --help`, `status` and the other
 * commands never load them.
 *
 * @module
 */
import type { Command } from "commander";
import type { SetExit } from "./operator.ts";

/**
 * Registers `start [--manual]` on the program.
 *
 * @param program the `kickmon` commander program.
 * @param setExit receives the exit code of the monitor's run.
 *
 * @example
 * ```ts
 * let code = 0;
 * registerStartCommand(program, (c) => (code = c));
 * await program.parseAsync(["start"], { from: "user" });
 * ```
 */
export function registerStartCommand(program: Command, setExit: SetExit): void {
  program.command("start")
    .description("run the monitor in the foreground (JSON log lines on stdout)")
    .option("--manual", "show the live terminal view (logs go to a file)")
    .action(async (opts: { manual?: boolean }) => {
      if (opts.manual) {
        const { runManual } = await import("./manual.ts");
        setExit(await runManual());
      } else {
        const { runStart } = await import("./start.ts");
        setExit(await runStart());
      }
    });
}
