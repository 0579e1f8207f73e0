/**
 * `kickmon capture [--duration 60s] [--out DIR] [--streamer NAME…]`: records
 * what Kick actually sends, for `--duration` or until Ctrl-C (SIGINT) or
 * SIGTERM, as a capture directory (`src/kick/capture.ts`: fixture files in
 * the format of `tests/fixtures/` plus `manifest.json`). The simulator
 * replays such a directory (`deno task demo --replay DIR`,
 * `dev/simulator/replay.ts`), so a capture from an operator becomes a
 * regression test.
 *
 * What it does, the light path of the monitor's signals:
 * 1. reads the streamer list (read-only: one `SELECT`; it never writes a
 *    status), the active rows, or those named by `--streamer` (a name not
 *    in the list is looked up by slug);
 * 2. one reconciliation pass of the API calls kickmon makes (§4.4, §4.5,
 *    docs/kick-protocol.md): the token (§4.1), `GET /channels?slug=` for rows
 *    without a broadcaster user id, `GET /channels?broadcaster_user_id=`, `GET
 *    /livestreams` for live streamers without a channel id, and the unofficial
 *    lookup (§2) when `KICK_UNOFFICIAL_CHANNEL_LOOKUP` is on;
 * 3. subscribes to the streamers' `channel.{id}` (§1.2) and records every
 *    frame the sockets receive, verbatim (protocol frames included).
 *
 * Secrets: request headers and bodies are never recorded, token fields of
 * answers are replaced (`kick/http/exchange.ts`), and every configured secret
 * and token seen is scrubbed from every file written.
 *
 * @module
 */
import type { Command } from "commander";
import type { Config } from "../config/config.ts";
import { secretValues } from "../config/config.ts";
import type { StreamerRecord } from "../core/types.ts";
import { listStreamers } from "../db/streamers_repo.ts";
import { type CaptureManifest, CaptureRecorder } from "../kick/capture.ts";
import { channelName } from "../kick/pusher/frames.ts";
import { PusherSubscriber } from "../kick/pusher/subscriber.ts";
import { describeError } from "../log/errors.ts";
import { redactSecrets } from "../log/logging.ts";
import { createKickApi } from "../service/official.ts";
import { pusherSubscriberOptions } from "../service/pusher_options.ts";
import { statePaths } from "../service/state_paths.ts";
import { abortableSleep } from "../util/abortable_sleep.ts";
import { VERSION } from "../version.ts";
import { CliError, EXIT } from "./errors.ts";
import { loadOperatorConfig, type SetExit, withDatabase } from "./operator.ts";

/** Default `--duration`, ms (60 s). */
export const DEFAULT_CAPTURE_MS = 60_000;

/**
 * Parses a `--duration`: a number with `ms`, `s`, `m` or `h` (no unit: seconds).
 *
 * @param text e.g. `60s`, `1500ms`, `2m`.
 * @returns the duration in ms.
 * @throws {CliError} (exit 2) when it is not a positive duration.
 * @example
 * ```ts
 * parseDuration("90s"); // 90000
 * ```
 */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  const ms = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"]! : NaN;
  if (!(ms > 0) || !Number.isFinite(ms)) {
    throw new CliError(
      `--duration: expected a positive duration such as 60s, 1500ms or 2m, got '${text}'`,
      EXIT.usage,
    );
  }
  return Math.round(ms);
}

/** Options of {@linkcode runCapture}. */
export interface CaptureOptions {
  /** How long to record, ms. */
  readonly durationMs: number;
  /** The capture directory (must not exist, or be empty). */
  readonly out: string;
  /** Streamer names (slugs); empty: every active row of the list. */
  readonly streamers: readonly string[];
  /** Ends the capture early (Ctrl-C); `reason` goes into the manifest as `ended_because`. */
  readonly signal?: AbortSignal;
  /** The configuration (default: the environment's, Kick credentials required). */
  readonly config?: Config;
  /** Progress lines (default: stderr). */
  readonly progress?: (line: string) => void;
}

interface Target {
  username: string | null;
  kickUserId: number | null;
  kickChannelId: number | null;
}

/** The list's active rows, or those named (a name not in the list is a slug to look up). */
function targetsOf(rows: readonly StreamerRecord[] | null, names: readonly string[]): Target[] {
  const pick = (r: StreamerRecord): Target => ({
    username: r.username,
    kickUserId: r.kickUserId,
    kickChannelId: r.kickChannelId,
  });
  if (!names.length) return (rows ?? []).filter((r) => r.isActive).map(pick);
  return names.map((name) => {
    const r = (rows ?? []).find((x) => x.username?.toLowerCase() === name.toLowerCase());
    return r ? pick(r) : { username: name, kickUserId: null, kickChannelId: null };
  });
}

async function ensureEmptyDir(dir: string): Promise<void> {
  try {
    for await (const _ of Deno.readDir(dir)) {
      throw new CliError(
        `--out ${dir}: the directory is not empty; name a new one`,
        EXIT.usage,
      );
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * The API calls of one reconciliation pass (see the module doc), filling in what they say of
 * each target. Never throws: a failed call is a note.
 */
async function apiPass(
  api: ReturnType<typeof createKickApi>["api"],
  config: Config,
  targets: Target[],
  notes: string[],
): Promise<void> {
  const step = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      notes.push(`${what}: ${redactSecrets(describeError(e))}`);
    }
  };
  const bySlug = targets.filter((t) => t.kickUserId === null && t.username);
  if (bySlug.length) {
    await step("GET /channels?slug=", async () => {
      for (const c of await api.getChannels({ slugs: bySlug.map((t) => t.username!) })) {
        const t = bySlug.find((x) => x.username!.toLowerCase() === c.slug.toLowerCase());
        if (t) t.kickUserId = c.broadcasterUserId;
      }
    });
  }
  const byUser = targets.filter((t) => t.kickUserId !== null);
  if (!byUser.length) return;
  let live: number[] = [];
  await step("GET /channels", async () => {
    const channels = await api.getChannels({
      broadcasterUserIds: byUser.map((t) => t.kickUserId!),
    });
    live = channels.filter((c) => c.isLive).map((c) => c.broadcasterUserId);
    for (const c of channels) {
      const t = byUser.find((x) => x.kickUserId === c.broadcasterUserId);
      if (t && !t.username) t.username = c.slug;
    }
  });
  const needChannel = live.filter((id) =>
    targets.find((t) => t.kickUserId === id)?.kickChannelId === null
  );
  if (needChannel.length) {
    await step("GET /livestreams", async () => {
      for (const l of await api.getLivestreams(needChannel)) {
        const t = targets.find((x) => x.kickUserId === l.broadcasterUserId);
        if (t) t.kickChannelId = l.channelId;
      }
    });
  }
  if (config.kick.unofficialChannelLookup) {
    for (const t of targets.filter((x) => x.kickChannelId === null && x.username)) {
      await step(`unofficial lookup of ${t.username}`, async () => {
        t.kickChannelId = (await api.getUnofficialChannel(t.username!)).channelId;
      });
    }
  }
}

/**
 * Records a capture (see the module doc) and writes it to `opts.out`.
 *
 * @returns the manifest written.
 * @throws {CliError} (exit 2) when `out` is not empty; `ConfigError`; `DatabaseError` when the
 *   list cannot be read and no `--streamer` was named.
 * @example
 * ```ts
 * const ac = new AbortController();
 * Deno.addSignalListener("SIGINT", () => ac.abort("SIGINT"));
 * const m = await runCapture({ durationMs: 60_000, out: "capture", streamers: [], signal: ac.signal });
 * console.log(m.files.length);
 * ```
 */
export async function runCapture(opts: CaptureOptions): Promise<CaptureManifest> {
  const progress = opts.progress ?? ((line: string) => console.error(line));
  const config = opts.config ?? loadOperatorConfig(true);
  await ensureEmptyDir(opts.out);
  const notes: string[] = [];
  const startedAt = Date.now();
  const rec = new CaptureRecorder({ source: `kickmon capture ${VERSION}`, startedAt });
  rec.addSecrets(secretValues(config));

  let rows: StreamerRecord[] | null = null;
  try {
    // Read-only: the list and what kickmon knows of each row; no status is written.
    rows = await withDatabase((sql) => listStreamers(sql), config);
  } catch (e) {
    if (!opts.streamers.length) throw e;
    notes.push(`streamer list not read (${redactSecrets(describeError(e))}); names looked up`);
  }
  const targets = targetsOf(rows, opts.streamers);

  const { api, tokens } = createKickApi(config, { onExchange: (e) => rec.addExchange(e) });
  const subscriber = new PusherSubscriber(pusherSubscriberOptions(config), {
    onEvent: () => {},
    onRawFrame: (shard, text, at) => rec.addFrame(text, at, `${subscriber.url}, shard ${shard}`),
    onNotPermitted: (_shard, e) => notes.push(`Pusher: ${e.message}`),
  });
  let channels: string[] = [];
  try {
    await apiPass(api, config, targets, notes);
    const ids = targets.map((t) => t.kickChannelId).filter((id): id is number => id !== null);
    channels = [...new Set(ids)].map(channelName);
    for (const t of targets.filter((x) => x.kickChannelId === null)) {
      notes.push(`${t.username ?? `user ${t.kickUserId}`}: no channel id known, not subscribed`);
    }
    subscriber.setChannels(ids);
    subscriber.start();
    progress(
      `kickmon capture: ${targets.length} streamer(s), ${channels.length} channel(s) on ` +
        `${subscriber.url}, for ${opts.durationMs / 1000} s into ${opts.out} (Ctrl-C ends it)`,
    );
    await abortableSleep(opts.durationMs, opts.signal ?? new AbortController().signal);
  } finally {
    await subscriber.stop();
    api.close();
    tokens.close();
  }
  if (channels.length && rec.frames === 0) {
    notes.push(
      `Pusher: no frame received from ${subscriber.url} ('kickmon doctor' checks the connection)`,
    );
  }
  if (rec.dropped) notes.push(`${rec.dropped} frame(s) or answer(s) over the file limit not kept`);
  const reason = opts.signal?.aborted ? String(opts.signal.reason ?? "aborted") : "duration";
  const manifest = await rec.write(opts.out, {
    kickmon_version: VERSION,
    ended_at: new Date().toISOString(),
    ended_because: reason,
    pusher: { url: subscriber.url, key: config.kick.pusher.key },
    api_url: config.kick.apiUrl,
    oauth_url: config.kick.oauthUrl,
    streamers: targets.map((t) => ({
      username: t.username,
      kick_user_id: t.kickUserId,
      kick_channel_id: t.kickChannelId,
    })),
    channels,
    notes,
  });
  for (const n of notes) progress(`kickmon capture: note: ${n}`);
  return manifest;
}

/**
 * Registers `kickmon capture` on the program.
 *
 * @param program the root command.
 * @param setExit receives 0 once the capture is written.
 * @example
 * ```ts
 * registerCaptureCommand(program, (c) => (code = c));
 * ```
 */
export function registerCaptureCommand(program: Command, setExit: SetExit): void {
  program.command("capture")
    .description(
      "record Kick's raw Pusher frames and API answers for the listed streamers as fixture files",
    )
    .option("--duration <time>", "how long to record (60s, 1500ms, 2m); Ctrl-C ends it sooner")
    .option(
      "--out <dir>",
      "capture directory, new or empty (default: <state directory>/captures/capture-<time>, " +
        "which the binary may write)",
    )
    .option("--streamer <name...>", "only these streamers (default: every active row)")
    .action(async (opts: { duration?: string; out?: string; streamer?: string[] }) => {
      const durationMs = opts.duration ? parseDuration(opts.duration) : DEFAULT_CAPTURE_MS;
      const config = loadOperatorConfig(true);
      const out = opts.out ??
        `${statePaths(config.system.stateDirectory).captures}/capture-${
          new Date().toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "")
        }`;
      const ac = new AbortController();
      const listeners = (["SIGINT", "SIGTERM"] as const).map((sig) => {
        const fn = () => ac.abort(sig);
        Deno.addSignalListener(sig, fn);
        return () => Deno.removeSignalListener(sig, fn);
      });
      try {
        const m = await runCapture({
          durationMs,
          out,
          streamers: opts.streamer ?? [],
          signal: ac.signal,
          config,
        });
        const frames = m.files.filter((f) => f.source === "pusher").length;
        console.log(
          `kickmon capture: ${frames} frame(s), ${m.files.length - frames} API answer(s) in ` +
            `${out} (manifest.json), ended by ${m.ended_because}`,
        );
        setExit(EXIT.ok);
      } finally {
        for (const remove of listeners) remove();
      }
    });
}
