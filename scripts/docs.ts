/**
 * `deno task docs`: writes what the configuration rows
 * (`src/config/variables.ts`) generate: `.env.example` (see
 * `scripts/env_example.ts`) and the README's "Configuration" table, between
 * its markers (see `src/config/docs.ts`). `tests/env_example_test.ts` and
 * `tests/readme_test.ts` fail until it has been run after a row changed.
 *
 * @example
 * ```sh
 * deno task docs
 * ```
 *
 * @module
 */
import { withConfigTable } from "../src/config/docs.ts";
import { envExample } from "./env_example.ts";

if (import.meta.main) {
  const envPath = new URL("../.env.example", import.meta.url);
  await Deno.writeTextFile(envPath, envExample());
  console.error(`wrote ${envPath.pathname}`);
  const readmePath = new URL("../README.md", import.meta.url);
  await Deno.writeTextFile(readmePath, withConfigTable(await Deno.readTextFile(readmePath)));
  console.error(`wrote the configuration table of ${readmePath.pathname}`);
}
