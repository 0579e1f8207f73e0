/**
 * `deno task test`: runs the whole test suite against ONE throwaway
 * PostgreSQL cluster and ends with a one-line summary.
 *
 * 1. Unless `TEST_DATABASE_URL` is already set, starts a throwaway cluster
 *    (see `dev/pg_cluster.ts`) and sets `TEST_DATABASE_URL` to its
 *    admin URL for the child.
 * 2. Runs `deno test --allow-all --junit-path=<tmp>/junit.xml [args]` from the
 *    repository root, streaming its output. Arguments are passed through;
 *    ones naming an existing file or directory relative to where the task was
 *    started are made absolute. Without path arguments the whole repo is tested.
 * 3. Stops the cluster (also on SIGINT/SIGTERM), reads the JUnit report and
 *    prints as its very last line `N passed, N failed` (`, N skipped` is added
 *    when tests or steps were ignored). Counts include test steps.
 * 4. Exits with `deno test`'s exit code, or 1 if it exited 0 but no test ran
 *    or something failed.
 *
 * A module that crashes while loading is not in Deno's JUnit report; such
 * failures are taken from `deno test`'s own summary line. A run that ends
 * without a report (type-check error, crash) counts as `1 failed`.
 *
 * @example
 * ```sh
 * deno task test                      # everything
 * deno task test dev/                 # one directory
 * deno task test --filter "pg_cluster"
 * TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres deno task test
 * ```
 *
 * @module
 */

import { startThrowawayCluster, type ThrowawayCluster } from "../dev/pg_cluster.ts";

/** Counts read from a JUnit XML report; steps count as test cases. */
interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

const REPO_ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
/** Flags of `deno test` whose value is the next argument (never a path to rewrite). */
const FLAGS_WITH_VALUE = new Set(["--filter", "--reporter", "--config", "-c", "--seed"]);

function note(line: string): void {
  console.error(`[tests/run] ${line}`);
}

/** Counts test cases in Deno's JUnit XML (attribute values have `<`, `>` escaped). */
function parseJUnit(xml: string): Counts {
  const counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  const testcase = /<testcase\b[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(testcase)) {
    const body = m[1] ?? "";
    if (/<(failure|error)\b/.test(body)) counts.failed++;
    else if (/<skipped\b/.test(body)) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
/** `ok | 3 passed (2 steps) | 0 failed | 1 ignored (10ms)` → failed tests (not steps). */
const DENO_SUMMARY = /^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/;

/** Copies a child stream to ours, remembering the last `deno test` summary line. */
async function tee(
  from: ReadableStream<Uint8Array>,
  to: { write(p: Uint8Array): Promise<number> },
  onLine?: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  for await (const chunk of from) {
    let off = 0;
    while (off < chunk.length) off += await to.write(chunk.subarray(off));
    if (onLine) {
      const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) onLine(line);
    }
  }
  if (onLine && partial) onLine(partial);
}

function childArgs(args: string[]): string[] {
  const initCwd = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    out.push(arg);
    if (FLAGS_WITH_VALUE.has(arg) && i + 1 < args.length) {
      out.push(args[++i]);
      continue;
    }
    if (arg.startsWith("-") || arg.startsWith("/")) continue;
    const abs = `${initCwd}/${arg}`;
    try {
      Deno.statSync(abs);
      out[out.length - 1] = abs;
    } catch {
      // not a path relative to the caller's directory: pass it as is
    }
  }
  return out;
}

async function main(): Promise<number> {
  const began = performance.now();
  let cluster: ThrowawayCluster | undefined;
  let interrupted: Deno.Signal | undefined;
  let child: Deno.ChildProcess | undefined;

  let interruptedAt = 0;
  const onSignal = (signal: Deno.Signal) => () => {
    if (interrupted) {
      // `deno task` forwards the ^C that the kernel already delivered to our
      // process group, so ignore repeats for a moment; a later one means
      // "give up on a graceful end".
      if (performance.now() - interruptedAt < 2_000) return;
      note(`${signal} again: stopping PostgreSQL and exiting now`);
      cluster?.stopSync();
      console.log("0 passed, 1 failed");
      Deno.exit(signal === "SIGINT" ? 130 : 143);
    }
    interrupted = signal;
    interruptedAt = performance.now();
    note(`${signal}: stopping the tests and the database`);
    try {
      child?.kill(signal);
    } catch {
      // already gone
    }
  };
  const signals: [Deno.Signal, () => void][] = [
    ["SIGINT", onSignal("SIGINT")],
    ["SIGTERM", onSignal("SIGTERM")],
  ];
  for (const [sig, fn] of signals) Deno.addSignalListener(sig, fn);

  const summary = (c: Counts) =>
    `${c.passed} passed, ${c.failed} failed` + (c.skipped > 0 ? `, ${c.skipped} skipped` : "");

  let workDir: string | undefined;
  try {
    const env: Record<string, string> = {};
    const existing = Deno.env.get("TEST_DATABASE_URL");
    if (existing) {
      note("using TEST_DATABASE_URL from the environment");
    } else {
      const t0 = performance.now();
      try {
        cluster = await startThrowawayCluster();
      } catch (err) {
        note(`could not start a PostgreSQL cluster for the tests:`);
        console.error(err instanceof Error ? err.message : String(err));
        console.log(summary({ passed: 0, failed: 1, skipped: 0 }));
        return 1;
      }
      note(
        `PostgreSQL ${cluster.version} started on 127.0.0.1:${cluster.port} in ` +
          `${Math.round(performance.now() - t0)} ms`,
      );
      env.TEST_DATABASE_URL = cluster.url;
    }
    if (interrupted) {
      console.log(summary({ passed: 0, failed: 1, skipped: 0 }));
      return interrupted === "SIGINT" ? 130 : 143;
    }

    workDir = await Deno.makeTempDir({ prefix: "kickmon-test-run-" });
    const junitPath = `${workDir}/junit.xml`;
    if (Deno.stdout.isTerminal() && !Deno.env.get("NO_COLOR")) env.FORCE_COLOR = "1";

    const args = ["test", "--allow-all", `--junit-path=${junitPath}`, ...childArgs(Deno.args)];
    note(`deno ${args.join(" ")}`);
    child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: REPO_ROOT,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();

    let denoFailed: number | undefined;
    const [status] = await Promise.all([
      child.status,
      tee(child.stdout, Deno.stdout, (line) => {
        const m = DENO_SUMMARY.exec(line.replace(ANSI, "").trim());
        if (m) denoFailed = Number(m[2]);
      }),
      tee(child.stderr, Deno.stderr),
    ]);
    let code = status.code !== 0 ? status.code : status.signal ? 1 : 0;

    if (cluster) {
      const t0 = performance.now();
      await cluster.stop().catch((err) => note(`stopping PostgreSQL failed: ${err}`));
      note(`PostgreSQL stopped in ${Math.round(performance.now() - t0)} ms`);
      cluster = undefined;
    }

    let counts: Counts;
    let xml: string | undefined;
    try {
      xml = await Deno.readTextFile(junitPath);
    } catch {
      xml = undefined;
    }
    if (xml === undefined) {
      note(
        `deno test exited with code ${status.code}${interrupted ? ` (${interrupted})` : ""} ` +
          `without writing its JUnit report (${junitPath}): it crashed or failed type-checking ` +
          `before reporting; see its output above`,
      );
      counts = { passed: 0, failed: Math.max(1, denoFailed ?? 0), skipped: 0 };
    } else {
      counts = parseJUnit(xml);
      if (denoFailed !== undefined && denoFailed > counts.failed) {
        note(
          `${denoFailed - counts.failed} failure(s) reported by deno test are not in the JUnit ` +
            `report (a test module that failed to load?); counted as failed`,
        );
        counts.failed = denoFailed;
      }
      if (code !== 0 && counts.failed === 0) {
        note(
          `deno test exited with code ${code} although no test failed ` +
            (interrupted
              ? `(interrupted by ${interrupted})`
              : `(leak/sanitizer error or crash after the tests?)`) +
            "; counted as 1 failed",
        );
        counts.failed = 1;
      }
    }

    if (counts.passed + counts.failed === 0) note("no test ran");
    if (code === 0 && (counts.failed > 0 || counts.passed + counts.failed === 0)) code = 1;
    if (interrupted && code === 0) code = interrupted === "SIGINT" ? 130 : 143;
    note(`finished in ${((performance.now() - began) / 1000).toFixed(1)} s`);
    console.log(summary(counts));
    return code;
  } finally {
    if (cluster) await cluster.stop().catch(() => cluster?.stopSync());
    if (workDir) await Deno.remove(workDir, { recursive: true }).catch(() => {});
    for (const [sig, fn] of signals) Deno.removeSignalListener(sig, fn);
  }
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main();
  } catch (err) {
    note("the test runner itself failed:");
    console.error(err);
    console.log("0 passed, 1 failed");
    code = 1;
  }
  Deno.exit(code);
}
