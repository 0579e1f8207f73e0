/**
 * The one place that says which Deno permissions kickmon runs with. Both
 * `deno task compile` (baked into the binary) and `tests/bundle_test.ts`
 * (runs the bundle with exactly these flags) use {@linkcode permissionFlags};
 * a permission missing here therefore fails the bundle test.
 *
 * What is granted and why:
 *
 * | flag | scope |
 * |---|---|
 * | `--allow-net` | the Kick hosts (from the defaults in `src/config/config.ts`, port 443), the database host(s) named at build time, the health/webhook listen addresses (`kickmon start` listens there, `kickmon status` connects there), plus any extra hosts |
 * | `--allow-env` | exactly {@linkcode CONFIG_VARIABLES}, `STATE_DIRECTORY` (systemd), `INVOCATION_ID`/`NOTIFY_SOCKET` (`kickmon stop` refuses to fight systemd), `JOURNAL_STREAM` (syslog priority prefixes) and `NO_COLOR` |
 * | `--ignore-env` | variables that libraries merely probe (postgres.js `PG*`, the user name fallbacks, commander's colour switches): they read as unset instead of throwing, so nothing but kickmon's own variables configures it |
 * | `--allow-read`/`--allow-write` | the state directories only (PID file, outage spool, list snapshot); reads also the paths named by `KICKMON_READ_PATHS` at build time |
 * | `--allow-run` | absolute paths of `pg_dump` (`kickmon db backup`) and `kill` (`kickmon stop`: `Deno.kill` would need unrestricted `--allow-run`) |
 * | `--allow-sys=hostname` | only `Deno.hostname()`: the leader's identity in `/health` and `pg_stat_activity` (issue 14; `uname(2)`, allowed by the unit's `@system-service` filter) |
 * | `--no-prompt` | a missing permission is an error, never a question |
 *
 * Nothing else (any other `--allow-sys` kind, `--allow-ffi`, `--allow-import`) is granted.
 * The development tools (the demo, the simulator, the throwaway cluster) live
 * in `dev/`, outside the bundle, and run with `-A` (`deno task demo`).
 *
 * @module
 */
import type { BakedPermissions } from "../src/build_info.ts";
import { CONFIG_DOCS, CONFIG_VARIABLES } from "../src/config/config.ts";

/**
 * Environment variables kickmon itself reads: every configuration variable,
 * systemd's `STATE_DIRECTORY`, the two variables `kickmon stop|restart` use
 * to detect that they run inside a systemd unit, systemd's `JOURNAL_STREAM`
 * (log lines then carry their syslog priority, `src/log/format.ts`), and
 * `NO_COLOR` (the live view, `src/view/ansi.ts`, honours it).
 */
export const RUNTIME_ENV_VARIABLES: readonly string[] = [
  ...CONFIG_VARIABLES,
  "STATE_DIRECTORY",
  "INVOCATION_ID",
  "NOTIFY_SOCKET",
  "JOURNAL_STREAM",
  "NO_COLOR",
];

/**
 * Variables that bundled libraries probe through `process.env` although
 * kickmon never sets or documents them. They are passed to `--ignore-env`
 * (the read returns `undefined`) rather than `--allow-env`, so a stray
 * `PGPASSWORD` or `PGHOST` in the service's environment cannot override
 * `DATABASE_*`.
 *
 * - postgres.js 3.4 (`parseOptions`): `PGHOST`, `PGPORT`, `PGUSERNAME`,
 *   `PGUSER`, `PGDATABASE`, `PGPASSWORD`, `PGAPPNAME`,
 *   `PGTARGETSESSIONATTRS`, and `"PG" + key.toUpperCase()` for every key of
 *   its `defaults` object that the caller did not set; the OS user name
 *   fallbacks `USERNAME`, `USER`, `LOGNAME`.
 * - commander 14 (`useColor`): `FORCE_COLOR`, `CLICOLOR_FORCE` (and
 *   `NO_COLOR`, which kickmon grants anyway).
 *
 * `tests/bundle_test.ts` scans the bundle for `env.NAME` reads and fails
 * when one is in neither list.
 */
export const IGNORED_ENV_VARIABLES: readonly string[] = [
  "PGHOST",
  "PGPORT",
  "PGUSERNAME",
  "PGUSER",
  "PGDATABASE",
  "PGPASSWORD",
  "PGAPPNAME",
  "PGTARGETSESSIONATTRS",
  // postgres.js: env["PG" + k.toUpperCase()] for each of its `defaults` keys.
  "PGMAX",
  "PGSSL",
  "PGSSLNEGOTIATION",
  "PGIDLE_TIMEOUT",
  "PGCONNECT_TIMEOUT",
  "PGMAX_LIFETIME",
  "PGMAX_PIPELINE",
  "PGBACKOFF",
  "PGKEEP_ALIVE",
  "PGPREPARE",
  "PGDEBUG",
  "PGFETCH_TYPES",
  "PGPUBLICATIONS",
  "PGTARGET_SESSION_ATTRS",
  "USERNAME",
  "USER",
  "LOGNAME",
  "FORCE_COLOR",
  "CLICOLOR_FORCE",
];

/** The state directory systemd's `StateDirectory=kickmon` provides. */
export const DEFAULT_STATE_DIRECTORY = "/var/lib/kickmon";

/** Default database endpoints: a local PostgreSQL on its standard port. */
export const DEFAULT_DATABASE_HOSTS: readonly string[] = [
  "localhost:5432",
  "127.0.0.1:5432",
  "[::1]:5432",
];

/**
 * Default programs `--allow-run` names (absolute paths: Deno compares the
 * path it resolves through `PATH` with this list, and a listed absolute path
 * that does not exist costs nothing).
 */
export const DEFAULT_PROGRAMS: readonly string[] = [
  "/usr/bin/pg_dump",
  "/usr/bin/kill",
  "/bin/kill",
];

/** What to allow; every field has a default (see {@linkcode permissionFlags}). */
export interface PermissionOptions {
  /**
   * Kick endpoints as `host[:port]`. Default {@linkcode defaultKickHosts}:
   * `id.kick.com:443`, `api.kick.com:443`, `kick.com:443`, `ws-us2.pusher.com:443`.
   */
  readonly kickHosts?: readonly string[];
  /** More `host[:port]` entries (build-time `KICKMON_EXTRA_HOSTS`). Default none. */
  readonly extraHosts?: readonly string[];
  /** Database `host[:port]` entries (build-time `KICKMON_DB_HOST`). Default {@linkcode DEFAULT_DATABASE_HOSTS}. */
  readonly databaseHosts?: readonly string[];
  /**
   * `host:port` addresses kickmon listens on (health, webhooks). Default
   * {@linkcode defaultListenAddresses}. A wildcard (`0.0.0.0`, `[::]`) also
   * allows its loopback twin, which `kickmon status` connects to.
   */
  readonly listenAddresses?: readonly string[];
  /** State directories (read + write). Default `[/var/lib/kickmon]`. */
  readonly stateDirectories?: readonly string[];
  /**
   * Extra read-only paths, e.g. the env file named by `KICKMON_ENV_FILE`
   * (re-read on SIGHUP) outside systemd. Default none.
   */
  readonly readPaths?: readonly string[];
  /** Absolute paths of programs kickmon may run. Default {@linkcode DEFAULT_PROGRAMS}. */
  readonly programs?: readonly string[];
}

/**
 * Raised for a malformed host, address or path in {@linkcode PermissionOptions}.
 *
 * @example
 * ```ts
 * try {
 *   permissionFlags({ stateDirectories: ["relative/dir"] });
 * } catch (e) {
 *   if (e instanceof PermissionOptionsError) console.error(e.message);
 * }
 * ```
 */
export class PermissionOptionsError extends Error {
  /**
   * Creates the error.
   *
   * @param message what is wrong with which entry.
   * @param options `cause`, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PermissionOptionsError";
  }
}

function hostOfUrl(url: string): string {
  const u = new URL(url);
  const port = u.port || (u.protocol === "https:" || u.protocol === "wss:" ? "443" : "80");
  return `${u.hostname}:${port}`;
}

/**
 * The Kick endpoints kickmon talks to with its default configuration, derived
 * from the defaults in `src/config/config.ts` (`KICK_OAUTH_URL`,
 * `KICK_API_URL`, `KICK_UNOFFICIAL_API_URL`, and `ws-<KICK_PUSHER_CLUSTER>.pusher.com`
 * on `KICK_PUSHER_PORT`).
 *
 * @returns `host:port` strings, deduplicated, in that order.
 *
 * @example
 * ```ts
 * defaultKickHosts(); // ["id.kick.com:443", "api.kick.com:443", "kick.com:443", "ws-us2.pusher.com:443"]
 * ```
 */
export function defaultKickHosts(): string[] {
  const pusherHost = CONFIG_DOCS.KICK_PUSHER_HOST.def ||
    `ws-${CONFIG_DOCS.KICK_PUSHER_CLUSTER.def}.pusher.com`;
  return [
    ...new Set([
      hostOfUrl(CONFIG_DOCS.KICK_OAUTH_URL.def),
      hostOfUrl(CONFIG_DOCS.KICK_API_URL.def),
      hostOfUrl(CONFIG_DOCS.KICK_UNOFFICIAL_API_URL.def),
      `${pusherHost}:${CONFIG_DOCS.KICK_PUSHER_PORT.def}`,
    ]),
  ];
}

/**
 * The default listen addresses: `HEALTH_CHECK_LISTEN` and `KICK_WEBHOOK_LISTEN`
 * defaults from `src/config/config.ts`.
 *
 * @example
 * ```ts
 * defaultListenAddresses(); // ["127.0.0.1:8080", "127.0.0.1:8081"]
 * ```
 */
export function defaultListenAddresses(): string[] {
  return [CONFIG_DOCS.HEALTH_CHECK_LISTEN.def, CONFIG_DOCS.KICK_WEBHOOK_LISTEN.def];
}

const HOST_RE = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function checkHost(entry: string, what: string): string {
  const e = entry.trim();
  if (!HOST_RE.test(e)) {
    throw new PermissionOptionsError(
      `${what}: "${entry}" is not host[:port] (IPv6 in brackets, e.g. [::1]:5432)`,
    );
  }
  return e;
}

/** Adds the loopback address for wildcard listen addresses (what `kickmon status` dials). */
function withLoopbackTwins(addresses: readonly string[]): string[] {
  const out: string[] = [];
  for (const a of addresses) {
    out.push(a);
    const m = a.match(/^(0\.0\.0\.0|\[::\])(:\d+)?$/);
    if (m) out.push(`${m[1] === "0.0.0.0" ? "127.0.0.1" : "[::1]"}${m[2] ?? ""}`);
  }
  return out;
}

const uniq = (xs: readonly string[]) => [...new Set(xs)];

/**
 * Builds kickmon's Deno permission flags.
 *
 * @param opts What to allow; omitted fields take the defaults described in
 *   {@linkcode PermissionOptions}.
 * @returns flags for `deno compile` or `deno run`, e.g.
 *   `["--no-prompt", "--allow-net=…", "--allow-env=…", "--ignore-env=…",
 *   "--allow-read=/var/lib/kickmon", "--allow-write=/var/lib/kickmon",
 *   "--allow-run=/usr/bin/pg_dump,…"]`.
 * @throws {PermissionOptionsError} when a host is not `host[:port]` or a
 *   state directory / program is not an absolute path (or contains a comma).
 *
 * @example
 * ```ts
 * const flags = permissionFlags({ databaseHosts: ["db.internal:5432"] });
 * await new Deno.Command("deno", { args: ["compile", ...flags, "main.ts"] }).output();
 * ```
 */
export function permissionFlags(opts: PermissionOptions = {}): string[] {
  const r = resolvePermissions(opts);
  const net = uniq([...r.kickHosts, ...r.extraHosts, ...r.databaseHosts, ...r.listenAddresses]);
  const reads = uniq([...r.stateDirectories, ...r.readPaths]);
  const ignored = IGNORED_ENV_VARIABLES.filter((v) => !RUNTIME_ENV_VARIABLES.includes(v));
  return [
    "--no-prompt",
    `--allow-net=${net.join(",")}`,
    `--allow-env=${uniq(RUNTIME_ENV_VARIABLES).join(",")}`,
    `--ignore-env=${ignored.join(",")}`,
    ...(reads.length ? [`--allow-read=${reads.join(",")}`] : []),
    ...(r.stateDirectories.length ? [`--allow-write=${r.stateDirectories.join(",")}`] : []),
    ...(r.programs.length ? [`--allow-run=${r.programs.join(",")}`] : []),
    "--allow-sys=hostname",
  ];
}

/**
 * {@linkcode PermissionOptions} with every default filled in and every entry
 * checked: what {@linkcode permissionFlags} grants, in the shape the build
 * stamps into the bundle (`src/build_info.ts`) so that kickmon can say what
 * it was built to allow.
 *
 * @throws {PermissionOptionsError} as {@linkcode permissionFlags}.
 *
 * @example
 * ```ts
 * resolvePermissions({}).databaseHosts; // ["localhost:5432", "127.0.0.1:5432", "[::1]:5432"]
 * ```
 */
export function resolvePermissions(opts: PermissionOptions = {}): BakedPermissions {
  const absolute = (what: string) => (d: string) => {
    if (!d.startsWith("/") || d.includes(",")) {
      throw new PermissionOptionsError(`${what} "${d}" must be an absolute path without commas`);
    }
    return d.replace(/(.)\/+$/, "$1");
  };
  const stateDirectories = uniq(
    (opts.stateDirectories ?? [DEFAULT_STATE_DIRECTORY]).map(absolute("state directory")),
  );
  return {
    kickHosts: uniq((opts.kickHosts ?? defaultKickHosts()).map((h) => checkHost(h, "Kick host"))),
    extraHosts: uniq((opts.extraHosts ?? []).map((h) => checkHost(h, "extra host"))),
    databaseHosts: uniq(
      (opts.databaseHosts ?? DEFAULT_DATABASE_HOSTS).map((h) => checkHost(h, "database host")),
    ),
    listenAddresses: uniq(withLoopbackTwins(
      (opts.listenAddresses ?? defaultListenAddresses()).map((h) => checkHost(h, "listen address")),
    )),
    stateDirectories,
    readPaths: uniq((opts.readPaths ?? []).map(absolute("read path"))),
    programs: uniq(opts.programs ?? DEFAULT_PROGRAMS).map((p) => {
      if (!p.startsWith("/") || p.includes(",")) {
        throw new PermissionOptionsError(`program "${p}" must be an absolute path without commas`);
      }
      return p;
    }),
  };
}

/**
 * The `host:port` entries a runtime configuration needs, for running from
 * source with narrow flags (`deno task kickmon`): the database named by
 * `DATABASE_URL` or `DATABASE_HOST`/`DATABASE_PORT`, the listen addresses of
 * `HEALTH_CHECK_LISTEN`/`KICK_WEBHOOK_LISTEN`, and the Kick endpoints of
 * `KICK_*_URL`/`KICK_PUSHER_*` (each with its default when unset).
 *
 * @param env the runtime environment (kickmon's variables).
 * @returns options for {@linkcode permissionFlags} (only the network fields).
 * @throws {TypeError} when `DATABASE_URL` or a `KICK_*_URL` is not a URL.
 *
 * @example
 * ```ts
 * permissionOptionsFromConfig({ DATABASE_URL: "postgres://k@db:6432/k" }).databaseHosts; // ["db:6432"]
 * ```
 */
export function permissionOptionsFromConfig(
  env: Readonly<Record<string, string | undefined>>,
): Pick<PermissionOptions, "databaseHosts" | "listenAddresses" | "kickHosts"> {
  const v = (name: keyof typeof CONFIG_DOCS) => env[name]?.trim() || CONFIG_DOCS[name].def;
  let db: string;
  if (v("DATABASE_URL")) {
    const u = new URL(v("DATABASE_URL"));
    db = `${u.hostname || "localhost"}:${u.port || "5432"}`;
  } else {
    const host = v("DATABASE_HOST");
    db = `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${
      v("DATABASE_PORT")
    }`;
  }
  const pusherHost = v("KICK_PUSHER_HOST") || `ws-${v("KICK_PUSHER_CLUSTER")}.pusher.com`;
  // "localhost" may resolve to either loopback address (as in DEFAULT_DATABASE_HOSTS).
  const port = db.slice(db.lastIndexOf(":") + 1);
  return {
    databaseHosts: db.startsWith("localhost:") ? [db, `127.0.0.1:${port}`, `[::1]:${port}`] : [db],
    listenAddresses: [v("HEALTH_CHECK_LISTEN"), v("KICK_WEBHOOK_LISTEN")],
    kickHosts: uniq([
      hostOfUrl(v("KICK_OAUTH_URL")),
      hostOfUrl(v("KICK_API_URL")),
      hostOfUrl(v("KICK_UNOFFICIAL_API_URL")),
      `${pusherHost}:${v("KICK_PUSHER_PORT")}`,
    ]),
  };
}

const list = (v: string | undefined): string[] =>
  (v ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");

/**
 * Reads the build-time choices from an environment (the compile task passes
 * `Deno.env.toObject()`):
 *
 * | variable | meaning | default |
 * |---|---|---|
 * | `KICKMON_DB_HOST` | database `host[:port]`, comma-separated | `localhost:5432,127.0.0.1:5432,[::1]:5432` |
 * | `KICKMON_EXTRA_HOSTS` | more `host[:port]` (a Kick mirror, a proxy) | none |
 * | `KICKMON_LISTEN` | health/webhook `host:port` addresses | `127.0.0.1:8080,127.0.0.1:8081` |
 * | `KICKMON_STATE_DIR` | state directories besides `/var/lib/kickmon` | none |
 * | `KICKMON_READ_PATHS` | extra read-only paths (e.g. the `KICKMON_ENV_FILE` env file) | none |
 * | `KICKMON_PG_DUMP` | absolute path of `pg_dump` | `/usr/bin/pg_dump` |
 * | `KICKMON_KILL` | absolute path(s) of `kill` | `/usr/bin/kill,/bin/kill` |
 *
 * @param env variable name → value.
 * @returns options for {@linkcode permissionFlags}.
 *
 * @example
 * ```ts
 * const flags = permissionFlags(permissionOptionsFromEnv({ KICKMON_DB_HOST: "db:5432" }));
 * ```
 */
export function permissionOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): PermissionOptions {
  const db = list(env.KICKMON_DB_HOST);
  const listen = list(env.KICKMON_LISTEN);
  const pgDump = list(env.KICKMON_PG_DUMP);
  const kill = list(env.KICKMON_KILL);
  return {
    extraHosts: list(env.KICKMON_EXTRA_HOSTS),
    databaseHosts: db.length ? db : DEFAULT_DATABASE_HOSTS,
    listenAddresses: listen.length ? listen : defaultListenAddresses(),
    stateDirectories: [DEFAULT_STATE_DIRECTORY, ...list(env.KICKMON_STATE_DIR)],
    readPaths: list(env.KICKMON_READ_PATHS),
    programs: [
      ...(pgDump.length ? pgDump : ["/usr/bin/pg_dump"]),
      ...(kill.length ? kill : ["/usr/bin/kill", "/bin/kill"]),
    ],
  };
}
