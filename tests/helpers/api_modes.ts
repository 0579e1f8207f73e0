/**
 * The simulator's official-API modes the e2e and reconcile scenarios run in
 * (issue 13 item 4): `v1`, today's API, and `v1gone`, where v1
 * `GET /public/v1/livestreams` answers 404 and `/users/livestreams` still
 * answers (docs/kick-protocol.md §4.5, §10.6).
 *
 * `tests/reconcile_test.ts` and `tests/e2e_test.ts` run in the mode named by
 * `KICKMON_TEST_SIM_API` (`v1gone`, else `v1`); `tests/api_move_test.ts`
 * runs their key scenarios in `v1gone` always, so `deno task test` covers
 * both modes.
 *
 * @module
 */
import type { SimulatorOptions } from "../../dev/simulator/simulator.ts";

/** A simulator API mode. */
export type SimApiMode = "v1" | "v1gone";

/**
 * The mode named by `KICKMON_TEST_SIM_API` (`v1gone`), else `v1`.
 *
 * @throws {Error} for any other non-empty value (a typo must not pass silently).
 *
 * @example
 * ```ts
 * const mode = simApiMode(); // "v1" unless KICKMON_TEST_SIM_API=v1gone
 * ```
 */
export function simApiMode(): SimApiMode {
  const v = Deno.env.get("KICKMON_TEST_SIM_API") ?? "";
  if (v === "" || v === "v1") return "v1";
  if (v === "v1gone") return "v1gone";
  throw new Error(`KICKMON_TEST_SIM_API=${v}: expected v1 or v1gone`);
}

/**
 * The simulator options of a mode.
 *
 * @example
 * ```ts
 * const sim = await startSimulator({ ...simApiOptions("v1gone"), activityTimeoutSec: 30 });
 * ```
 */
export function simApiOptions(mode: SimApiMode = simApiMode()): SimulatorOptions {
  return mode === "v1gone" ? { v1LivestreamsGone: true } : {};
}
