/**
 * The running service: wires Kick's signals (wire layer) through the
 * decision core into the status writer (database layer).
 *
 * An event's path: Pusher socket → `kick/pusher/subscriber.ts` →
 * `kick/pusher/frames.ts` (bytes → {@linkcode Observation}) →
 * `core/tracker.ts` (observation → transition) → `db/status_writer.ts`
 * (transition → committed row + NOTIFY).
 *
 * Plugins (reconciliation, webhooks, `/health`, the live view) register
 * with {@linkcode Monitor.use} and hear of events through typed hooks
 * (`onReconnect`, `onListChanged`, `onTransition`; `provideToken` for the
 * token's state), each returning its unsubscribe function; nothing outside
 * this module assigns a Monitor field.
 *
 * This module is one concept, the wiring: which component is built with
 * which callbacks, the start and stop order, and the observation path
 * (`observe`, the commit results). Its parts are beside it: following the
 * list (`list_follower.ts`), the saved list (`list_snapshot.ts`), the
 * database's up/down state and probe (`database_state.ts`), the health
 * report (`health.ts`), the hooks (`hooks.ts`). Its role among several
 * instances on one database is `leadership` (`leader_gate.ts`): given by
 * `kickmon start` (an elector, `leadership.ts`), started and stopped here,
 * followed by the plugins whose work only the leader does.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Config } from "../config/config.ts";
import { type Decision, StatusTracker } from "../core/tracker.ts";
import type { Observation } from "../core/types.ts";
import { connectDatabase, isConnectionError, pingDatabase, type Sql } from "../db/client.ts";
import { migrate } from "../db/migrate.ts";
import { correctFutureObservations, lastLivestreams, writeIdentity } from "../db/streamers_repo.ts";
import { type CommitResult, StatusWriter } from "../db/status_writer.ts";
import { parsePusherEvent } from "../kick/pusher/frames.ts";
import { PusherSubscriber } from "../kick/pusher/subscriber.ts";
import { explainNotCapable, NotPermittedError } from "../config/capability.ts";
import { LogRateLimiter } from "../log/logging.ts";
import { assembleHealth, type MonitorHealth, NO_TOKEN, type TokenReporter } from "./health.ts";
import { DatabaseState } from "./database_state.ts";
import { Hook } from "./hooks.ts";
import { type Leadership, STANDALONE } from "./leader_gate.ts";
import { ListFollower } from "./list_follower.ts";
import { ListSnapshot } from "./list_snapshot.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { pusherSubscriberOptions } from "./pusher_options.ts";
import { statePaths } from "./state_paths.ts";

export type { ComponentErrors, MonitorHealth, TokenHealth, TokenReporter } from "./health.ts";
export { SUBSCRIBE_DEGRADED_MS, WRITE_LAG_MAX_MS } from "./health.ts";

const log = getLogger(["kickmon", "monitor"]);

/**
 * The `event` label of `kickmon_events_received_total`: Kick's event name;
 * a reconciliation answer is not an event but the API's `stream.is_live`
 * (its `event` names the endpoint, `GET /channels`, kept in status_events).
 */
function metricEvent(obs: Observation): string {
  return obs.source === "reconcile" ? "stream.is_live" : obs.event;
}

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
  /**
   * This instance's role among several on one database (issue 14):
   * reconciliation and the other API work run only while it leads. Without
   * an elector ({@linkcode STANDALONE}) it always leads.
   */
  readonly leadership: Leadership;
  #plugins: MonitorPlugin[] = [];
  readonly #reconnected = new Hook<number>();
  readonly #listChanged = new Hook();
  readonly #committed = new Hook<CommitResult>();
  #token: TokenReporter = NO_TOKEN;

  /** Up/down, the last error, and the probe while down. */
  readonly #db: DatabaseState;
  #resyncTimer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  readonly #resubscribing = new Set<number>();
  /** The saved list, for a start during an outage; saved only once the list was loaded. */
  readonly #snapshot: ListSnapshot;
  /** Follows the streamers table into the tracker. */
  readonly #list: ListFollower;
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
    return this.#list.mode;
  }

  constructor(config: Config, options: { sql?: Sql; leadership?: Leadership } = {}) {
    this.config = config;
    this.leadership = options.leadership ?? STANDALONE;
    this.fatal = new Promise((resolve) => (this.#fatal = resolve));
    this.sql = options.sql ?? connectDatabase(config.database);
    this.#db = new DatabaseState(this.sql, config.database);
    this.#list = new ListFollower({
      sql: this.sql,
      tracker: this.tracker,
      follow: config.monitoring.listFollow,
      schema: config.database.schema,
      pollIntervalMs: config.monitoring.listPollIntervalMs,
      onChanged: () => {
        this.#snapshot.schedule();
        this.#applyChannels();
        this.#listChanged.emit();
      },
      onDatabaseState: (up, err) => this.#db.report(up, err),
      describeDbError: (e) => this.#db.describe(e),
    });
    this.#snapshot = new ListSnapshot(
      statePaths(config.system.stateDirectory).listSnapshot,
      () => this.#list.loaded ? this.tracker.records() : null,
    );
    this.writer = new StatusWriter(this.sql, {
      spoolPath: statePaths(config.system.stateDirectory).spool,
      spoolMaxBytes: config.system.spoolMaxBytes,
      onCommit: (r) => this.#onCommit(r),
      // Superseded by a newer transition of the same streamer, which carries
      // the state the core believes: settle without re-reading the row.
      onCollapsed: (dropped) => {
        for (const t of dropped) this.tracker.settle(t, false);
      },
      onDatabaseState: (up, err) => {
        this.#db.report(up, err);
        // Outage starts: record the beliefs now. With the spool (everything
        // decided from here on) this is what a restart during the outage
        // needs to keep deciding correctly.
        if (!up) this.#snapshot.saveSync();
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
      databaseUp: () => this.#db.up,
      tokenValid: () => this.#token.state() === "valid",
      leader: () => this.leadership.isLeader,
      leadershipChanges: () => this.leadership.snapshot().changes_total,
    });
    this.subscriber = new PusherSubscriber(pusherSubscriberOptions(config), {
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
    // On its own session, retrying by itself while the database is down.
    this.leadership.start();
    let connected = false;
    try {
      await pingDatabase(this.sql);
      connected = true;
    } catch (e) {
      if (!isConnectionError(e)) throw e;
      this.#db.report(false, e as Error);
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
      void this.#db.waitUntilReachable().then(() => this.#connectDatabase()).catch((e) => {
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
    this.#db.report(true);
    await this.#list.follow();
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

  /** Takes the list from the snapshot. @returns how many streamers it held (0: none). */
  async #loadSnapshot(): Promise<number> {
    const rows = await this.#snapshot.load();
    if (!rows) return 0;
    try {
      this.tracker.replaceAll(rows);
      this.#list.markLoaded();
      return rows.length;
    } catch {
      return 0;
    }
  }

  /**
   * Re-reads the whole list and brings subscriptions in line. Concurrent
   * calls coalesce into one extra pass.
   */
  resync(): Promise<void> {
    return this.#list.resync();
  }

  /**
   * Re-reads one streamer soon (coalesced with others within 50 ms), e.g.
   * after kickmon learned its channel id.
   */
  refreshStreamer(id: number): void {
    this.#list.queueReload(id);
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
          this.#list.queueReload(l.streamerId);
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
    if (refresh.length) this.#list.reload(refresh);
    this.#committed.emit(r);
  }

  /** Component states for `/health`, `kickmon status` and the live view. */
  health(): MonitorHealth {
    return assembleHealth({
      shards: this.subscriber.snapshot(),
      database: this.#db.snapshot(),
      token: this.#token,
      writer: this.writer,
      leadership: this.leadership.snapshot(),
    });
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
    return await this.#db.check(timeoutMs);
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
    this.#db.stop();
    this.#list.halt();
    await this.#snapshot.flush();
    for (const p of [...this.#plugins].reverse()) {
      try {
        await p.stop();
      } catch (e) {
        log.warn("stopping {name} failed: {error}", { name: p.name, error: String(e) });
      }
    }
    // Leader work has stopped with the plugins: free the lock now, so that a
    // standby takes over within one poll instead of after our flush.
    await this.leadership.stop();
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
    await this.#list.close();
    await this.sql.end({ timeout: 2 }).catch(() => {});
    return flushed;
  }
}
