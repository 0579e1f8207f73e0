/**
 * Runs a real `kickmon` process (`deno run main.ts …`) for end-to-end tests
 * and the benchmark, collecting its stdout/stderr lines.
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url).pathname;

/** A running kickmon child process. */
export interface KickmonProcess {
  readonly pid: number;
  /** Every stdout/stderr line so far. */
  readonly lines: string[];
  /** Parsed JSON log lines so far (non-JSON lines skipped). */
  logs(): Array<Record<string, unknown>>;
  /** Resolves with the first line matching, or throws after `timeoutMs`. */
  waitForLine(match: RegExp | ((line: string) => boolean), timeoutMs?: number): Promise<string>;
  /** Sends a signal. */
  kill(signal?: Deno.Signal): void;
  /** Resolves with the exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  /** SIGTERM, then waits (SIGKILL after `timeoutMs`). Returns the exit code. */
  stop(timeoutMs?: number): Promise<number>;
}

/**
 * The toolchain part of the test runner's environment (PATH, HOME, DENO_DIR,
 * TMPDIR, LANG): nothing that configures kickmon.
 *
 * @example
 * ```ts
 * const env = { ...baseEnv(), DATABASE_URL: url };
 * ```
 */
export function baseEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "DENO_DIR", "TMPDIR", "LANG"]) {
    const v = Deno.env.get(k);
    if (v) out[k] = v;
  }
  return out;
}

/**
 * Spawns `deno run -A main.ts <args>` in the repository root with exactly
 * `env` (plus PATH/HOME/DENO_DIR). Nothing from the test's own environment
 * leaks into the configuration.
 *
 * @example
 * ```ts
 * const p = spawnKickmon(["start"], { ...sim.env(), DATABASE_URL: db.url });
 * await p.waitForLine(/kickmon started/);
 * assert.equal(await p.stop(), 0);
 * ```
 */
export function spawnKickmon(
  args: string[],
  env: Record<string, string>,
  opts: { denoArgs?: string[]; echo?: boolean; entry?: string } = {},
): KickmonProcess {
  return spawnProcess(
    Deno.execPath(),
    ["run", ...(opts.denoArgs ?? ["-A"]), opts.entry ?? `${ROOT}main.ts`, ...args],
    { ...baseEnv(), NO_COLOR: "1", ...env },
    { echo: opts.echo },
  );
}

/**
 * Spawns any command with exactly `env` (no inherited environment), stdin
 * closed, collecting stdout and stderr lines.
 *
 * @example
 * ```ts
 * const p = spawnProcess(Deno.execPath(), ["run", "--no-config", "dist/kickmon.js", "start"], env);
 * await p.waitForLine(/kickmon started/, 20_000);
 * ```
 */
export function spawnProcess(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  opts: { cwd?: string; echo?: boolean } = {},
): KickmonProcess {
  const child = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd ?? ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i: number;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (opts.echo || Deno.env.get("KICKMON_TEST_ECHO")) console.error(`[kickmon] ${line}`);
        for (const w of waiters) w();
      }
    }
    if (buf) lines.push(buf);
    for (const w of waiters) w();
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = pumps.then(() => child.status);
  let exited = false;
  status.then(() => (exited = true));
  const self: KickmonProcess = {
    pid: child.pid,
    lines,
    logs: () =>
      lines.flatMap((l) => {
        try {
          const v = JSON.parse(l);
          return typeof v === "object" && v ? [v] : [];
        } catch {
          return [];
        }
      }),
    waitForLine: (match, timeoutMs = 15_000) => {
      const test = typeof match === "function" ? match : (l: string) => match.test(l);
      return new Promise((resolve, reject) => {
        let idx = 0;
        const check = () => {
          for (; idx < lines.length; idx++) {
            if (test(lines[idx])) {
              cleanup();
              resolve(lines[idx]);
              return;
            }
          }
          if (exited) {
            cleanup();
            reject(new Error(`kickmon exited before ${match}; output:\n${lines.join("\n")}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${match}; output:\n${
                lines.slice(-40).join("\n")
              }`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        status.then(check);
        check();
      });
    },
    kill: (signal = "SIGTERM") => {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    },
    status,
    stop: async (timeoutMs = 15_000) => {
      self.kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const killed = new Promise<void>((r) => {
        timer = setTimeout(() => {
          self.kill("SIGKILL");
          r();
        }, timeoutMs);
      });
      await Promise.race([status, killed]);
      clearTimeout(timer);
      return (await status).code;
    },
  };
  return self;
}

/**
 * Runs `deno run -A main.ts <args>` to completion.
 *
 * @returns exit code and combined output.
 *
 * @example
 * ```ts
 * const r = await runKickmon(["config", "validate"], {});
 * assert.equal(r.code, 2);
 * ```
 */
export function runKickmon(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCommand(Deno.execPath(), ["run", "-A", `${ROOT}main.ts`, ...args], env);
}

/**
 * Runs any command to its end in the repository root with exactly `env`
 * (plus {@linkcode baseEnv} and `NO_COLOR`), stdin closed.
 *
 * @returns the exit code and the decoded stdout and stderr.
 *
 * @example
 * ```ts
 * const r = await runCommand("bash", ["-c", "echo hi"], {});
 * ```
 */
export async function runCommand(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env: { ...baseEnv(), NO_COLOR: "1", ...env },
    clearEnv: true,
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
