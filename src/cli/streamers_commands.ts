/**
 * `kickmon streamers`: the streamer list in the user's database, and what
 * Kick reports about a streamer.
 *
 * | command | what it does | exit codes |
 * |---|---|---|
 * | `kickmon streamers list [--json]` | the list with each streamer's status, ids and resolve problem | 0, 1 database unreachable |
 * | `kickmon streamers add <username>` | resolves the channel through the official API, then inserts it | 0, 1 unknown channel / already listed |
 * | `kickmon streamers remove <username>` | deletes the row (and its history) | 0, 1 no such streamer |
 * | `kickmon streamers test <username> [--json]` | prints what Kick reports right now | 0, 1 unknown channel |
 *
 * Lookups go through the official API (`GET /channels?slug=`, then
 * `GET /livestreams` for a live channel's id: docs/kick-protocol.md §4).
 *
 * @module
 */
import type { Command } from "commander";
import type { Config } from "../config/config.ts";
import { DatabaseError } from "../db/client.ts";
import { deleteStreamers, insertStreamer, listStreamerViews } from "../db/streamers_repo.ts";
import { KickApiError } from "../kick/official/api_error.ts";
import { InvalidCredentialsError, OAuthError } from "../kick/official/oauth_error.ts";
import { describeError } from "../log/errors.ts";
import { createKickApi } from "../service/official.ts";
import { CliError, EXIT } from "./errors.ts";
import { loadOperatorConfig, type SetExit, withDatabase } from "./operator.ts";

const SLUG_RE = /^[A-Za-z0-9_-]{1,64}$/;

function checkSlug(username: string): string {
  const slug = username.trim().replace(/^https?:\/\/(www\.)?kick\.com\//i, "").replace(/\/+$/, "");
  if (!SLUG_RE.test(slug)) {
    throw new CliError(
      `"${username}" is not a Kick username (letters, digits, '_' and '-')`,
      EXIT.usage,
    );
  }
  return slug;
}

/**
 * What Kick reports about one streamer now (`kickmon streamers test --json`).
 *
 * @example
 * ```ts
 * const r: StreamerReport = {
 *   slug: "bossmanjack", userId: 2570626, isLive: true, channelId: 2515504,
 *   title: "slots", startedAt: "2025-01-01T00:00:00.000Z",
 * };
 * ```
 */
export interface StreamerReport {
  /** Channel slug as Kick spells it. */
  readonly slug: string;
  /** `broadcaster_user_id`. */
  readonly userId: number;
  /** `stream.is_live`. */
  readonly isLive: boolean;
  /** Pusher channel id; only known while live (`GET /livestreams`). */
  readonly channelId: number | null;
  /** Stream title, when live. */
  readonly title: string | null;
  /** ISO 8601, when live. */
  readonly startedAt: string | null;
}

function kickError(e: unknown, doing: string): never {
  if (e instanceof CliError) throw e;
  if (e instanceof InvalidCredentialsError) {
    throw new CliError(
      "Kick rejected KICK_CLIENT_ID/KICK_CLIENT_SECRET (invalid_client): check the app credentials",
      EXIT.usage,
      { cause: e },
    );
  }
  if (e instanceof KickApiError || e instanceof OAuthError) {
    throw new CliError(`${doing}: ${e.message}`, EXIT.failure, { cause: e });
  }
  throw new CliError(`${doing}: ${describeError(e)}`, EXIT.failure, { cause: e });
}

/**
 * Looks a streamer up through the official API: `GET /channels?slug=` and,
 * when live, `GET /livestreams` for the channel id.
 *
 * @returns the report, or `null` when Kick has no such channel.
 * @throws {CliError} exit 2 for rejected credentials, 1 for other API failures.
 *
 * @example
 * ```ts
 * const r = await lookupStreamer(config, "bossmanjack");
 * console.log(r?.isLive, r?.channelId);
 * ```
 */
export async function lookupStreamer(
  config: Config,
  username: string,
): Promise<StreamerReport | null> {
  const slug = checkSlug(username);
  const { api, tokens } = createKickApi(config);
  try {
    let channels;
    try {
      channels = await api.getChannels({ slugs: [slug] });
    } catch (e) {
      kickError(e, `asking Kick about "${slug}"`);
    }
    const c = channels.find((x) => x.slug.toLowerCase() === slug.toLowerCase()) ?? channels[0];
    if (!c) return null;
    let channelId: number | null = null;
    let title: string | null = c.streamTitle ?? null;
    let startedAt: string | null = c.startTime ? new Date(c.startTime).toISOString() : null;
    if (c.isLive) {
      try {
        const [l] = (await api.getLivestreams([c.broadcasterUserId])).filter((x) =>
          x.broadcasterUserId === c.broadcasterUserId
        );
        if (l) {
          channelId = l.channelId;
          title = l.title ?? title;
          startedAt = l.startedAt ? new Date(l.startedAt).toISOString() : startedAt;
        }
      } catch (e) {
        console.error(`kickmon: warning: could not read the live stream: ${describeError(e)}`);
      }
    }
    return {
      slug: c.slug,
      userId: c.broadcasterUserId,
      isLive: c.isLive,
      channelId,
      title,
      startedAt,
    };
  } finally {
    api.close();
    tokens.close();
  }
}

/**
 * Registers the `streamers` group (`list`, `add`, `remove`, `test`) on the program.
 *
 * @param program the `kickmon` commander program.
 * @param setExit receives each command's exit code.
 *
 * @example
 * ```ts
 * let code = 0;
 * registerStreamerCommands(program, (c) => (code = c));
 * await program.parseAsync(["streamers", "list"], { from: "user" });
 * ```
 */
export function registerStreamerCommands(program: Command, setExit: SetExit): void {
  const streamers = program.command("streamers").description("the streamer list");
  streamers.command("list")
    .description("list streamers and their status")
    .option("--json", "print JSON")
    .action(async (opts: { json?: boolean }) => {
      const rows = await withDatabase((sql) => listStreamerViews(sql));
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      const header = [
        "ID",
        "USERNAME",
        "USER_ID",
        "CHANNEL_ID",
        "STATUS",
        "ACTIVE",
        "LAST_CHANGE",
        "PROBLEM",
      ];
      const lines = rows.map((r) => [
        String(r.id),
        r.username ?? "-",
        r.kickUserId?.toString() ?? "-",
        r.kickChannelId?.toString() ?? "-",
        r.status,
        r.isActive ? "yes" : "no",
        r.lastStatusUpdate ?? "-",
        r.resolveError ?? "",
      ]);
      const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
      for (const l of [header, ...lines]) {
        console.log(l.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
      }
      console.log(`${rows.length} streamers`);
    });

  streamers.command("add")
    .description("resolve <username> through Kick's official API and add it to the list")
    .argument("<username>", "Kick channel slug (kick.com/<username>)")
    .action(async (username: string) => {
      const config = loadOperatorConfig(true);
      const r = await lookupStreamer(config, username);
      if (!r) {
        throw new CliError(`Kick has no channel "${checkSlug(username)}"`, EXIT.failure);
      }
      const id = await withDatabase(async (sql) => {
        try {
          return await insertStreamer(sql, {
            username: r.slug,
            kickUserId: r.userId,
            kickChannelId: r.channelId,
          });
        } catch (e) {
          if (e instanceof DatabaseError && e.code === "23505") {
            const rows = await listStreamerViews(sql);
            const same = rows.find((s) =>
              s.username?.toLowerCase() === r.slug.toLowerCase() || s.kickUserId === r.userId ||
              (r.channelId !== null && s.kickChannelId === r.channelId)
            );
            throw new CliError(
              `${r.slug} is already in the list${
                same
                  ? ` (#${same.id} ${same.username ?? "-"}, user id ${same.kickUserId ?? "-"})`
                  : ""
              }`,
              EXIT.failure,
              { cause: e },
            );
          }
          throw e;
        }
      }, config);
      console.log(
        `added ${r.slug} as #${id}: user id ${r.userId}, ${
          r.channelId !== null
            ? `channel id ${r.channelId} (live)`
            : `${r.isLive ? "live" : "offline"}; channel id resolved later`
        }`,
      );
      setExit(EXIT.ok);
    });

  streamers.command("remove")
    .description("remove <username> from the list (its status history goes with it)")
    .argument("<username>", "username as listed")
    .action(async (username: string) => {
      const config = loadOperatorConfig(false);
      const slug = checkSlug(username);
      const removed = await withDatabase((sql) => deleteStreamers(sql, { username: slug }), config);
      if (!removed) throw new CliError(`no streamer named "${slug}" in the list`, EXIT.failure);
      console.log(`removed ${slug}`);
      setExit(EXIT.ok);
    });

  streamers.command("test")
    .description("show what Kick reports for <username> right now (user id, live, channel id)")
    .argument("<username>", "Kick channel slug")
    .option("--json", "print JSON")
    .action(async (username: string, opts: { json?: boolean }) => {
      const config = loadOperatorConfig(true);
      const r = await lookupStreamer(config, username);
      if (!r) throw new CliError(`Kick has no channel "${checkSlug(username)}"`, EXIT.failure);
      if (opts.json) {
        console.log(JSON.stringify(r, null, 2));
      } else {
        console.log(`slug:        ${r.slug}`);
        console.log(`user id:     ${r.userId}`);
        console.log(`is_live:     ${r.isLive}`);
        console.log(
          `channel id:  ${
            r.channelId ?? (r.isLive ? "unknown" : "unknown (only reported while live)")
          }`,
        );
        if (r.title) console.log(`title:       ${r.title}`);
        if (r.startedAt) console.log(`started at:  ${r.startedAt}`);
      }
      setExit(EXIT.ok);
    });
}
