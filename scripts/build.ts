/**
 * Builds kickmon's release artefacts:
 *
 * - `deno task compile` → `dist/kickmon` (and `dist/kickmon.js` on the way):
 *   one self-contained binary with the permission flags of
 *   `scripts/permissions.ts` baked in (`deno compile`);
 * - `deno task bundle` → `dist/kickmon.js`: one JavaScript file (`deno
 *   bundle`), run with `deno run --no-config <flags> dist/kickmon.js`;
 * - `deno run -A scripts/build.ts flags` prints the permission and V8 flags,
 *   one per line, for `deno run --no-config $(deno run -A scripts/build.ts flags) dist/kickmon.js start`.
 *
 * Build-time choices come from the environment (see
 * `permissionOptionsFromEnv` in `scripts/permissions.ts`): `KICKMON_DB_HOST`,
 * `KICKMON_EXTRA_HOSTS`, `KICKMON_LISTEN`, `KICKMON_STATE_DIR`,
 * `KICKMON_READ_PATHS`, `KICKMON_PG_DUMP`, `KICKMON_KILL`; and
 * `KICKMON_MEMORY_MAX`, the memory budget the V8 heap bound is sized from
 * (MiB or `256M`/`1G`, default 256 = the unit's `MemoryMax=`;
 * scripts/v8_flags.ts).
 *
 * `deno compile` downloads the `denort` runtime for the target on first use.
 * Without internet, point `DENORT_BIN` at a `denort` binary of the same
 * version as `deno` (from `denort-<target>.zip` of the Deno release); it is
 * passed to `deno compile` through the environment, which Deno honours. After
 * compiling, the script runs `dist/kickmon --version` and fails unless it
 * prints kickmon's version (catches a `DENORT_BIN` that is not a denort).
 *
 * The binary is compiled from the bundle (`dist/kickmon.js`), so the file
 * `tests/bundle_test.ts` runs with the same permission flags is the code that
 * ships. Migrations are embedded because `src/db/migrate.ts` imports them as
 * text modules (`with { type: "text" }`, `--unstable-raw-imports`), which the
 * bundler inlines as strings.
 *
 * @example
 * ```sh
 * KICKMON_DB_HOST=db.internal:5432 DENORT_BIN=$HOME/denort deno task compile
 * deno task bundle
 * deno run -A scripts/build.ts flags
 * ```
 *
 * @module
 */
import {
  permissionFlags,
  type PermissionOptions,
  permissionOptionsFromEnv,
  resolvePermissions,
} from "./permissions.ts";
import { BUILD_STAMP_KEY } from "../src/build_info.ts";
import { memoryMaxMibFromEnv, v8Flags } from "./v8_flags.ts";
import denoJson from "../deno.json" with { type: "json" };

const VERSION: string = denoJson.version;

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");

/** Default output of the compile task (relative to the repository root). */
export const DEFAULT_BINARY = "dist/kickmon";
/** Default output of the bundle task (relative to the repository root). */
export const DEFAULT_BUNDLE = "dist/kickmon.js";

/**
 * A build step failed; `message` says what to do, `cause` is the underlying
 * error (e.g. `deno compile`'s stderr).
 *
 * @example
 * ```ts
 * try {
 *   await buildBinary();
 * } catch (e) {
 *   if (e instanceof BuildError) console.error(e.message);
 * }
 * ```
 */
export class BuildError extends Error {
  /**
   * Creates the error.
   *
   * @param message what failed and what to do.
   * @param options `cause`: the underlying error.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BuildError";
  }
}

/** Options for {@linkcode compileArgs}. */
export interface CompileOptions {
  /** Output path. Default {@linkcode DEFAULT_BINARY}. */
  readonly output?: string;
  /** Target triple. Default the current one (`Deno.build.target`). */
  readonly target?: string;
  /** Permission flags. Default `permissionFlags(permissionOptionsFromEnv(env))`. */
  readonly permissions?: readonly string[];
  /** The bundle to compile. Default {@linkcode DEFAULT_BUNDLE}. */
  readonly bundle?: string;
  /** V8 flags. Default `v8Flags(memoryMaxMibFromEnv(env))` (scripts/v8_flags.ts). */
  readonly v8Flags?: readonly string[];
}

/**
 * The `deno compile` arguments (without the `deno` executable). The binary is
 * compiled from the bundle (see {@linkcode bundleArgs}), not from `main.ts`:
 * what `tests/bundle_test.ts` runs is exactly what ships, and `deno compile`
 * 2.9.6 overflows its stack while embedding the npm package `bintrees`
 * (via prom-client) from the npm cache, which a bundle avoids.
 *
 * @example
 * ```ts
 * const args = compileArgs({ output: "/tmp/kickmon", permissions: ["--no-prompt"] });
 * // ["compile", "--no-config", "--target", "x86_64-unknown-linux-gnu", …, "dist/kickmon.js"]
 * ```
 */
export function compileArgs(opts: CompileOptions = {}): string[] {
  return [
    "compile",
    "--no-config",
    "--target",
    opts.target ?? Deno.build.target,
    "--output",
    opts.output ?? DEFAULT_BINARY,
    ...(opts.permissions ?? permissionFlags(permissionOptionsFromEnv(Deno.env.toObject()))),
    // Heap sizing measured by `deno task bench`, and the old generation's bound
    // for the memory budget (KICKMON_MEMORY_MAX, default the unit's 256M).
    `--v8-flags=${(opts.v8Flags ?? v8Flags(memoryMaxMibFromEnv(Deno.env.toObject()))).join(",")}`,
    opts.bundle ?? DEFAULT_BUNDLE,
  ];
}

/**
 * The `deno bundle` arguments (without the `deno` executable). The bundle is
 * type-checked, self-contained (npm packages included, migrations inlined as
 * strings) and runs offline from an empty `DENO_DIR` with
 * `deno run --no-config`.
 *
 * @example
 * ```ts
 * await new Deno.Command(Deno.execPath(), { args: bundleArgs("/tmp/k.js") }).output();
 * ```
 */
export function bundleArgs(output: string = DEFAULT_BUNDLE): string[] {
  return [
    "bundle",
    "--check",
    "--unstable-raw-imports",
    "--platform",
    "deno",
    "--output",
    output,
    `${ROOT}/main.ts`,
  ];
}

async function run(args: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "inherit",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  await Deno.stderr.write(out.stderr);
  if (!out.success) {
    throw new BuildError(`deno ${args[0]} exited with code ${out.code}`, {
      cause: new Error(stderr),
    });
  }
  return stderr;
}

async function ensureParent(path: string): Promise<void> {
  const abs = path.startsWith("/") ? path : `${ROOT}/${path}`;
  await Deno.mkdir(abs.slice(0, abs.lastIndexOf("/")) || "/", { recursive: true });
}

/**
 * Writes what a build was allowed into the bundle's first line (read back by
 * `src/build_info.ts`): kickmon then explains a refused operation with the
 * hosts and paths this build allows and the variable that changes them, and
 * defaults its state directory to one the build may write. Idempotent: an
 * existing stamp is replaced.
 *
 * @param bundle path of a bundle written by `deno bundle`.
 * @param opts the same options the permission flags were made from.
 * @throws {PermissionOptionsError} when `opts` is malformed.
 *
 * @example
 * ```ts
 * await stampBundle("dist/kickmon.js", permissionOptionsFromEnv(Deno.env.toObject()));
 * ```
 */
export async function stampBundle(bundle: string, opts: PermissionOptions): Promise<void> {
  const key = BUILD_STAMP_KEY.description;
  const line = `globalThis[Symbol.for(${JSON.stringify(key)})] = ${
    JSON.stringify(resolvePermissions(opts))
  };\n`;
  const text = await Deno.readTextFile(bundle);
  const body = text.startsWith("globalThis[Symbol.for(")
    ? text.slice(text.indexOf("\n") + 1)
    : text;
  await Deno.writeTextFile(bundle, line + body);
}

/**
 * Builds the bundle and stamps it with the permission choices (see
 * {@linkcode stampBundle}).
 *
 * @param output where to write it.
 * @param opts permission choices; default from the environment (`KICKMON_*`).
 * @returns the output path.
 * @throws {BuildError} when `deno bundle` fails.
 *
 * @example
 * ```ts
 * const path = await buildBundle("/tmp/kickmon.js");
 * ```
 */
export async function buildBundle(
  output: string = DEFAULT_BUNDLE,
  opts: PermissionOptions = permissionOptionsFromEnv(Deno.env.toObject()),
): Promise<string> {
  await ensureParent(output);
  await run(bundleArgs(output));
  await stampBundle(output.startsWith("/") ? output : `${ROOT}/${output}`, opts);
  return output;
}

/**
 * Builds the bundle, compiles it into the binary and checks that the binary
 * runs (`--version`).
 *
 * @returns the output path.
 * @throws {BuildError} when `deno compile` fails (with a hint when the
 *   denort download was the problem) or the result does not run kickmon.
 *
 * @example
 * ```ts
 * await buildBinary({ output: "dist/kickmon" });
 * ```
 */
export async function buildBinary(opts: CompileOptions = {}): Promise<string> {
  const output = opts.output ?? DEFAULT_BINARY;
  const bundle = await buildBundle(opts.bundle ?? DEFAULT_BUNDLE);
  const denort = Deno.env.get("DENORT_BIN");
  const env: Record<string, string> = {};
  if (denort) {
    try {
      const info = await Deno.stat(denort);
      if (!info.isFile) throw new Error("not a regular file");
    } catch (cause) {
      throw new BuildError(`DENORT_BIN=${denort} is not a readable file`, { cause });
    }
    env.DENORT_BIN = denort;
  }
  await ensureParent(output);
  try {
    await run(compileArgs({ ...opts, output, bundle }), env);
  } catch (e) {
    const detail = e instanceof BuildError && e.cause instanceof Error ? e.cause.message : "";
    if (
      !denort && /denort|dns error|download|failed to lookup|error sending request/i.test(detail)
    ) {
      throw new BuildError(
        "deno compile could not download its denort runtime (no internet?). Set DENORT_BIN " +
          "to a denort binary of Deno " + Deno.version.deno + " for " +
          (opts.target ?? Deno.build.target) + " (from the release's denort-<target>.zip).",
        { cause: e },
      );
    }
    throw e;
  }
  if ((opts.target ?? Deno.build.target) === Deno.build.target) {
    const abs = output.startsWith("/") ? output : `${ROOT}/${output}`;
    const res = await new Deno.Command(abs, { args: ["--version"], stdin: "null" }).output()
      .catch((cause) => {
        throw new BuildError(`the compiled ${output} does not start`, { cause });
      });
    const printed = new TextDecoder().decode(res.stdout).trim();
    if (!res.success || printed !== VERSION) {
      await Deno.remove(abs).catch(() => {});
      throw new BuildError(
        `the compiled ${output} does not run kickmon (\`--version\` printed "${printed}", ` +
          `expected "${VERSION}"): is DENORT_BIN really a denort binary?`,
      );
    }
  }
  return output;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

async function cli(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  const t0 = performance.now();
  const took = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  try {
    if (command === "flags") {
      // What the binary bakes in: `deno run --no-config $(… flags) dist/kickmon.js start`
      // runs the bundle exactly as the binary runs.
      const env = Deno.env.toObject();
      console.log(
        [
          ...permissionFlags(permissionOptionsFromEnv(env)),
          `--v8-flags=${v8Flags(memoryMaxMibFromEnv(env)).join(",")}`,
        ].join("\n"),
      );
      return 0;
    }
    if (command === "bundle") {
      const out = await buildBundle(option(rest, "--output") ?? DEFAULT_BUNDLE);
      const size = (await Deno.stat(out.startsWith("/") ? out : `${ROOT}/${out}`)).size;
      console.error(`bundle: ${out} (${(size / 1e6).toFixed(2)} MB) in ${took()}`);
      return 0;
    }
    if (command === "compile") {
      const flags = permissionFlags(permissionOptionsFromEnv(Deno.env.toObject()));
      console.error(`compile: permission flags:\n  ${flags.join("\n  ")}`);
      const v8 = v8Flags(memoryMaxMibFromEnv(Deno.env.toObject()));
      console.error(`compile: V8 flags: ${v8.join(" ")}`);
      const out = await buildBinary({
        output: option(rest, "--output"),
        target: option(rest, "--target"),
        permissions: flags,
      });
      console.error(`compile: ${out} in ${took()}`);
      return 0;
    }
    console.error("usage: scripts/build.ts compile|bundle|flags [--output PATH] [--target TRIPLE]");
    return 2;
  } catch (e) {
    console.error(`build: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await cli(Deno.args));
