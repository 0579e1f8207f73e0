/**
 * The PID file (`<state dir>/kickmon.pid`, see `src/service/state_paths.ts`):
 * what `kickmon start` writes into it and how `kickmon stop|status|restart`
 * read it back.
 *
 * Line 1 is the PID (what `kill $(head -n1 kickmon.pid)` reads); under
 * systemd, line 2 is `systemd-invocation=<INVOCATION_ID>`, so that
 * `kickmon stop` run from an operator's shell knows to hand over to
 * `systemctl` without looking at the process itself.
 *
 * @module
 */
import { CliError, EXIT } from "./errors.ts";

const errText = (e: unknown) => e instanceof Error ? e.message : String(e);

/**
 * What `kickmon start` writes into its PID file: the PID on the first line
 * (what `kill $(head -n1 kickmon.pid)` and `kickmon stop|status` read) and,
 * when systemd started the process, `systemd-invocation=<INVOCATION_ID>` on
 * the second, so that `kickmon stop` run from an operator's shell knows to
 * hand over to `systemctl` without looking at the process itself.
 *
 * @param pid the process to name. Default `Deno.pid`.
 * @param invocationId systemd's `INVOCATION_ID` of this process, if any.
 *   Default: read from the environment.
 *
 * @example
 * ```ts
 * pidFileText(4242, "2f0c…"); // "4242\nsystemd-invocation=2f0c…\n"
 * pidFileText(4242, undefined); // "4242\n"
 * ```
 */
export function pidFileText(
  pid: number = Deno.pid,
  invocationId: string | undefined = systemdInvocationId(),
): string {
  return `${pid}\n` + (invocationId ? `systemd-invocation=${invocationId}\n` : "");
}

/** systemd's `INVOCATION_ID` of this process (a 32-digit hex id), or `undefined`. */
function systemdInvocationId(): string | undefined {
  let id: string | undefined;
  try {
    id = Deno.env.get("INVOCATION_ID")?.trim();
  } catch {
    // not granted (a build without it): not provably under systemd
    return undefined;
  }
  return id && /^[0-9a-f]{32}$/i.test(id) ? id.toLowerCase() : undefined;
}

/**
 * A PID file's contents (see {@linkcode pidFileText}).
 *
 * @example
 * ```ts
 * const r: PidRecord = { pid: 4242, systemdInvocation: "2f0c…" };
 * ```
 */
export interface PidRecord {
  readonly pid: number;
  /** systemd's invocation id of that process, when systemd started it. */
  readonly systemdInvocation?: string;
}

/**
 * Reads the PID file; `null` when absent, not a PID, or outside what this
 * build may read (the compiled binary reads only its build-time state
 * directories: an operator shell without `SYSTEM_STATE_DIRECTORY` looks in
 * `./state`). With `lenient`, an OS permission error is `null` too.
 *
 * @param path the PID file (`statePaths(dir).pidFile`).
 * @param lenient treat an unreadable file (permission denied, I/O error) as absent.
 * @throws {CliError} (exit 1) when the file exists but cannot be read and `lenient` is false.
 *
 * @example
 * ```ts
 * const record = await readPidFile("./state/kickmon.pid");
 * if (record?.systemdInvocation) console.log("runs under systemd");
 * ```
 */
export async function readPidFile(path: string, lenient = false): Promise<PidRecord | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotCapable) return null;
    if (lenient) return null;
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new CliError(
        `cannot read the PID file ${path} (${errText(e)}): run as the user kickmon runs as`,
        EXIT.failure,
        { cause: e },
      );
    }
    throw new CliError(`cannot read the PID file ${path}: ${errText(e)}`, EXIT.failure, {
      cause: e,
    });
  }
  const [first, ...rest] = text.split("\n");
  const pid = Number(first.trim());
  if (!Number.isInteger(pid) || pid <= 1) return null;
  const invocation = rest.map((l) => l.trim().match(/^systemd-invocation=(\S+)$/)?.[1])
    .find((v) => v !== undefined);
  return invocation ? { pid, systemdInvocation: invocation } : { pid };
}
