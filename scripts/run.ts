/**
 * `deno task kickmon <command>`: runs main.ts from source with the same
 * narrow permission flags the compiled binary gets (scripts/permissions.ts),
 * with `./state` (absolute) as the state directory and the database and
 * extra hosts taken from `KICKMON_DB_HOST` / `KICKMON_EXTRA_HOSTS` like the
 * build. This wrapper itself only needs to read the environment and spawn deno.
 *
 * @example
 * ```sh
 * KICKMON_DB_HOST=127.0.0.1:5432 deno task kickmon config validate
 * ```
 *
 * @module
 */
import { permissionFlags, permissionOptionsFromEnv } from "./permissions.ts";
import { V8_FLAGS } from "./v8_flags.ts";

const root = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const opts = permissionOptionsFromEnv(Deno.env.toObject());
const flags = permissionFlags({ ...opts, stateDirectories: [`${Deno.cwd()}/state`] });
const child = new Deno.Command("deno", {
  args: ["run", `--v8-flags=${V8_FLAGS.join(",")}`, ...flags, `${root}/main.ts`, ...Deno.args],
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  Deno.addSignalListener(sig, () => child.kill(sig));
}
Deno.exit((await child.status).code);
