/**
 * `kickmon doctor [--streamer NAME] [--json]`: the day-one check an operator
 * runs with the real env file. Every check is one line — `ok | warn | fail`,
 * what was measured (latency in ms, HTTP status, the key fact) and, on
 * warn/fail, the remedy in one sentence. Exit 0 when nothing failed, 1
 * otherwise. No secret is printed: every configured secret and the access
 * token are masked in the output, whatever a message contains.
 *
 * Checks, in order: configuration; database reachable, schema current,
 * privileges (from `databaseHealth`, db_commands.ts); OAuth client credentials
 * (token, `expires_in`, scopes when introspection says); `GET /channels` for
 * the streamer; `GET /livestreams` (v1); `GET /users/livestreams`; the
 * webhook public key; the unofficial lookup (when enabled); Pusher connect,
 * subscribe and ping; the webhook listener (when webhooks are enabled).
 *
 * The checks live in `doctor/`, one module per concept: the report's shape
 * and masking (`check.ts`), configuration and database (`database_checks.ts`),
 * Kick's OAuth and API (`api_checks.ts`), webhooks (`webhook_checks.ts`) and
 * Pusher (`pusher_checks.ts`). This module runs them in order and registers
 * the command.
 *
 * @module
 */
import type { Command } from "commander";
import { readEnvironment, secretValues } from "../config/config.ts";
import { createKickApi } from "../service/official.ts";
import type { SetExit } from "./operator.ts";
import { EXIT } from "./errors.ts";
import {
  checkChannels,
  checkLivestreams,
  checkOAuth,
  checkUnofficial,
  checkUsersLivestreams,
} from "./doctor/api_checks.ts";
import {
  type CheckResult,
  type CheckStatus,
  envSecrets,
  formatCheck,
  type Found,
  mask,
} from "./doctor/check.ts";
import { checkConfig, checkDatabase } from "./doctor/database_checks.ts";
import { checkPusher } from "./doctor/pusher_checks.ts";
import { checkPublicKey, checkWebhookListener } from "./doctor/webhook_checks.ts";

export { type CheckResult, type CheckStatus, formatCheck } from "./doctor/check.ts";

/** Options of {@linkcode runDoctor}. */
export interface DoctorOptions {
  /** Channel slug to check; default: the first active row of the list. */
  readonly streamer?: string;
  /** Timeout of each network step (HTTP request, Pusher frame), ms. Default 10 000. */
  readonly timeoutMs?: number;
  /** The environment to read (default: the process environment). */
  readonly env?: Record<string, string | undefined>;
}

/**
 * Runs every check in order. Never throws for a failing check: each becomes
 * a `fail` line. Secrets (configured and the access token) are masked in
 * every `detail` and `remedy`.
 *
 * @param opts streamer slug, per-step timeout in ms, environment.
 * @returns one result per check, in order.
 *
 * @example
 * ```ts
 * const checks = await runDoctor({ streamer: "bossmanjack" });
 * const failed = checks.some((c) => c.status === "fail");
 * ```
 */
export async function runDoctor(opts: DoctorOptions = {}): Promise<CheckResult[]> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const env = opts.env ?? readEnvironment();
  const { check, config } = checkConfig(env);
  const checks: CheckResult[] = [check];
  if (!config) return mask(checks, envSecrets(env));
  const found: Found = {
    rows: null,
    slug: null,
    userId: null,
    channelId: null,
    channelIdFrom: null,
    token: null,
  };
  checks.push(...await checkDatabase(config, found));

  const wanted = opts.streamer?.trim().replace(/^https?:\/\/(www\.)?kick\.com\//i, "")
    .replace(/\/+$/, "");
  const active = (found.rows ?? []).filter((r) => r.isActive);
  const row = wanted
    ? (found.rows ?? []).find((r) => r.username?.toLowerCase() === wanted.toLowerCase())
    : active.find((r) => r.username);
  found.slug = wanted || row?.username || null;
  if (row?.kickChannelId) {
    found.channelId = row.kickChannelId;
    found.channelIdFrom = "the database";
  } else if (!wanted) {
    const withId = active.find((r) => r.kickChannelId);
    if (withId?.kickChannelId) {
      found.channelId = withId.kickChannelId;
      found.channelIdFrom = `the database (${withId.username ?? `#${withId.id}`})`;
    }
  }

  // One attempt per request: a diagnosis reports what happens, it does not retry it away.
  const { api, tokens } = createKickApi(config, { oneShot: true, timeoutMs });
  try {
    checks.push(await checkOAuth(config, tokens, found, timeoutMs));
    checks.push(await checkChannels(api, found));
    checks.push(await checkLivestreams(config, api, found));
    checks.push(await checkUsersLivestreams(config, found, timeoutMs));
    checks.push(await checkPublicKey(config, api, found));
    checks.push(await checkUnofficial(config, api, found));
    checks.push(...await checkPusher(config, found, timeoutMs));
    checks.push(await checkWebhookListener(config, timeoutMs));
  } finally {
    api.close();
    tokens.close();
  }
  return mask(checks, [...secretValues(config), ...(found.token ? [found.token] : [])]);
}

/**
 * Registers `kickmon doctor` on the program.
 *
 * @param program the root command.
 * @param setExit receives 0 when no check failed, 1 otherwise.
 *
 * @example
 * ```ts
 * registerDoctorCommand(program, (c) => (code = c));
 * ```
 */
export function registerDoctorCommand(program: Command, setExit: SetExit): void {
  program.command("doctor")
    .description("check configuration, database, Kick's API, Pusher and webhooks, one line each")
    .option("--streamer <name>", "the streamer to check (default: the first active row)")
    .option("--json", "print JSON")
    .action(async (opts: { streamer?: string; json?: boolean }) => {
      const checks = await runDoctor({ streamer: opts.streamer });
      const failed = checks.some((c) => c.status === "fail");
      if (opts.json) {
        console.log(JSON.stringify({ ok: !failed, checks }, null, 2));
      } else {
        for (const c of checks) console.log(formatCheck(c));
        const n = (s: CheckStatus) => checks.filter((c) => c.status === s).length;
        console.log(`${n("ok")} ok, ${n("warn")} warn, ${n("fail")} fail`);
      }
      setExit(failed ? EXIT.failure : EXIT.ok);
    });
}
