/**
 * What a built kickmon (the bundle, and the binary compiled from it) was
 * allowed at build time. `scripts/build.ts` stamps the bundle's first line
 * with the permission choices it baked in (`stampBundle`); run from source,
 * there is no stamp and {@linkcode bakedPermissions} returns null.
 *
 * kickmon uses it to explain a refused operation in its own words (which
 * host or path, what this build allows, which build variable changes it,
 * `src/cli/capability.ts`) and to default the state directory to one that
 * the build may write.
 *
 * @module
 */

/**
 * The permission choices of a build (the values `scripts/permissions.ts`
 * turned into `--allow-*` flags). Hosts are `host:port`, paths absolute.
 *
 * @example
 * ```ts
 * const p: BakedPermissions = {
 *   kickHosts: ["id.kick.com:443"], extraHosts: [], databaseHosts: ["localhost:5432"],
 *   listenAddresses: ["127.0.0.1:8080"], stateDirectories: ["/var/lib/kickmon"],
 *   readPaths: [], programs: ["/usr/bin/pg_dump"],
 * };
 * ```
 */
export interface BakedPermissions {
  /** Kick endpoints (`KICK_*_URL`, the Pusher host). */
  readonly kickHosts: readonly string[];
  /** `KICKMON_EXTRA_HOSTS`. */
  readonly extraHosts: readonly string[];
  /** `KICKMON_DB_HOST`. */
  readonly databaseHosts: readonly string[];
  /** `KICKMON_LISTEN` (health and webhook listeners; their loopback twins included). */
  readonly listenAddresses: readonly string[];
  /** Readable and writable: `/var/lib/kickmon` and `KICKMON_STATE_DIR`. */
  readonly stateDirectories: readonly string[];
  /** `KICKMON_READ_PATHS`. */
  readonly readPaths: readonly string[];
  /** `KICKMON_PG_DUMP`, `KICKMON_KILL`. */
  readonly programs: readonly string[];
}

/** The global the stamp sets (a symbol: nothing else can collide with it). */
export const BUILD_STAMP_KEY: unique symbol = Symbol.for("kickmon.bakedPermissions");

/**
 * The permissions this build was made with, or null when run from source.
 *
 * @example
 * ```ts
 * const baked = bakedPermissions();
 * if (baked) console.log(`database hosts: ${baked.databaseHosts.join(", ")}`);
 * ```
 */
export function bakedPermissions(): BakedPermissions | null {
  const v = (globalThis as Record<symbol, unknown>)[BUILD_STAMP_KEY];
  return v && typeof v === "object" ? v as BakedPermissions : null;
}

/**
 * The state directory used when neither `SYSTEM_STATE_DIRECTORY` nor
 * systemd's `STATE_DIRECTORY` is set: a build's first state directory
 * (`/var/lib/kickmon`, which its flags allow), else `./state` (from source).
 *
 * @example
 * ```ts
 * defaultStateDirectory(); // "./state" from source, "/var/lib/kickmon" in the binary
 * ```
 */
export function defaultStateDirectory(): string {
  return bakedPermissions()?.stateDirectories[0] ?? "./state";
}
