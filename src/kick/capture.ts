/**
 * The capture directory `kickmon capture` writes and the simulator replays
 * (`dev/simulator/replay.ts`): one fixture file per raw Pusher frame and per
 * API answer, in the format of `tests/fixtures/` (docs/kick-protocol.md §8:
 * `source`, `captured_at`, the verbatim frame text or body), plus a
 * `manifest.json` listing them in the order they happened.
 *
 * Shapes (all JSON, two-space indented):
 * - a frame, `streamer-is-live-1.json`, `pusher-connection-established-1.json`, …:
 *   `{"source", "captured_at", "offset_ms", "channel", "event", "raw_frame", "pusher_frame"}`;
 *   `raw_frame` is the text exactly as received (§3), `pusher_frame` its parse, the shape of
 *   the older fixtures' `pusher_frame`; `channel` is null for connection-level frames.
 * - an answer, `api-channels-1.json`, `api-oauth-token-1.json`, …:
 *   `{"source", "captured_at", "offset_ms", "endpoint", "request": {"method", "url"}, "status",
 *   "headers", "raw_body", "api_response"}`; `raw_body` is the body as read, token values
 *   replaced (`http/exchange.ts`), `api_response` its parse (null when not JSON). Unlike the
 *   older `api-*.json` fixtures, which hold one `data[]` element, this is the whole body.
 * - `manifest.json`: {@linkcode CaptureManifest}.
 *
 * Secrets: every value given to {@linkcode CaptureRecorder} as a secret (the configured
 * ones, the tokens the transport took out) is replaced by `[REDACTED]` in every file before
 * it is written, a second line behind the transport's redaction.
 *
 * @module
 */

import type { RawExchange } from "./http/exchange.ts";

/** Version of the capture format, in `manifest.json`. */
export const CAPTURE_FORMAT = 1;

/**
 * One file of a capture as listed in its manifest.
 *
 * @example
 * ```ts
 * import type { CaptureFileEntry } from "./capture.ts";
 * const frames = (files: CaptureFileEntry[]) => files.filter((f) => f.source === "pusher");
 * ```
 */
export interface CaptureFileEntry {
  /** File name in the capture directory. */
  readonly file: string;
  /** `pusher` (a frame) or `api` (an answer of OAuth or the API). */
  readonly source: "pusher" | "api";
  /** When it was received (a frame) or sent (a request), ISO 8601. */
  readonly at: string;
  /** ms after the capture started. */
  readonly offset_ms: number;
  /** The frame's channel (null: connection level); frames only. */
  readonly channel?: string | null;
  /** The frame's event name; frames only. */
  readonly event?: string | null;
  /** Endpoint label, e.g. `GET /channels`; answers only. */
  readonly endpoint?: string;
  /** HTTP status; answers only. */
  readonly status?: number;
}

/**
 * `manifest.json` of a capture directory.
 *
 * @example
 * ```ts
 * import type { CaptureManifest } from "./capture.ts";
 * const seconds = (m: CaptureManifest) => (Date.parse(m.ended_at) - Date.parse(m.started_at)) / 1000;
 * ```
 */
export interface CaptureManifest {
  /** {@linkcode CAPTURE_FORMAT}. */
  readonly format: number;
  /** kickmon's version that captured. */
  readonly kickmon_version: string;
  /** ISO 8601. */
  readonly started_at: string;
  /** ISO 8601. */
  readonly ended_at: string;
  /** `duration`, `SIGINT`, `SIGTERM`. */
  readonly ended_because: string;
  /** The Pusher WebSocket endpoint, e.g. `wss://ws-us2.pusher.com:443`, and the app key (public, §1.1). */
  readonly pusher: { readonly url: string; readonly key: string };
  /** `KICK_API_URL`. */
  readonly api_url: string;
  /** `KICK_OAUTH_URL`. */
  readonly oauth_url: string;
  /** The streamers captured (what the list and the API said of them). */
  readonly streamers: ReadonlyArray<{
    readonly username: string | null;
    readonly kick_user_id: number | null;
    readonly kick_channel_id: number | null;
  }>;
  /** The Pusher channels subscribed, e.g. `channel.2587387`. */
  readonly channels: readonly string[];
  /** What was taken out and how (one sentence). */
  readonly redaction: string;
  /** Problems met while capturing (an API call that failed, …), one line each. */
  readonly notes: readonly string[];
  /** Every file, in the order it happened. */
  readonly files: readonly CaptureFileEntry[];
}

/**
 * The manifest sentence on redaction.
 *
 * @example
 * ```ts
 * import { REDACTION_NOTE } from "./capture.ts";
 * console.log(REDACTION_NOTE.length > 0);
 * ```
 */
export const REDACTION_NOTE =
  "Request headers (Authorization) and request bodies (the OAuth form with client_secret) are " +
  "not recorded; token fields of answers (access_token, refresh_token, id_token, " +
  "client_secret) are replaced by REDACTED-BY-KICKMON-CAPTURE; every configured secret and " +
  "every token seen is replaced by [REDACTED] wherever else it appears.";

/**
 * Most files one capture keeps (frames and answers); later ones are counted, not kept. A status
 * channel carries a few frames an hour, so only a capture of very many streamers for a long time
 * reaches it.
 *
 * @example
 * ```ts
 * import { MAX_CAPTURE_FILES } from "./capture.ts";
 * console.log(MAX_CAPTURE_FILES); // 100000
 * ```
 */
export const MAX_CAPTURE_FILES = 100_000;

interface Pending {
  readonly entry: CaptureFileEntry;
  readonly content: Record<string, unknown>;
}

/** What {@linkcode CaptureRecorder.write} needs besides the recorded files. */
export type CaptureRun = Omit<CaptureManifest, "format" | "files" | "redaction" | "started_at">;

/**
 * The base of a frame's file name: `App\Events\StreamerIsLive` → `streamer-is-live`,
 * `pusher:connection_established` → `pusher-connection-established`.
 *
 * @param event the frame's event name, or null when it had none.
 * @returns a lower-case, dash-separated name.
 *
 * @example
 * ```ts
 * import { frameFileBase } from "./capture.ts";
 * frameFileBase("App\\Events\\StopStreamBroadcast"); // "stop-stream-broadcast"
 * frameFileBase("pusher_internal:subscription_succeeded"); // "pusher-subscription-succeeded"
 * ```
 */
export function frameFileBase(event: string | null): string {
  if (!event) return "pusher-unparsed";
  const protocol = /^pusher(_internal)?:/.test(event);
  const name = event.replace(/^pusher(_internal)?:/, "").replace(/^.*\\/, "")
    .replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase().replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return `${protocol ? "pusher-" : ""}${name || "event"}`;
}

/**
 * The base of an answer's file name: `GET /channels` → `api-channels`, `POST /oauth/token` →
 * `api-oauth-token`, `GET unofficial /channels/{slug}` → `api-unofficial-channels-slug`.
 *
 * @param endpoint the transport's endpoint label.
 * @returns a lower-case, dash-separated name starting with `api-`.
 *
 * @example
 * ```ts
 * import { apiFileBase } from "./capture.ts";
 * apiFileBase("GET /livestreams"); // "api-livestreams"
 * ```
 */
export function apiFileBase(endpoint: string): string {
  const name = endpoint.replace(/^[A-Z]+\s+/, "").toLowerCase().replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return `api-${name || "request"}`;
}

function parseOrNull(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Collects frames and answers in memory and writes them as a capture directory.
 *
 * @example
 * ```ts
 * import { CaptureRecorder } from "./capture.ts";
 * const rec = new CaptureRecorder({ source: "kickmon capture 0.1.0", startedAt: Date.now() });
 * rec.addFrame('{"event":"pusher:pong","data":"{}"}', Date.now(), "ws://127.0.0.1:8080, shard 0");
 * ```
 */
export class CaptureRecorder {
  readonly #source: string;
  readonly #startedAt: number;
  readonly #pending: Pending[] = [];
  readonly #counts = new Map<string, number>();
  readonly #secrets = new Set<string>();
  #dropped = 0;

  /**
   * Creates an empty recorder.
   *
   * @param opts `source`: who captured (e.g. `kickmon capture 0.1.0`); `startedAt`: ms since epoch.
   */
  constructor(opts: { readonly source: string; readonly startedAt: number }) {
    this.#source = opts.source;
    this.#startedAt = opts.startedAt;
  }

  /** Frames recorded so far. */
  get frames(): number {
    return this.#pending.filter((p) => p.entry.source === "pusher").length;
  }

  /** Answers recorded so far. */
  get answers(): number {
    return this.#pending.filter((p) => p.entry.source === "api").length;
  }

  /** Frames and answers not kept because {@linkcode MAX_CAPTURE_FILES} was reached. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Adds values to replace by `[REDACTED]` in every file written (values under 3 characters
   * are ignored: they would match too much).
   *
   * @param values secret values.
   * @example
   * ```ts
   * rec.addSecrets([config.kick.clientSecret]);
   * ```
   */
  addSecrets(values: Iterable<string>): void {
    for (const v of values) if (v && v.length >= 3) this.#secrets.add(v);
  }

  /**
   * Records one raw Pusher frame.
   *
   * @param text the frame exactly as received.
   * @param receivedAt ms since epoch.
   * @param where the endpoint and shard, for `source`.
   * @example
   * ```ts
   * rec.addFrame(text, Date.now(), "wss://ws-us2.pusher.com:443, shard 0");
   * ```
   */
  addFrame(text: string, receivedAt: number, where: string): void {
    const parsed = parseOrNull(text);
    const obj = parsed !== null && typeof parsed === "object"
      ? parsed as Record<string, unknown>
      : null;
    const event = typeof obj?.event === "string" ? obj.event : null;
    const channel = typeof obj?.channel === "string" ? obj.channel : null;
    const at = new Date(receivedAt).toISOString();
    const offset = receivedAt - this.#startedAt;
    this.#push(frameFileBase(event), {
      source: "pusher",
      at,
      offset_ms: offset,
      channel,
      event,
    }, {
      source: `${this.#source}: Pusher frame as received from ${where}`,
      captured_at: at,
      offset_ms: offset,
      channel,
      event,
      raw_frame: text,
      pusher_frame: parsed,
    });
  }

  /**
   * Records one answer of OAuth or the API (as the transport's observer gives it).
   *
   * @param e the exchange; `removed` values are added to the secrets.
   * @example
   * ```ts
   * const { api } = createKickApi(config, { onExchange: (e) => rec.addExchange(e) });
   * ```
   */
  addExchange(e: RawExchange): void {
    this.addSecrets(e.removed);
    const at = new Date(e.sentAt).toISOString();
    const offset = e.sentAt - this.#startedAt;
    this.#push(apiFileBase(e.endpoint), {
      source: "api",
      at,
      offset_ms: offset,
      endpoint: e.endpoint,
      status: e.status,
    }, {
      source: `${this.#source}: answer to ${e.method} ${e.url}`,
      captured_at: at,
      offset_ms: offset,
      endpoint: e.endpoint,
      request: { method: e.method, url: e.url },
      status: e.status,
      headers: e.headers,
      raw_body: e.body,
      api_response: parseOrNull(e.body),
    });
  }

  /**
   * Writes every file and `manifest.json` into `dir` (created when missing).
   *
   * @param dir the capture directory.
   * @param run what the manifest says besides the files.
   * @returns the manifest written.
   * @throws {Deno.errors.PermissionDenied} and other file-system errors.
   * @example
   * ```ts
   * await rec.write("capture", { kickmon_version: VERSION, ended_at, ended_because: "SIGINT", … });
   * ```
   */
  async write(dir: string, run: CaptureRun): Promise<CaptureManifest> {
    await Deno.mkdir(dir, { recursive: true });
    const files: CaptureFileEntry[] = [];
    const ordered = [...this.#pending].sort((a, b) => a.entry.offset_ms - b.entry.offset_ms);
    for (const p of ordered) {
      await Deno.writeTextFile(
        `${dir}/${p.entry.file}`,
        this.#scrub(`${JSON.stringify(p.content, null, 2)}\n`),
      );
      files.push(p.entry);
    }
    const manifest: CaptureManifest = {
      format: CAPTURE_FORMAT,
      started_at: new Date(this.#startedAt).toISOString(),
      ...run,
      redaction: REDACTION_NOTE,
      files,
    };
    await Deno.writeTextFile(
      `${dir}/manifest.json`,
      this.#scrub(`${JSON.stringify(manifest, null, 2)}\n`),
    );
    return manifest;
  }

  #push(base: string, entry: Omit<CaptureFileEntry, "file">, content: Record<string, unknown>) {
    if (this.#pending.length >= MAX_CAPTURE_FILES) {
      this.#dropped++;
      return;
    }
    const n = (this.#counts.get(base) ?? 0) + 1;
    this.#counts.set(base, n);
    this.#pending.push({ entry: { file: `${base}-${n}.json`, ...entry }, content });
  }

  #scrub(text: string): string {
    let out = text;
    for (const s of this.#secrets) {
      // The value as it appears in JSON text (quotes and backslashes escaped) and as is.
      for (const form of new Set([s, JSON.stringify(s).slice(1, -1)])) {
        out = out.split(form).join("[REDACTED]");
      }
    }
    return out;
  }
}

/** One frame of a capture, as {@linkcode readCapture} returns it. */
export interface CapturedFrame {
  /** ms after the capture started. */
  readonly offsetMs: number;
  /** The frame's channel, or null (connection level). */
  readonly channel: string | null;
  /** The frame's event name, or null. */
  readonly event: string | null;
  /** The frame exactly as received. */
  readonly text: string;
}

/** One answer of a capture, as {@linkcode readCapture} returns it. */
export interface CapturedAnswer {
  /** ms after the capture started. */
  readonly offsetMs: number;
  /** HTTP method. */
  readonly method: string;
  /** The request URL. */
  readonly url: URL;
  /** HTTP status. */
  readonly status: number;
  /** Recorded response headers. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body as recorded. */
  readonly body: string;
}

/**
 * Reads a capture directory.
 *
 * @param dir the directory `kickmon capture --out` wrote.
 * @returns its manifest, its frames and its answers, each in the order they happened.
 * @throws {Deno.errors.NotFound} when `dir` or a listed file is missing; `SyntaxError` on a broken file.
 * @example
 * ```ts
 * const { frames, answers } = await readCapture("capture");
 * console.log(frames.length, answers.length);
 * ```
 */
export async function readCapture(dir: string): Promise<{
  manifest: CaptureManifest;
  frames: CapturedFrame[];
  answers: CapturedAnswer[];
}> {
  const manifest = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`)) as CaptureManifest;
  const frames: CapturedFrame[] = [];
  const answers: CapturedAnswer[] = [];
  for (const f of manifest.files) {
    const c = JSON.parse(await Deno.readTextFile(`${dir}/${f.file}`));
    if (f.source === "pusher") {
      frames.push({
        offsetMs: c.offset_ms,
        channel: c.channel ?? null,
        event: c.event ?? null,
        text: c.raw_frame,
      });
    } else {
      answers.push({
        offsetMs: c.offset_ms,
        method: c.request.method,
        url: new URL(c.request.url),
        status: c.status,
        headers: c.headers ?? {},
        body: c.raw_body,
      });
    }
  }
  return { manifest, frames, answers };
}
