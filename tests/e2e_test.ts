/**
 * End to end: a real `kickmon start` process, the Kick simulator and a real
 * PostgreSQL server, driven with the real captured Kick frames. Runs in the
 * simulator API mode named by `KICKMON_TEST_SIM_API`
 * (`helpers/api_modes.ts`); the scenario is `helpers/e2e_scenario.ts`,
 * shared with `api_move_test.ts`.
 */
import { simApiMode } from "./helpers/api_modes.ts";
import { e2eScenario } from "./helpers/e2e_scenario.ts";

Deno.test("e2e: streamer list -> Pusher frames -> status rows, in real time", () =>
  e2eScenario(simApiMode()));
