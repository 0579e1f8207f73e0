/**
 * kickmon's Prometheus metrics (prom-client), named per Prometheus
 * conventions: counters end in `_total`, durations are `_seconds`, sizes
 * `_bytes`. One registry per process; `GET /metrics` serves it.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { logOutputStats } from "../log/logging.ts";
import { VERSION } from "../version.ts";

/**
 * The metric set of one monitor. Gauges that mirror live state are filled by
 * `collect` callbacks given to {@linkcode createMetrics}.
 *
 * @example
 * ```ts
 * const m = createMetrics({});
 * m.eventsReceived.inc({ event: "App\\Events\\StreamerIsLive", source: "pusher" });
 * console.log(await m.registry.metrics());
 * ```
 */
export interface Metrics {
  readonly registry: Registry;
  /**
   * Events received, by Kick event name and source (pusher, webhook,
   * reconcile); reconciliation's answers count as `stream.is_live` (the API
   * field read), not as the endpoint they came from.
   */
  readonly eventsReceived: Counter<"event" | "source">;
  /** Frames dropped as malformed, by reason. */
  readonly framesMalformed: Counter<"reason">;
  /** Events ignored (unknown streamer, inactive, stale, duplicate), by reason. */
  readonly eventsIgnored: Counter<"reason" | "source">;
  /** Transitions committed, by new status and source. */
  readonly transitions: Counter<"status" | "source">;
  /** Transitions inferred from a frame for a newer livestream (a lost frame), by status and source. */
  readonly transitionsInferred: Counter<"status" | "source">;
  /** Receive-to-commit latency, seconds. */
  readonly eventToCommit: Histogram<"source">;
  /** Pusher reconnects by reason. */
  readonly reconnects: Counter<"reason">;
  /** Official API requests by endpoint and status code. */
  readonly apiRequests: Counter<"endpoint" | "code">;
  /** Elements of official API list answers skipped as malformed, by endpoint. */
  readonly apiRowsMalformed: Counter<"endpoint">;
  /** Reconciliation passes by outcome. */
  readonly reconciliations: Counter<"outcome">;
  /** Duration of each reconciliation pass, s, by reason. */
  readonly reconcilePassSeconds: Histogram<"reason">;
  /** Share of the wanted streamers the last completed pass got an answer for. */
  readonly reconcileCoverage: Gauge;
  /** Passes longer than the reconciliation interval. */
  readonly reconcileOverruns: Counter;
  /** Webhook deliveries by outcome. */
  readonly webhooks: Counter<"outcome">;
}

/** Live-state readers for gauges (called at scrape time). */
export interface MetricsCollectors {
  readonly streamersByStatus?: () => Record<string, number>;
  readonly connectionsByState?: () => Record<string, number>;
  readonly writeQueueDepth?: () => number;
  readonly spoolBytes?: () => number;
  /** `pusher:subscribe` frames sent again (refused or unanswered), since start. */
  readonly subscriptionRetries?: () => number;
  /** Transitions in the spool file (fsynced), while the database is down. */
  readonly spoolTransitions?: () => number;
  /** Whether the last spool write failed (ENOSPC, EIO …). */
  readonly spoolFailing?: () => boolean;
  /** Transitions never written, by reason (`collapsed`, `refused_by_database`), since start. */
  readonly transitionsDropped?: () => Record<string, number>;
  readonly databaseUp?: () => boolean;
  readonly tokenValid?: () => boolean;
  /** Whether this instance leads (issue 14). */
  readonly leader?: () => boolean;
  /** Promotions + demotions of this instance since start. */
  readonly leadershipChanges?: () => number;
}

/**
 * Creates the registry and every metric.
 *
 * @example
 * ```ts
 * const m = createMetrics({ writeQueueDepth: () => writer.depth });
 * ```
 */
export function createMetrics(c: MetricsCollectors): Metrics {
  const registry = new Registry();
  const registers = [registry];
  new Gauge({
    name: "kickmon_streamers",
    help: 'Active streamers by status (inactive ones under status="inactive").',
    labelNames: ["status"],
    registers,
    collect() {
      this.reset();
      for (const [k, v] of Object.entries(c.streamersByStatus?.() ?? {})) {
        this.set({ status: k }, v);
      }
    },
  });
  new Gauge({
    name: "kickmon_pusher_connections",
    help: "Pusher connections (shards) by state.",
    labelNames: ["state"],
    registers,
    collect() {
      this.reset();
      for (const [k, v] of Object.entries(c.connectionsByState?.() ?? {})) {
        this.set({ state: k }, v);
      }
    },
  });
  new Gauge({
    name: "kickmon_write_queue_depth",
    help: "Transitions waiting to be committed.",
    registers,
    collect() {
      this.set(c.writeQueueDepth?.() ?? 0);
    },
  });
  new Gauge({
    name: "kickmon_spool_bytes",
    help: "Bytes in the outage spool file.",
    registers,
    collect() {
      this.set(c.spoolBytes?.() ?? 0);
    },
  });
  new Counter({
    name: "kickmon_pusher_subscription_retries_total",
    help: "pusher:subscribe frames sent again after a refusal or a missing acknowledgement.",
    registers,
    collect() {
      this.reset();
      this.inc(c.subscriptionRetries?.() ?? 0);
    },
  });
  new Gauge({
    name: "kickmon_spool_transitions",
    help: "Transitions held in the outage spool file (fsynced) while the database is down.",
    registers,
    collect() {
      this.set(c.spoolTransitions?.() ?? 0);
    },
  });
  new Gauge({
    name: "kickmon_spool_write_failing",
    help: "1 while writing the outage spool fails (e.g. a full disk); transitions wait in memory.",
    registers,
    collect() {
      this.set(c.spoolFailing?.() ? 1 : 0);
    },
  });
  new Counter({
    name: "kickmon_transitions_dropped_total",
    help: "Transitions never written, by reason: collapsed (a newer transition of the same " +
      "streamer carries the net state; see details.collapsed) or refused_by_database (invalid data).",
    labelNames: ["reason"],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(c.transitionsDropped?.() ?? {})) {
        this.inc({ reason }, n);
      }
    },
  });
  new Gauge({
    name: "kickmon_database_up",
    help: "1 when the last database write or ping succeeded.",
    registers,
    collect() {
      this.set(c.databaseUp?.() ? 1 : 0);
    },
  });
  new Gauge({
    name: "kickmon_oauth_token_valid",
    help: "1 while an unexpired app access token is held.",
    registers,
    collect() {
      this.set(c.tokenValid?.() ? 1 : 0);
    },
  });
  new Gauge({
    name: "kickmon_leader",
    help: "1 while this instance is the leader (it alone spends the official-API budget).",
    registers,
    collect() {
      this.set(c.leader?.() ? 1 : 0);
    },
  });
  new Counter({
    name: "kickmon_leadership_changes_total",
    help: "Times this instance became or stopped being the leader, since start.",
    registers,
    collect() {
      this.reset();
      this.inc(c.leadershipChanges?.() ?? 0);
    },
  });
  new Gauge({
    name: "kickmon_build_info",
    help: "Always 1; the version label says which kickmon runs.",
    labelNames: ["version"],
    registers,
  }).set({ version: VERSION }, 1);
  // The standard process metrics (Prometheus client conventions), computed
  // without prom-client's collectDefaultMetrics, which reads /proc and needs
  // permissions the binary does not have.
  new Gauge({
    name: "process_start_time_seconds",
    help: "Start time of the process since the Unix epoch, seconds.",
    registers,
  }).set(Math.round(performance.timeOrigin) / 1000);
  new Gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size, bytes.",
    registers,
    collect() {
      this.set(Deno.memoryUsage().rss);
    },
  });
  new Gauge({
    name: "kickmon_process_resident_memory_bytes",
    help: "Deprecated: the same as process_resident_memory_bytes (kept for existing dashboards).",
    registers,
    collect() {
      this.set(Deno.memoryUsage().rss);
    },
  });
  new Counter({
    name: "kickmon_log_lines_dropped_total",
    help: "Log lines dropped because the log destination failed (closed pipe, full disk) " +
      "or did not drain.",
    registers,
    collect() {
      this.reset();
      this.inc(logOutputStats().dropped);
    },
  });
  return {
    registry,
    eventsReceived: new Counter({
      name: "kickmon_events_received_total",
      help: "Status events received, by Kick event name and source.",
      labelNames: ["event", "source"],
      registers,
    }),
    framesMalformed: new Counter({
      name: "kickmon_frames_malformed_total",
      help: "Frames dropped as malformed, by reason.",
      labelNames: ["reason"],
      registers,
    }),
    eventsIgnored: new Counter({
      name: "kickmon_events_ignored_total",
      help: "Status events that changed nothing, by reason and source.",
      labelNames: ["reason", "source"],
      registers,
    }),
    transitions: new Counter({
      name: "kickmon_transitions_total",
      help: "Status transitions committed, by new status and source.",
      labelNames: ["status", "source"],
      registers,
    }),
    transitionsInferred: new Counter({
      name: "kickmon_transitions_inferred_total",
      help: "Transitions inferred from a Pusher frame for a newer livestream (a frame was lost), " +
        "by status and source.",
      labelNames: ["status", "source"],
      registers,
    }),
    eventToCommit: new Histogram({
      name: "kickmon_event_to_commit_seconds",
      help: "Time from receiving an event to committing its transition, seconds.",
      labelNames: ["source"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    reconnects: new Counter({
      name: "kickmon_pusher_reconnects_total",
      help: "Pusher reconnects, by reason.",
      labelNames: ["reason"],
      registers,
    }),
    apiRowsMalformed: new Counter({
      name: "kickmon_api_rows_malformed_total",
      help: "Elements of official API list answers skipped as malformed (the rest is used).",
      labelNames: ["endpoint"],
      registers,
    }),
    apiRequests: new Counter({
      name: "kickmon_api_requests_total",
      help: "Official API and OAuth requests, by endpoint and HTTP status code.",
      labelNames: ["endpoint", "code"],
      registers,
    }),
    reconciliations: new Counter({
      name: "kickmon_reconciliations_total",
      help: "Reconciliation passes against the official API, by outcome.",
      labelNames: ["outcome"],
      registers,
    }),
    reconcilePassSeconds: new Histogram({
      name: "kickmon_reconcile_pass_duration_seconds",
      help:
        "Duration of one reconciliation pass (first request to last answer applied), by reason.",
      labelNames: ["reason"],
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600],
      registers,
    }),
    reconcileCoverage: new Gauge({
      name: "kickmon_reconcile_pass_coverage_ratio",
      help: "Share of the active streamers with a broadcaster user id that the last completed " +
        "pass got an answer for (0–1).",
      registers,
    }),
    reconcileOverruns: new Counter({
      name: "kickmon_reconcile_pass_overruns_total",
      help:
        "Passes that took longer than MONITORING_RECONCILE_INTERVAL (the next one starts late).",
      registers,
    }),
    webhooks: new Counter({
      name: "kickmon_webhook_deliveries_total",
      help: "Webhook deliveries, by outcome.",
      labelNames: ["outcome"],
      registers,
    }),
  };
}
