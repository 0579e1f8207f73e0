/**
 * The running service: wires Kick's signals (wire layer) through the
 * decision core into the status writer (database layer).
 *
 * An event's path: Pusher socket → `kick/pusher/subscriber.ts` →
 * `kick/pusher/frames.ts` (bytes → {@linkcode Observation}) →
 * `core/tracker.ts` (observation → transition) → `db/status_writer.ts`
 * (transition → committed row + NOTIFY).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Config } from "../config/config.ts";
import { type Decision, StatusTracker } from "../core/tracker.ts";
import type { Observation, StreamerRecord } from "../core/types.ts";
import { connectDatabase, isConnectionError, pingDatabase, type Sql } from "../db/client.ts";
import { inspectDatabase } from "../db/inspect.ts";
import { listenStreamerChanges, pollStreamerList } from "../db/listener.ts";
import { migrate } from "../db/migrate.ts";
import {
  correctFutureObservations,
  getStreamers,
  lastLivestreams,
  listStreamers,
  syncStreamerState,
  writeIdentity,
} from "../db/streamers_repo.ts";
import { type CommitResult, StatusWriter } from "../db/status_writer.ts";
import { parsePusherEvent } from "../kick/pusher/frames.ts";
import { PusherSubscriber, type ShardSnapshot } from "../kick/pusher/subscriber.ts";
import { explainNotCapable, NotPermittedError } from "../config/capability.ts";
import { describeError } from "../log/errors.ts";
import { LogRateLimiter } from "../log/logging.ts";
import { Hook } from "./hooks.ts";
import { createMetrics, type Metrics } from "./metrics.ts";

const log = getLogger(["kickmon", "monitor"]);

/**
 * The last failure of a component and when it is tried again. Times are ms
 * since the Unix epoch; `null` when there was no failure / no retry is due.
 */
export interface ComponentErrors {
  /** The current failure's message (host and cause included); null while the component works. */
  readonly lastError: string | null;
  /** When it happened. */
  readonly lastErrorAt: number | null;
  /** When the next attempt is due while the component is failing. */
  readonly nextRetryAt: number | null;
}

/** The OAuth token as `/health` reports it. */
export interface TokenHealth extends ComponentErrors {
  /** `valid`, `refreshing`, `failing`, `none`, `invalid_credentials` or `not used`. */
  readonly state: string;
  /** Expiry of the token held, ms since the Unix epoch, or null. */
  readonly expiresAt: number | null;
}

/** Health of each component, as `/health` and the live view show it. */
export interface MonitorHealth {
  readonly healthy: boolean;
  /** `error`: why it is down now (absent when up). */
  readonly database: { readonly up: boolean; readonly error?: string } & ComponentErrors;
  readonly pusher: { readonly up: boolean; readonly shards: readonly ShardSnapshot[] };
  readonly token: TokenHealth;
  readonly writeQueueDepth: number;
  /** Age of the oldest transition waiting to be committed, ms (0 when none). */
  readonly writeLagMs: number;
  /** The outage spool: transitions and bytes on disk, the last write error. */
  readonly spool: { readonly transitions: number; readonly bytes: number; readonly error?: string };
}

/**
 * Oldest uncommitted transition, ms, beyond which `/health` says unhealthy
 * even with the database up (the writer is behind). 30 s.
 */
export const WRITE_LAG_MAX_MS = 30_000;

/** A wanted Pusher channel unsubscribed for longer than this makes `/health` unhealthy, ms. */
export const SUBSCRIBE_DEGRADED_MS = 30_000;

/**
 * The `event` label of `kickmon_events_received_total`: Kick's event name;
 * a reconciliation answer is not an event but the API's `stream.is_live`
 * (its `event` names the endpoint, `GET /channels`, kept in status_events).
 */
function metricEvent(obs: Observation): string {
  return obs.source === "reconcile" ? "stream.is_live" : obs.event;
}

/** How often the database is probed while it is down, ms. */
const DATABASE_PROBE_MS = 5_000;

/**
 * Where the monitor reads the OAuth token's state from; provided by the
 * official-API plugin through {@linkcode Monitor.provideToken}.
 *
 * @example
 * ```ts
 * const reporter: TokenReporter = {
 *   state: () => "valid",
 *   health: () => ({ lastError: null, lastErrorAt: null, nextRetryAt: null, expiresAt: null }),
 * };
 * monitor.provideToken(reporter);
 * ```
 */
export interface TokenReporter {
  /** `valid`, `refreshing`, `failing`, `none` or `invalid_credentials`. */
  state(): string;
  /** The token's details for `/health` (times in ms since the Unix epoch). */
  health(): Omit<TokenHealth, "state">;
}

/** What `/health` says about the token while no plugin provides one. */
const NO_TOKEN: TokenReporter = {
  state: () => "not used",
  health: () => ({ lastError: null, lastErrorAt: null, nextRetryAt: null, expiresAt: null }),
};

/**
 * Extra behaviour plugged in by later layers (reconciliation, webhooks, HTTP),
 * registered with {@linkcode Monitor.use}. A plugin reaches the monitor only
 * through its public methods and typed hooks (`onReconnect`, `onListChanged`,
 * `onTransition`, `provideToken`), each returning its unsubscribe function.
 *
 * @example
 * ```ts
 * const plugin: MonitorPlugin = {
 *   name: "log-changes",
 *   start: (monitor) => void monitor.onListChanged(() => console.log("list changed")),
 *   stop: () => {},
 * };
 * monitor.use(plugin);
 * ```
 */
export interface MonitorPlugin {
  /** Name for logs. */
  readonly name: string;
  /** Start before the database is reached (e.g. `/health`, which must answer 503 meanwhile). */
  readonly early?: boolean;
  start(monitor: Monitor): Promise<void> | void;
  stop(): Promise<void> | void;
}

/**
 * One running kickmon instance.
 *
 * @example
 * ```ts
 * const monitor = new Monitor(config);
 * await monitor.start();
 * // … later, on SIGTERM:
 * await monitor.stop();
 * ```
 */
export class Monitor {
  readonly config: Config;
  readonly sql: Sql;
  readonly tracker = new StatusTracker();
  readonly writer: StatusWriter;
  readonly subscriber: PusherSubscriber;
  readonly metrics: Metrics;
  #plugins: MonitorPlugin[] = [];
  readonly #reconnected = new Hook<number>();
  readonly #listChanged = new Hook();
  readonly #committed = new Hook<CommitResult>();
  #listFollow: "trigger" | "poll" | null = null;
  #token: TokenReporter = NO_TOKEN;

  #dbUp = true;
  #dbError: string | undefined;
  #dbLastError: string | null = null;
  #dbLastErrorAt: number | null = null;
  #dbProbe: ReturnType<typeof setTimeout> | undefined;
  #dbNextProbeAt: number | null = null;
  #stopListening: (() => Promise<void>) | null = null;
  #resyncTimer: ReturnType<typeof setInterval> | undefined;
  #resyncing: Promise<void> | null = null;
  #resyncAgain = false;
  #stopped = false;
  readonly #resubscribing = new Set<number>();
  #snapshotTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #reloadIds = new Set<number>();
  #reloadTimer: ReturnType<typeof setTimeout> | undefined;
  /** True once the list came from the database or a snapshot (never save an empty guess). */
  #listLoaded = false;
  readonly #logLimit = new LogRateLimiter(5, 60_000);
  #fatal: ((e: Error) => void) | null = null;
  /** Resolves when the service hits an unrecoverable error (gave up reconnecting). */
  readonly fatal: Promise<Error>;

  /**
   * Registers a plugin, started by {@linkcode start} (early ones first) and
   * stopped by {@linkcode stop} in reverse order. Register before `start()`.
   *
   * @returns a function that unregisters it (it is then neither started nor stopped).
   */
  use(plugin: MonitorPlugin): () => void {
    this.#plugins = [...this.#plugins, plugin];
    return () => {
      this.#plugins = this.#plugins.filter((p) => p !== plugin);
    };
  }

  /** The registered plugins, in registration order. */
  get plugins(): readonly MonitorPlugin[] {
    return this.#plugins;
  }

  /**
   * Calls `fn(shard)` after each Pusher reconnect, once the server has
   * acknowledged the resubscriptions (or 5 s later if it never does);
   * reconciliation hooks in here.
   *
   * @returns the unsubscribe function.
   */
  onReconnect(fn: (shard: number) => void): () => void {
    return this.#reconnected.subscribe(fn);
  }

  /**
   * Calls `fn` after the list changed (a resync or a re-read of single rows
   * that changed something); reconciliation and webhook subscriptions hook
   * in here.
   *
   * @returns the unsubscribe function.
   */
  onListChanged(fn: () => void): () => void {
    return this.#listChanged.subscribe(fn);
  }

  /**
   * Calls `fn` with the result of every commit of the status writer, what was
   * committed and what the guards refused (the live view).
   *
   * @returns the unsubscribe function.
   */
  onTransition(fn: (result: CommitResult) => void): () => void {
    return this.#committed.subscribe(fn);
  }

  /**
   * Makes `reporter` the source of the token state in `/health` and
   * `kickmon_token_valid` (the official-API plugin). Without one the token is
   * `not used`.
   *
   * @returns a function that goes back to `not used` (if `reporter` is still the one in force).
   */
  provideToken(reporter: TokenReporter): () => void {
    this.#token = reporter;
    return () => {
      if (this.#token === reporter) this.#token = NO_TOKEN;
    };
  }

  /** How list changes are followed, once the database was reached (null before). */
  get listFollow(): "trigger" | "poll" | null {
    return this.#listFollow;
  }

  constructor(config: Config, options: { sql?: Sql } = {}) {
    this.config = config;
    this.fatal = new Promise((resolve) => (this.#fatal = resolve));
    this.sql = options.sql ?? connectDatabase(config.database);
    this.writer = new StatusWriter(this.sql, {
      spoolPath: `${config.system.stateDirectory}/spool.jsonl`,
      spoolMaxBytes: config.system.spoolMaxBytes,
      onCommit: (r) => this.#onCommit(r),
      // Superseded by a newer transition of the same streamer, which carries
      // the state the core believes: settle without re-reading the row.
      onCollapsed: (dropped) => {
        for (const t of dropped) this.tracker.settle(t, false);
      },
      onDatabaseState: (up, err) => {
        this.#setDb(up, err);
        // Outage starts: record the beliefs now. With the spool (everything
        // decided from here on) this is what a restart during the outage
        // needs to keep deciding correctly.
        if (!up && this.#listLoaded) this.#saveSnapshotSync();
      },
    });
    this.metrics = createMetrics({
      streamersByStatus: () => ({ ...this.tracker.counts() }),
      connectionsByState: () => {
        const out: Record<string, number> = {};
        for (const s of this.subscriber.snapshot()) out[s.state] = (out[s.state] ?? 0) + 1;
        return out;
      },
      writeQueueDepth: () => this.writer.depth,
      spoolBytes: () => this.writer.stats.spoolBytes,
      spoolTransitions: () => this.writer.stats.spoolTransitions,
      subscriptionRetries: () =>
        this.subscriber.snapshot().reduce((n, s) => n + s.subscriptionRetries, 0),
      spoolFailing: () => this.writer.stats.spoolError !== null,
      transitionsDropped: () => ({
        collapsed: this.writer.stats.collapsedTotal,
        refused_by_database: this.writer.stats.droppedTotal,
      }),
      databaseUp: () => this.#dbUp,
      tokenValid: () => this.#token.state() === "valid",
    });
    const p = config.kick.pusher;
    this.subscriber = new PusherSubscriber({
      key: p.key,
      cluster: p.cluster,
      host: p.host,
      port: p.port,
      tls: p.tls,
      maxChannelsPerConnection: p.maxChannelsPerConnection,
      reconnectBaseMs: config.monitoring.reconnectDelayMs,
      reconnectMaxMs: config.monitoring.maxReconnectDelayMs,
      maxReconnectAttempts: config.monitoring.maxReconnectAttempts,
      pongTimeoutMs: p.pongTimeoutMs,
      refusedRetryMs: p.refusedRetryMs,
    }, {
      onEvent: (channel, event, data, receivedAt, receivedMono) =>
        this.#onPusherEvent(channel, event, data, receivedAt, receivedMono),
      onConnected: (shard, info) => {
        if (info.reconnect) {
          log.info("pusher shard {shard} reconnected (socket {socketId})", {
            shard,
            socketId: info.socketId,
          });
          // Reconcile once the server has acknowledged the resubscriptions:
          // a transition between connect and subscribe would otherwise be
          // missed. If an ack never comes (a subscription error), reconcile
          // after 5 s anyway.
          this.#resubscribing.add(shard);
          const fallback = setTimeout(() => {
            if (this.#resubscribing.delete(shard) && !this.#stopped) {
              this.#reconnected.emit(shard);
            }
          }, 5000);
          Deno.unrefTimer(fallback as unknown as number);
        }
      },
      onSubscribed: (shard) => {
        if (this.#resubscribing.delete(shard)) this.#reconnected.emit(shard);
      },
      onDisconnected: (_shard, reason, code) => {
        this.metrics.reconnects.inc({ reason: code !== undefined ? String(code) : reason });
      },
      onFrameRejected: (_shard, reason, detail) => {
        this.metrics.framesMalformed.inc({ reason });
        if (this.#logLimit.allow(`malformed:${reason}`)) {
          log.warn("dropped a frame pusher-js cannot handle ({reason}): {detail}", {
            reason,
            detail,
          });
        }
      },
      onNotPermitted: (_shard, e) => {
        this.#fatal?.(
          new NotPermittedError(explainNotCapable(e, config) ?? e.message, { cause: e }),
        );
      },
      onGiveUp: (shard, attempts) => {
        this.#fatal?.(
          new Error(`pusher shard ${shard} gave up after ${attempts} reconnect attempts`),
        );
      },
    });
  }

  /**
   * Starts everything: waits for the database (retrying), migrates, replays
   * a spool left by a crash, loads the list, LISTENs for changes, connects
   * to Pusher, then starts plugins.
   *
   * @throws {DatabaseError} on a non-connection database failure (e.g. a failed migration).
   */
  async start(): Promise<void> {
    await Deno.mkdir(this.config.system.stateDirectory, { recursive: true });
    for (const p of this.#plugins) if (p.early) await p.start(this);
    // The spool first: transitions left by a crash go out before anything new.
    const spooled = await this.writer.open();
    let connected = false;
    try {
      await pingDatabase(this.sql);
      connected = true;
    } catch (e) {
      if (!isConnectionError(e)) throw e;
      this.#setDb(false, e as Error);
    }
    if (this.#stopped) return;
    if (connected) {
      await this.#connectDatabase();
      for (const t of spooled) this.tracker.assumePending(t);
    } else {
      // Keep listening with the last known list; writes spool until PostgreSQL returns.
      const snapshot = await this.#loadSnapshot();
      for (const t of spooled) this.tracker.assumePending(t);
      this.#applyChannels();
      log.error(
        "database unreachable at start: running from the saved list of {count} streamers; " +
          "transitions are spooled until it returns",
        { count: snapshot },
      );
      void this.#waitForDatabase().then(() => this.#connectDatabase()).catch((e) => {
        if (!this.#stopped) this.#fatal?.(e instanceof Error ? e : new Error(String(e)));
      });
    }
    // A stop requested while starting (SIGTERM during start-up) must not be
    // followed by sockets, timers and plugins that stop() already passed.
    if (this.#stopped) return;
    this.writer.start();
    this.subscriber.start();
    this.#resyncTimer = setInterval(
      () => this.resync(),
      this.config.monitoring.resyncIntervalMs,
    );
    for (const p of this.#plugins) {
      if (this.#stopped) return;
      if (!p.early) await p.start(this);
    }
    if (this.#stopped) return;
    log.info("kickmon started: {count} streamers, {channels} Pusher channels", {
      count: this.tracker.size,
      channels: this.tracker.channelIds().length,
    });
  }

  /**
   * Migrates, starts following the list (LISTEN when the list trigger is
   * installed, else polling; `MONITORING_LIST_FOLLOW`) and loads the list.
   *
   * @throws {SchemaError} when a privilege, column or schema kickmon needs is missing.
   */
  async #connectDatabase(): Promise<void> {
    const { schema } = this.config.database;
    const follow = this.config.monitoring.listFollow;
    const applied = await migrate(this.sql, {
      appSchema: schema,
      installTrigger: follow === "trigger",
    });
    if (applied.length) log.info("applied migrations {applied}", { applied });
    this.#setDb(true);
    const trigger = follow === "trigger" ||
      (follow === "auto" && (await inspectDatabase(this.sql, schema)).listTrigger);
    this.#listFollow = trigger ? "trigger" : "poll";
    if (trigger) {
      let firstListen = true;
      const stop = await listenStreamerChanges(this.sql, {
        // Coalesced: a bulk INSERT arrives as one NOTIFY per row; re-read them
        // together, not row by row.
        onChange: (c) => this.#queueReload(c.id),
        // postgres.js calls onListen after every (re)LISTEN, the first time before
        // `listenStreamerChanges` resolves: that one is covered by the resync just
        // below (reading the list twice at start doubled the start-up garbage).
        onListen: () => {
          if (firstListen) firstListen = false;
          else this.resync();
        },
      });
      firstListen = false;
      this.#stopListening = stop;
    } else {
      const stop = pollStreamerList(
        this.sql,
        this.config.monitoring.listPollIntervalMs,
        () => this.resync(),
      );
      this.#stopListening = () => Promise.resolve(stop());
    }
    log.info("following the streamer list by {how}", {
      how: trigger
        ? "LISTEN (list trigger installed)"
        : `polling every ${this.config.monitoring.listPollIntervalMs} ms (no list trigger; ` +
          "'kickmon db migrate --install-trigger' to LISTEN instead)",
    });
    try {
      const future = await correctFutureObservations(this.sql);
      if (future) {
        log.warn(
          "{count} streamers had an observation time in the future (a clock ran ahead); " +
            "reset to now so that new transitions are not refused",
          { count: future },
        );
      }
    } catch (e) {
      log.warn("cannot check for future observation times: {error}", { error: String(e) });
    }
    await this.resync();
    try {
      const n = this.tracker.rememberLivestreams(await lastLivestreams(this.sql));
      if (n) log.info("livestream ids of {count} streamers taken from history", { count: n });
    } catch (e) {
      // Only inference after a restart is lost; nothing else depends on it.
      log.warn("cannot read the last livestream ids: {error}", { error: String(e) });
    }
  }

  get #snapshotPath(): string {
    return `${this.config.system.stateDirectory}/streamers.json`;
  }

  /**
   * Saves the list (at most once per second) so that a restart during a
   * database outage can keep listening.
   */
  #scheduleSnapshot(): void {
    if (this.#snapshotTimer !== undefined) return;
    this.#snapshotTimer = setTimeout(() => {
      this.#snapshotTimer = undefined;
      this.#saveSnapshot();
    }, 1000);
  }

  async #saveSnapshot(): Promise<void> {
    if (!this.#listLoaded) return;
    const tmp = `${this.#snapshotPath}.tmp`;
    try {
      await Deno.writeTextFile(tmp, JSON.stringify(this.tracker.records()));
      await Deno.rename(tmp, this.#snapshotPath);
    } catch (e) {
      log.warn("cannot save the streamer list snapshot: {error}", { error: String(e) });
    }
  }

  #saveSnapshotSync(): void {
    const tmp = `${this.#snapshotPath}.tmp`;
    try {
      Deno.writeTextFileSync(tmp, JSON.stringify(this.tracker.records()));
      Deno.renameSync(tmp, this.#snapshotPath);
    } catch (e) {
      log.warn("cannot save the streamer list snapshot: {error}", { error: String(e) });
    }
  }

  async #loadSnapshot(): Promise<number> {
    try {
      const rows = JSON.parse(await Deno.readTextFile(this.#snapshotPath)) as StreamerRecord[];
      this.tracker.replaceAll(rows);
      this.#listLoaded = true;
      return rows.length;
    } catch {
      return 0;
    }
  }

  async #waitForDatabase(): Promise<void> {
    for (let attempt = 0;; attempt++) {
      if (this.#stopped) throw new Error("stopped while waiting for the database");
      try {
        await pingDatabase(this.sql);
        this.#setDb(true);
        return;
      } catch (e) {
        if (!isConnectionError(e)) throw e;
        this.#setDb(false, e as Error);
        if (attempt === 0) {
          log.error("database unreachable at start, retrying: {error}", {
            error: this.#describeDbError(e as Error),
          });
        }
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
      }
    }
  }

  /**
   * Re-reads the whole list and brings subscriptions in line. Concurrent
   * calls coalesce into one extra pass.
   */
  resync(): Promise<void> {
    if (this.#resyncing) {
      this.#resyncAgain = true;
      return this.#resyncing;
    }
    this.#resyncing = (async () => {
      do {
        this.#resyncAgain = false;
        try {
          // Drop what was learned for rows the other system changed or deleted first.
          await syncStreamerState(this.sql);
          const rows = await listStreamers(this.sql);
          const changed = this.tracker.replaceAll(rows) || !this.#listLoaded;
          this.#listLoaded = true;
          this.#setDb(true);
          if (changed) {
            // The periodic safety-net resync usually finds nothing new.
            this.#scheduleSnapshot();
            this.#applyChannels();
            this.#listChanged.emit();
          }
        } catch (e) {
          this.#setDb(false, e as Error);
          log.warn("streamer list resync failed (will retry): {error}", {
            error: this.#describeDbError(e as Error),
          });
        }
      } while (this.#resyncAgain && !this.#stopped);
    })().finally(() => (this.#resyncing = null));
    return this.#resyncing;
  }

  /**
   * Re-reads one streamer soon (coalesced with others within 50 ms), e.g.
   * after kickmon learned its channel id.
   */
  refreshStreamer(id: number): void {
    this.#queueReload(id);
  }

  #queueReload(id: number): void {
    this.#reloadIds.add(id);
    this.#reloadTimer ??= setTimeout(() => {
      this.#reloadTimer = undefined;
      const ids = [...this.#reloadIds];
      this.#reloadIds.clear();
      if (!this.#stopped) this.#reload(ids);
    }, 50);
  }

  /** Re-reads these rows; ids with no row any more (deleted) are forgotten. */
  #reload(ids: number[]): void {
    getStreamers(this.sql, ids).then((rows: StreamerRecord[]) => {
      const found = new Set(rows.map((r) => r.id));
      let changed = false;
      for (const r of rows) changed = this.tracker.upsert(r) || changed;
      for (const id of ids) {
        if (!found.has(id) && this.tracker.get(id)) {
          this.tracker.remove(id);
          changed = true;
        }
      }
      if (!changed) return; // e.g. a re-read after a refused write: statuses only
      this.#scheduleSnapshot();
      this.#applyChannels();
      this.#listChanged.emit();
    }).catch((e) => {
      // During an outage every refused write asks for a reload: log a few, not each.
      if (this.#logLimit.allow("reload")) {
        log.warn("reloading streamers {ids} failed; the next resync fixes it: {error}", {
          ids: ids.slice(0, 20),
          error: String(e),
        });
      }
    });
  }

  #applyChannels(): void {
    if (!this.#stopped) this.subscriber.setChannels(this.tracker.channelIds());
  }

  #onPusherEvent(
    channel: string,
    event: string,
    data: unknown,
    receivedAt: number,
    receivedMono: number,
  ): void {
    const r = parsePusherEvent(channel, event, data, receivedAt, receivedMono);
    if (r.kind === "ignored") return;
    if (r.kind === "malformed") {
      this.metrics.framesMalformed.inc({ reason: r.reason });
      if (this.#logLimit.allow(`malformed:${r.reason}`)) {
        log.warn("dropped malformed {event} frame on {channel}: {reason} ({detail})", {
          event: event.slice(0, 100),
          channel: channel.slice(0, 100),
          reason: r.reason,
          detail: r.detail.slice(0, 200),
        });
      }
      return;
    }
    this.observe(r.observation);
  }

  /**
   * Feeds one observation from any source through the core into the writer.
   * Used by Pusher, webhooks and reconciliation alike.
   *
   * @returns what the core decided (a `transition` is queued for commit).
   */
  observe(obs: Observation): Decision {
    this.metrics.eventsReceived.inc({ event: metricEvent(obs), source: obs.source });
    const d = this.tracker.observe(obs);
    switch (d.kind) {
      case "transition":
        for (const t of d.inferred ?? []) {
          this.metrics.transitionsInferred.inc({ status: t.status, source: t.source });
          if (this.#logLimit.allow("inferred")) {
            log.info("streamer {id}: missed {status} inferred: {why}", {
              id: t.streamerId,
              status: t.status,
              why: String(t.extra?.inferred_because ?? ""),
            });
          }
          this.writer.enqueue(t);
        }
        this.writer.enqueue(d.transition);
        break;
      case "unknown_streamer":
      case "inactive": {
        this.metrics.eventsIgnored.inc({ reason: d.kind, source: obs.source });
        const key = obs.key.kind === "channel_id"
          ? `channel ${obs.key.channelId}`
          : `user ${obs.key.userId}`;
        if (this.#logLimit.allow(`ignored:${d.kind}`)) {
          log.info("{event} for {key} ignored: streamer {why}", {
            event: obs.event,
            key,
            why: d.kind === "inactive" ? "is not active" : "is not in the streamers table",
          });
        }
        break;
      }
      default:
        this.metrics.eventsIgnored.inc({ reason: d.kind, source: obs.source });
    }
    if ((d.kind === "transition" || d.kind === "duplicate") && d.learned) {
      const l = d.learned;
      writeIdentity(this.sql, {
        streamerId: l.streamerId,
        kickChannelId: l.kickChannelId,
        kickUserId: l.kickUserId,
        listed: this.tracker.get(l.streamerId)?.listed,
      }).then((changed) => {
        if (changed) {
          this.#queueReload(l.streamerId);
          log.info("learned ids for streamer {id}: channel {ch}, user {user}", {
            id: l.streamerId,
            ch: l.kickChannelId ?? "-",
            user: l.kickUserId ?? "-",
          });
        }
      }).catch((e) => log.warn("writing learned ids failed: {error}", { error: String(e) }));
    }
    return d;
  }

  #onCommit(r: CommitResult): void {
    const now = performance.now();
    for (const c of r.committed) {
      const t = c.transition;
      this.tracker.settle(t, true);
      this.metrics.transitions.inc({ status: t.status, source: t.source });
      if (t.receivedMono !== undefined && t.receivedMono <= now) {
        this.metrics.eventToCommit.observe({ source: t.source }, (now - t.receivedMono) / 1000);
      }
    }
    const refresh: number[] = [];
    for (const t of r.rejected) {
      if (this.tracker.settle(t, false)) refresh.push(t.streamerId);
      this.metrics.eventsIgnored.inc({ reason: "refused_by_database", source: t.source });
    }
    if (refresh.length) this.#reload(refresh);
    this.#committed.emit(r);
  }

  #setDb(up: boolean, err?: Error): void {
    if (!up && err) {
      this.#dbLastError = this.#describeDbError(err);
      this.#dbLastErrorAt = Date.now();
      this.#scheduleDbProbe();
    }
    if (up === this.#dbUp && (up || this.#dbError)) return;
    this.#dbUp = up;
    this.#dbError = up ? undefined : this.#dbLastError ?? undefined;
  }

  /** A database error with the server it is about (postgres.js names it only sometimes). */
  #describeDbError(err: Error): string {
    const text = describeError(err);
    const { host, port } = this.config.database;
    return text.includes(host) ? text : `database ${host}:${port}: ${text}`;
  }

  /**
   * While the database is down, pings it every {@linkcode DATABASE_PROBE_MS}
   * so that `/health` can say when the next attempt is and turns healthy
   * without waiting for a write.
   */
  #scheduleDbProbe(): void {
    if (this.#dbProbe !== undefined || this.#stopped) return;
    this.#dbNextProbeAt = Date.now() + DATABASE_PROBE_MS;
    this.#dbProbe = setTimeout(async () => {
      this.#dbProbe = undefined;
      this.#dbNextProbeAt = null;
      if (this.#stopped) return;
      if (!(await this.checkDatabase(2000))) this.#scheduleDbProbe();
    }, DATABASE_PROBE_MS);
  }

  /** Component states for `/health`, `kickmon status` and the live view. */
  health(): MonitorHealth {
    const shards = this.subscriber.snapshot();
    // A channel refused or unanswered for longer than the bound counts as down too.
    const pusherUp = shards.every((s) =>
      s.state === "connected" && s.oldestUnsubscribedMs <= SUBSCRIBE_DEGRADED_MS
    );
    const dbUp = this.#dbUp && this.writer.stats.databaseUp;
    const token = this.#token.state();
    const tokenOk = token === "valid" || token === "not used" || token === "refreshing";
    const writeLagMs = this.writer.lagMs();
    const w = this.writer.stats;
    return {
      healthy: dbUp && pusherUp && tokenOk && writeLagMs <= WRITE_LAG_MAX_MS &&
        w.spoolError === null,
      database: {
        up: dbUp,
        error: dbUp ? undefined : this.#dbError ?? "the last write failed",
        lastError: dbUp ? null : this.#dbLastError,
        lastErrorAt: dbUp ? null : this.#dbLastErrorAt,
        nextRetryAt: dbUp ? null : this.#dbNextProbeAt,
      },
      pusher: { up: pusherUp, shards },
      token: { state: token, ...this.#token.health() },
      writeQueueDepth: this.writer.depth,
      writeLagMs,
      spool: {
        transitions: w.spoolTransitions,
        bytes: w.spoolBytes,
        ...(w.spoolError !== null ? { error: w.spoolError } : {}),
      },
    };
  }

  /**
   * Pings the database now and records the result (for `/health`). A database
   * that does not answer within `timeoutMs` (ms) counts as down: postgres.js
   * queues a query while it waits out its reconnect backoff, and a health check
   * must not report the last known state while that lasts.
   *
   * @returns true when the ping answered in time. Never throws.
   */
  async checkDatabase(timeoutMs = 2000): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), timeoutMs)));
    try {
      const r = await Promise.race([pingDatabase(this.sql).then(() => "ok" as const), late]);
      if (r === "late") {
        const { host, port } = this.config.database;
        this.#setDb(
          false,
          new Error(`database ${host}:${port} did not answer within ${timeoutMs} ms`),
        );
        return false;
      }
      this.#setDb(true);
      return true;
    } catch (e) {
      this.#setDb(false, e as Error);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Stops intake (sockets, plugins), flushes pending writes within
   * `MONITORING_SHUTDOWN_TIMEOUT`, and closes the database.
   *
   * @returns true when every queued transition was committed (else it is in the spool).
   */
  async stop(): Promise<boolean> {
    if (this.#stopped) return true;
    this.#stopped = true;
    clearInterval(this.#resyncTimer);
    clearTimeout(this.#dbProbe);
    clearTimeout(this.#reloadTimer);
    if (this.#snapshotTimer !== undefined) {
      clearTimeout(this.#snapshotTimer);
      this.#snapshotTimer = undefined;
      await this.#saveSnapshot();
    }
    for (const p of [...this.#plugins].reverse()) {
      try {
        await p.stop();
      } catch (e) {
        log.warn("stopping {name} failed: {error}", { name: p.name, error: String(e) });
      }
    }
    await this.subscriber.stop();
    const flushed = await this.writer.close(this.config.monitoring.shutdownTimeoutMs);
    const w = this.writer.stats;
    if (!flushed && w.spoolError === null) {
      log.warn(
        "shutdown: {count} transitions not committed; all {count} kept in the spool " +
          "({bytes} bytes) for the next start; {collapsed} collapsed since start",
        { count: this.writer.depth, bytes: w.spoolBytes, collapsed: w.collapsedTotal },
      );
    } else if (!flushed) {
      log.error(
        "shutdown: {count} transitions not committed and NOT saved ({error}); the spool holds " +
          "{kept} of them; reconciliation corrects the statuses at the next start, their history " +
          "rows are lost",
        { count: this.writer.depth, error: w.spoolError, kept: w.spoolTransitions },
      );
    }
    try {
      await this.#stopListening?.();
    } catch { /* database gone */ }
    await this.sql.end({ timeout: 2 }).catch(() => {});
    return flushed;
  }
}
