/**
 * `deno task kickmon <command>`: runs main.ts from source with the same
 * narrow permission flags the compiled binary gets (scripts/permissions.ts),
 * with `./state` (absolute) as the state directory. The hosts and listen
 * addresses come from the configuration it runs with: the database of
 * `DATABASE_URL` or `DATABASE_HOST`/`DATABASE_PORT`, `HEALTH_CHECK_LISTEN`,
 * `KICK_WEBHOOK_LISTEN`, the `KICK_*_URL` endpoints and the Pusher host;
 * `KICKMON_DB_HOST`, `KICKMON_LISTEN` and `KICKMON_EXTRA_HOSTS` add to them,
 * like the build. This wrapper itself only needs to read the environment and
 * spawn deno.
 *
 * @example
 * ```sh
 * DATABASE_URL=postgres://kickmon@db.internal:6432/kickmon deno task kickmon db health
 * ```
 *
 * @module
 */
import {
  permissionFlags,
  permissionOptionsFromConfig,
  permissionOptionsFromEnv,
} from "./permissions.ts";
import { V8_FLAGS } from "./v8_flags.ts";

const root = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const env = Deno.env.toObject();
const built = permissionOptionsFromEnv(env);
const config = permissionOptionsFromConfig(env);
const flags = permissionFlags({
  ...built,
  // What this configuration needs, plus what KICKMON_* names (as for a build).
  databaseHosts: [...config.databaseHosts!, ...(env.KICKMON_DB_HOST ? built.databaseHosts! : [])],
  listenAddresses: [
    ...config.listenAddresses!,
    ...(env.KICKMON_LISTEN ? built.listenAddresses! : []),
  ],
  kickHosts: config.kickHosts,
  stateDirectories: [`${Deno.cwd()}/state`],
});
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
