/**
 * Another git ref's kickmon for `deno task bench --compare REF`: the ref's
 * tree is exported (`git archive REF | tar -x`) into a temporary directory
 * (no worktree, nothing written into the repository's `.git`), its own
 * `scripts/build.ts bundle` builds the bundle its binary would be compiled
 * from, and its own `scripts/v8_flags.ts` gives the V8 flags it ships. The
 * bench then runs that bundle exactly as it runs this tree's.
 *
 * @module
 */

/**
 * A prepared ref. `entry` is the bundle to run (`deno run --no-config`).
 *
 * @example
 * ```ts
 * import type { RefBuild } from "./git_ref.ts";
 * declare const b: RefBuild;
 * console.log(b.ref, b.commit.slice(0, 7), b.entry);
 * ```
 */
export interface RefBuild {
  /** The ref as given, e.g. `main~3`. */
  readonly ref: string;
  /** The full commit it names. */
  readonly commit: string;
  /** The exported tree. */
  readonly dir: string;
  /** The bundle built from it. */
  readonly entry: string;
  /** That tree's shipped V8 flags, comma-separated (`""` when it has no `scripts/v8_flags.ts`). */
  readonly shippedV8Flags: string;
  /** Deletes the exported tree and the bundle. */
  remove(): Promise<void>;
}

/**
 * A git, tar or build step failed while preparing a ref; `cause` holds the
 * underlying error when there is one.
 *
 * @example
 * ```ts
 * import { RefBuildError } from "./git_ref.ts";
 * new RefBuildError("git rev-parse nope failed", { cause: new Error("exit 128") });
 * ```
 */
export class RefBuildError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RefBuildError";
  }
}

async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; stdin?: Uint8Array } = {},
): Promise<{ stdout: Uint8Array; text: string }> {
  const c = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  });
  const p = c.spawn();
  if (opts.stdin) {
    const w = p.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const out = await p.output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-5).join("\n");
    throw new RefBuildError(`${cmd} ${args.join(" ")} failed (exit ${out.code}): ${err}`);
  }
  return { stdout: out.stdout, text: new TextDecoder().decode(out.stdout).trim() };
}

/**
 * Resolves `ref` in the repository at `repoDir`, exports its tree, builds
 * its bundle and reads its V8 flags. The database layout the bench creates
 * comes from *this* tree's migrations; the ref's kickmon must accept it
 * (true for refs that share the current `kickmon` schema).
 *
 * @param repoDir a directory inside the repository (the bench's own root).
 * @param log progress lines.
 * @throws {RefBuildError} when the ref does not exist or its build fails.
 *
 * @example
 * ```ts
 * import { prepareRef } from "./git_ref.ts";
 * const b = await prepareRef("main~1", "/work/main");
 * try { console.log(b.entry); } finally { await b.remove(); }
 * ```
 */
export async function prepareRef(
  ref: string,
  repoDir: string,
  log: (line: string) => void = () => {},
): Promise<RefBuild> {
  const commit = (await run("git", ["-C", repoDir, "rev-parse", "--verify", `${ref}^{commit}`]))
    .text;
  const dir = await Deno.makeTempDir({ prefix: `kickmon-bench-ref-${commit.slice(0, 7)}-` });
  const remove = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  try {
    log(`bench: exporting ${ref} (${commit.slice(0, 7)}) into ${dir}`);
    const tar = await run("git", ["-C", repoDir, "archive", "--format=tar", commit]);
    await run("tar", ["-x", "-C", dir], { stdin: tar.stdout });
    const entry = `${dir}/dist/kickmon-bench.js`;
    log(`bench: building ${ref}'s bundle with its own scripts/build.ts`);
    await run(Deno.execPath(), ["run", "-A", "scripts/build.ts", "bundle", "--output", entry], {
      cwd: dir,
    });
    await Deno.stat(entry).catch((cause) => {
      throw new RefBuildError(`${ref}: scripts/build.ts bundle wrote no ${entry}`, { cause });
    });
    let shippedV8Flags = "";
    try {
      await Deno.stat(`${dir}/scripts/v8_flags.ts`);
      shippedV8Flags = (await run(Deno.execPath(), [
        "eval",
        `import * as m from "file://${dir}/scripts/v8_flags.ts"; console.log(m.V8_FLAGS.join(","))`,
      ], { cwd: dir })).text;
    } catch { /* no such file in that ref: no shipped flags */ }
    return { ref, commit, dir, entry, shippedV8Flags, remove };
  } catch (e) {
    await remove();
    throw e instanceof RefBuildError
      ? e
      : new RefBuildError(`preparing ${ref} failed`, { cause: e });
  }
}

/**
 * The commit `HEAD` names in `repoDir`, and whether the work tree has
 * uncommitted changes (then this side is not exactly that commit).
 *
 * @throws {RefBuildError} when `repoDir` is not in a git repository.
 *
 * @example
 * ```ts
 * import { headOf } from "./git_ref.ts";
 * const h = await headOf("/work/main"); // { commit: "8d69…", dirty: false }
 * ```
 */
export async function headOf(repoDir: string): Promise<{ commit: string; dirty: boolean }> {
  const commit = (await run("git", ["-C", repoDir, "rev-parse", "HEAD"])).text;
  const status =
    (await run("git", ["-C", repoDir, "status", "--porcelain", "--untracked-files=no"]))
      .text;
  return { commit, dirty: status.length > 0 };
}
