/**
 * Writes `.env.example`: a short header on installing it as systemd's
 * `EnvironmentFile=`, then `configTemplate()` from `src/config/docs.ts`
 * (every variable of `src/config/variables.ts` with its default and a
 * one-line comment). `tests/env_example_test.ts` fails when the file differs
 * from what the rows generate; run `deno task env-example` (or
 * `deno task docs`, which also writes the README's table) then.
 *
 * @example
 * ```sh
 * deno task env-example
 * ```
 *
 * @module
 */
import { configTemplate } from "../src/config/docs.ts";

/** Header placed above the generated template. */
export const ENV_EXAMPLE_HEADER =
  `# kickmon example configuration: every variable kickmon reads, with its default.
#
# Production (systemd): install as /etc/kickmon/kickmon.env, owned root:root,
# mode 0640 (it holds KICK_CLIENT_SECRET and DATABASE_PASSWORD); the unit reads
# it with EnvironmentFile=. See systemd/kickmon.service.
# Development: cp .env.example .env (git-ignored) and run with --env-file=.env.
#
# An empty value means "use the default". KICK_CLIENT_ID and KICK_CLIENT_SECRET
# are required. Regenerate this file with \`deno task env-example\`.
`;

/**
 * The full text of `.env.example`.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile(".env.example", envExample());
 * ```
 */
export function envExample(): string {
  return `${ENV_EXAMPLE_HEADER}\n${configTemplate().replace(/\n+$/, "")}\n`;
}

if (import.meta.main) {
  const path = new URL("../.env.example", import.meta.url);
  await Deno.writeTextFile(path, envExample());
  console.error(`wrote ${path.pathname}`);
}
