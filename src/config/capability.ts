/**
 * A refused permission, said in kickmon's words.
 *
 * The bundle and the compiled binary run with the permissions chosen at
 * build time (`scripts/permissions.ts`). Changing `DATABASE_PORT` or
 * `HEALTH_CHECK_LISTEN` afterwards makes Deno throw
 * `Requires net access to "127.0.0.1:55699", run again with the --allow-net flag`:
 * advice the user of a binary cannot follow. {@linkcode explainNotCapable}
 * turns that into what was refused, which setting asked for it, what this
 * build allows, and which build variable changes it.
 *
 * @module
 */
import { type BakedPermissions, bakedPermissions } from "../build_info.ts";
import type { Config } from "./config.ts";

/** What kind of access was refused and to what, parsed from Deno's message. */
export interface RefusedAccess {
  /** `net`, `read`, `write`, `run`, `env`, … */
  readonly kind: string;
  /** The host:port, path, program or variable. */
  readonly target: string;
}

/**
 * A permission this build does not have; `message` is the explanation,
 * `cause` Deno's `NotCapable`.
 *
 * @example
 * ```ts
 * try { await Deno.connect({ hostname: "db", port: 6432 }); } catch (e) {
 *   if (e instanceof Deno.errors.NotCapable) throw new NotPermittedError(explainNotCapable(e)!, { cause: e });
 * }
 * ```
 */
export class NotPermittedError extends Error {
  /**
   * @param message the explanation (see {@linkcode explainNotCapable}).
   * @param options `cause`: Deno's `NotCapable`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NotPermittedError";
  }
}

/**
 * The `NotCapable` in `e` or its `cause` chain, or null.
 *
 * @example
 * ```ts
 * if (findNotCapable(err)) return EXIT.usage;
 * ```
 */
export function findNotCapable(e: unknown): Deno.errors.NotCapable | null {
  let cur: unknown = e;
  for (let depth = 0; depth < 10 && cur instanceof Error; depth++) {
    if (cur instanceof Deno.errors.NotCapable) return cur;
    cur = cur.cause;
  }
  return null;
}

/**
 * Parses Deno's `Requires <kind> access to "<target>", run again with …`.
 *
 * @returns null when the message has another shape.
 *
 * @example
 * ```ts
 * parseRefusal('Requires net access to "db:5432", run again with the --allow-net flag');
 * // { kind: "net", target: "db:5432" }
 * ```
 */
export function parseRefusal(message: string): RefusedAccess | null {
  const m = message.match(/Requires (\w+) access to "([^"]*)"/);
  return m ? { kind: m[1], target: m[2] } : null;
}

/** How a configured endpoint is spelled in a permission: `host:port`, IPv6 in brackets. */
const hostPort = (host: string, port: number) =>
  `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;

/** Which setting a refused host:port belongs to, and the build variable that allows it. */
function netOwner(
  target: string,
  config: Config | undefined,
): { what: string; allowed: keyof BakedPermissions; buildVariable: string } {
  if (config) {
    const db = config.database;
    if (target === hostPort(db.host, db.port)) {
      return {
        what: "the database (DATABASE_URL, or DATABASE_HOST and DATABASE_PORT)",
        allowed: "databaseHosts",
        buildVariable: "KICKMON_DB_HOST",
      };
    }
    if (target === hostPort(config.health.hostname, config.health.port)) {
      return {
        what: "the health endpoint (HEALTH_CHECK_LISTEN)",
        allowed: "listenAddresses",
        buildVariable: "KICKMON_LISTEN",
      };
    }
    const w = config.kick.webhook;
    if (target === hostPort(w.hostname, w.port)) {
      return {
        what: "the webhook receiver (KICK_WEBHOOK_LISTEN)",
        allowed: "listenAddresses",
        buildVariable: "KICKMON_LISTEN",
      };
    }
    const p = config.kick.pusher;
    if (target === hostPort(p.host, p.port)) {
      return {
        what: "Pusher (KICK_PUSHER_HOST, KICK_PUSHER_CLUSTER, KICK_PUSHER_PORT)",
        allowed: "kickHosts",
        buildVariable: "KICKMON_EXTRA_HOSTS",
      };
    }
    for (
      const [name, url] of [
        ["KICK_OAUTH_URL", config.kick.oauthUrl],
        ["KICK_API_URL", config.kick.apiUrl],
        ["KICK_UNOFFICIAL_API_URL", config.kick.unofficialApiUrl],
      ] as const
    ) {
      const u = new URL(url);
      if (target === `${u.hostname}:${u.port || (u.protocol === "https:" ? 443 : 80)}`) {
        return {
          what: `Kick (${name})`,
          allowed: "kickHosts",
          buildVariable: "KICKMON_EXTRA_HOSTS",
        };
      }
    }
  }
  return { what: "a host", allowed: "extraHosts", buildVariable: "KICKMON_EXTRA_HOSTS" };
}

const list = (xs: readonly string[] | undefined) => xs && xs.length ? xs.join(", ") : "none";

/**
 * Explains a refused permission in kickmon's words.
 *
 * @param e the error (a `NotCapable`, or an error with one in its `cause` chain).
 * @param config the configuration in use, to name the setting that asked for it.
 * @returns one paragraph, or null when `e` is not about a refused permission.
 *
 * @example
 * ```ts
 * // DATABASE_PORT=55699 on a binary built for localhost:5432:
 * explainNotCapable(err, config);
 * // "this kickmon build may not connect to 127.0.0.1:55699, the database (DATABASE_URL, …);
 * //  it was built to allow the database at localhost:5432, 127.0.0.1:5432, [::1]:5432.
 * //  Use one of those, or rebuild with KICKMON_DB_HOST=127.0.0.1:55699 (deno task compile)."
 * ```
 */
export function explainNotCapable(e: unknown, config?: Config): string | null {
  const nc = findNotCapable(e);
  if (!nc) return null;
  const r = parseRefusal(nc.message);
  const baked = bakedPermissions();
  const built = baked ? "it was built to allow" : "it runs with permission flags that allow";
  const rebuild = (variable: string, value: string) =>
    `rebuild with ${variable}=${value} (deno task compile; see scripts/permissions.ts)`;
  if (!r) return `this kickmon build is not allowed to do that (${nc.message})`;
  if (r.kind === "net") {
    const o = netOwner(r.target, config);
    const allowed = baked
      ? `; ${built} ${o.allowed === "listenAddresses" ? "listening on" : "connecting to"} ${
        list(baked[o.allowed])
      }`
      : "";
    return `this kickmon build may not ${
      o.allowed === "listenAddresses" ? "listen on" : "connect to"
    } ${r.target}, ${o.what}${allowed}. Use ${baked ? "one of those" : "an allowed address"}, or ${
      rebuild(o.buildVariable, r.target)
    }`;
  }
  if (r.kind === "read" || r.kind === "write") {
    const dirs = baked ? `; ${built} ${list(baked.stateDirectories)} as state directories` : "";
    const state = config?.system.stateDirectory;
    const isState = state !== undefined &&
      (r.target === state || r.target.startsWith(`${state.replace(/\/+$/, "")}/`));
    if (!isState && r.kind === "write") {
      const dirs = baked ? `; ${built} writing only ${list(baked.stateDirectories)}` : "";
      return `this kickmon build may not write ${r.target}${dirs}. Write under ${
        baked ? "one of those" : "an allowed directory"
      } (e.g. db backup --output), or ${
        rebuild(
          "KICKMON_STATE_DIR",
          r.target.startsWith("/") ? r.target.replace(/\/[^/]*$/, "") || "/" : "/absolute/dir",
        )
      }`;
    }
    if (isState) {
      return `this kickmon build may not ${r.kind} ${r.target} (the state directory, ` +
        `SYSTEM_STATE_DIRECTORY)${dirs}. Set SYSTEM_STATE_DIRECTORY to ${
          baked ? "one of those" : "an allowed directory"
        }, or ${rebuild("KICKMON_STATE_DIR", r.target)}`;
    }
    const reads = baked
      ? `; ${built} reading ${list([...baked.stateDirectories, ...baked.readPaths])}`
      : "";
    return `this kickmon build may not read ${r.target}${reads}. R${
      rebuild("KICKMON_READ_PATHS", r.target).slice(1)
    }`;
  }
  if (r.kind === "run") {
    const progs = baked ? `; ${built} running ${list(baked.programs)}` : "";
    const variable = /kill/.test(r.target) ? "KICKMON_KILL" : "KICKMON_PG_DUMP";
    return `this kickmon build may not run ${r.target}${progs}. Install it at one of those paths, or ${
      rebuild(variable, `/absolute/path/of/${r.target.replace(/^.*\//, "")}`)
    }`;
  }
  return `this kickmon build is not allowed ${r.kind} access to ${r.target} (${nc.message})`;
}
