/**
 * kickmon's version, the `version` of deno.json (`tests/cli_test.ts` checks
 * that they agree). Printed by `kickmon --version` and exported as
 * `kickmon_build_info{version}`.
 *
 * @module
 */

/** kickmon's version, e.g. `0.1.0`. */
export const VERSION = "0.1.0";
