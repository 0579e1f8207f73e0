/**
 * kickmon: keeps Kick.com streamers' live status current in PostgreSQL.
 *
 * Entry point; everything lives under `src/` (see README.md, "Layout").
 *
 * @module
 */
import { main } from "./src/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
