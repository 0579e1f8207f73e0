/**
 * `kickmon streamers set-channel-id`: the operator-provided Pusher channel id,
 * the last of kickmon's channel-id sources (the database, Pusher payloads, v1
 * `/livestreams` while it answers, the unofficial lookup when enabled, then
 * this; issue 13 item 4). For a streamer whose id nothing else gives, e.g.
 * once Kick removes v1 `/livestreams` (docs/kick-protocol.md §4.5, §10.6).
 *
 * | command | what it does | exit codes |
 * |---|---|---|
 * | `kickmon streamers set-channel-id <username> <channel_id>` | stores the channel id as operator-provided | 0, 1 no such streamer / id taken, 2 usage |
 * | `kickmon streamers set-channel-id <username> --clear` | removes it (kickmon learns one again) | 0, 1 no such streamer, 2 usage |
 *
 * The SQL is `db/channel_ids.ts`. A running kickmon that LISTENs (list
 * trigger installed) subscribes to `channel.{id}` at once; one that polls
 * picks it up at its next full resync (`MONITORING_RESYNC_INTERVAL`, or
 * `systemctl reload kickmon`).
 *
 * @module
 */
import type { Command } from "commander";
import { setOperatorChannelId } from "../db/channel_ids.ts";
import { DatabaseError } from "../db/client.ts";
import { CliError, EXIT } from "./errors.ts";
import { loadOperatorConfig, type SetExit, withDatabase } from "./operator.ts";

/** Kick channel ids are positive integers well below 2^53 (§2). */
const CHANNEL_ID_RE = /^[1-9][0-9]{0,14}$/;

/**
 * Parses the `<channel_id>` argument.
 *
 * @throws {CliError} exit 2 when it is not a positive integer.
 *
 * @example
 * ```ts
 * parseChannelId("2515504"); // 2515504
 * ```
 */
export function parseChannelId(text: string): number {
  const t = text.trim().replace(/^channel\./, "");
  if (!CHANNEL_ID_RE.test(t)) {
    throw new CliError(
      `"${text}" is not a Kick channel id (a positive integer, as in Pusher's channel.{id})`,
      EXIT.usage,
    );
  }
  return Number(t);
}

/**
 * Registers `set-channel-id` on the `streamers` group (created when absent).
 *
 * @param program the `kickmon` commander program.
 * @param setExit receives the command's exit code.
 *
 * @example
 * ```ts
 * registerStreamerCommands(program, setExit);
 * registerChannelIdCommand(program, setExit);
 * await program.parseAsync(["streamers", "set-channel-id", "bossmanjack", "2515504"], { from: "user" });
 * ```
 */
export function registerChannelIdCommand(program: Command, setExit: SetExit): void {
  const streamers = program.commands.find((c) => c.name() === "streamers") ??
    program.command("streamers").description("the streamer list");
  streamers.command("set-channel-id")
    .description(
      "give <username>'s Pusher channel id (kept as operator-provided; kickmon never replaces it)",
    )
    .argument("<username>", "username as listed")
    .argument("[channel_id]", "Kick channel id (channel.{id} on Pusher; not the user id)")
    .option("--clear", "remove the operator-provided channel id")
    .action(async (username: string, channelIdText: string | undefined, opts: {
      clear?: boolean;
    }) => {
      if (Boolean(opts.clear) === (channelIdText !== undefined)) {
        throw new CliError("give either <channel_id> or --clear", EXIT.usage);
      }
      const channelId = channelIdText === undefined ? null : parseChannelId(channelIdText);
      const config = loadOperatorConfig(false);
      const change = await withDatabase(async (sql) => {
        try {
          return await setOperatorChannelId(sql, username.trim(), channelId);
        } catch (e) {
          if (e instanceof DatabaseError && e.code === "23505") {
            throw new CliError(
              `channel id ${channelId} already belongs to another streamer ('kickmon streamers list' shows which)`,
              EXIT.failure,
              { cause: e },
            );
          }
          if (e instanceof DatabaseError && e.code === "42703") {
            throw new CliError(
              `${e.message}: run 'kickmon db migrate' first (it adds kick_channel_id_source)`,
              EXIT.usage,
              { cause: e },
            );
          }
          throw e;
        }
      }, config);
      if (!change) throw new CliError(`no streamer named "${username}" in the list`, EXIT.failure);
      const was = change.previous === null
        ? "none"
        : `${change.previous}${
          change.previousSource === "operator" ? " (operator)" : " (learned)"
        }`;
      console.log(
        change.channelId === null
          ? `cleared the channel id of ${username} (#${change.streamerId}; was ${was})`
          : `set the channel id of ${username} (#${change.streamerId}) to ${change.channelId} ` +
            `(operator-provided; was ${was})`,
      );
      setExit(EXIT.ok);
    });
}
