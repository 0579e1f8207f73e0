/**
 * The official-API side of the monitor: the OAuth token, the API client with
 * its shared request budget, reconciliation, and (when enabled) the webhook
 * receiver with its subscription manager.
 *
 * With several instances on one database (issue 14) only the leader
 * (`monitor.leadership`) spends the API budget: each promotion starts a
 * term with its own {@linkcode Reconciler} (first pass at once, reason
 * `leader`), a webhook subscription sync with its 10-minute timer and list
 * hook, and the hourly purge of old webhook message ids; each demotion ends
 * them. Every API call of a term goes through `leaderOnly` and is refused
 * once the term is over. Webhook receiving and the token are every
 * instance's: a delivery may reach any of them, and a standby holding a
 * token takes over without an OAuth round trip.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Config } from "../config/config.ts";
import type { ExchangeObserver } from "../kick/http/exchange.ts";
import { KickApi } from "../kick/official/api.ts";
import { KickApiError } from "../kick/official/api_error.ts";
import { TokenProvider } from "../kick/official/oauth.ts";
import { InvalidCredentialsError } from "../kick/official/oauth_error.ts";
import { WebhookReceiver } from "../kick/official/webhook.ts";
import { explainNotCapable, NotPermittedError } from "../config/capability.ts";
import {
  claimWebhookMessage,
  purgeWebhookMessages,
  WEBHOOK_MESSAGE_RETENTION_MS,
} from "../db/webhook_messages.ts";
import { registerSecret } from "../log/logging.ts";
import { leaderOnly, NotLeaderError } from "./leader_gate.ts";
import type { Monitor, MonitorPlugin } from "./monitor.ts";
import { Reconciler, type ReconcileReason } from "./reconciler.ts";

const log = getLogger(["kickmon", "official"]);

/** Options for {@linkcode createKickApi}. */
export interface KickApiHooks {
  /** Each HTTP request: endpoint label, status (or `"error"`), duration ms. */
  readonly onRequest?: (endpoint: string, status: number | "error", ms: number) => void;
  /** Every answer of OAuth and the API, secrets taken out (`kickmon capture`). */
  readonly onExchange?: ExchangeObserver;
  /** Each skipped malformed element of a list answer. */
  readonly onMalformedRow?: (endpoint: string, issue: string) => void;
  /** One attempt per request, no retries (a diagnosis: `kickmon doctor`). */
  readonly oneShot?: boolean;
  /** Overrides `KICK_API_TIMEOUT`, ms. */
  readonly timeoutMs?: number;
}

/**
 * Builds the token provider and API client for a config (also used by the
 * CLI's `streamers add|test` and `doctor`). Every access token obtained is
 * registered as a secret (redacted from all output).
 *
 * @example
 * ```ts
 * const { api, tokens } = createKickApi(config);
 * console.log(await api.getChannels({ slugs: ["xqc"] }));
 * ```
 */
export function createKickApi(
  config: Config,
  hooks: KickApiHooks = {},
): { api: KickApi; tokens: TokenProvider } {
  const { onRequest, onMalformedRow, onExchange } = hooks;
  const timeoutMs = hooks.timeoutMs ?? config.kick.apiTimeoutMs;
  const tokens = new TokenProvider({
    oauthUrl: config.kick.oauthUrl,
    clientId: config.kick.clientId,
    clientSecret: config.kick.clientSecret,
    timeoutMs,
    onRequest,
    onExchange,
    ...(hooks.oneShot ? { maxAttempts: 1 } : {}),
  });
  const api = new KickApi({
    baseUrl: config.kick.apiUrl,
    tokens: {
      getToken: async () => {
        const t = await tokens.getToken();
        registerSecret(t);
        return t;
      },
      invalidate: (t) => tokens.invalidate(t),
    },
    maxRequestsPerMinute: config.kick.apiMaxRequestsPerMinute,
    timeoutMs,
    unofficialBaseUrl: config.kick.unofficialApiUrl,
    onRequest,
    onExchange,
    onMalformedRow,
    ...(hooks.oneShot ? { maxRetries: 0 } : {}),
  });
  return { api, tokens };
}

/**
 * Binds the webhook receiver's handler to an address and returns the running
 * server (`src/http/webhook_listener.ts` `serveWebhooks` in the program; the
 * HTTP layer sits above this one, so it is handed in, not imported).
 */
export type ServeWebhooks = (
  address: { readonly hostname: string; readonly port: number },
  handler: (req: Request) => Promise<Response>,
) => Deno.HttpServer;

/** What {@linkcode OfficialApiPlugin} is given besides the configuration. */
export interface OfficialApiPluginOptions {
  /** Starts the webhook listener; required when `KICK_WEBHOOK_ENABLED=true`. */
  readonly serveWebhooks?: ServeWebhooks;
}

/**
 * The plugin: install with
 * `monitor.use(new OfficialApiPlugin(config, { serveWebhooks }))`.
 * At start it fetches a token first: rejected credentials (`invalid_client`)
 * are a fatal configuration error, not a retry loop.
 *
 * @example
 * ```ts
 * import { serveWebhooks } from "../http/webhook_listener.ts";
 * monitor.use(new OfficialApiPlugin(config, { serveWebhooks }));
 * await monitor.start();
 * ```
 */
export class OfficialApiPlugin implements MonitorPlugin {
  readonly name = "official-api";
  readonly api: KickApi;
  readonly tokens: TokenProvider;
  reconciler: Reconciler | null = null;
  webhook: WebhookReceiver | null = null;
  #server: Deno.HttpServer | null = null;
  #subTimer: ReturnType<typeof setInterval> | undefined;
  #purgeTimer: ReturnType<typeof setInterval> | undefined;
  #subscriptionsPausedUntil = 0;
  #stopped = false;
  /** Unsubscribes the leadership hooks taken in {@linkcode start}. */
  readonly #unhook: Array<() => void> = [];
  /** Unsubscribes the hooks of the current leader term. */
  readonly #termUnhook: Array<() => void> = [];
  /** Counts leader terms; an API view of an ended term refuses every call. */
  #term = 0;
  readonly #config: Config;

  readonly #serveWebhooks: ServeWebhooks | undefined;
  /** The monitor's metrics once started (requests made before that are not counted). */
  #metrics: Monitor["metrics"] | undefined;

  constructor(config: Config, options: OfficialApiPluginOptions = {}) {
    this.#config = config;
    this.#serveWebhooks = options.serveWebhooks;
    const { api, tokens } = createKickApi(config, {
      onRequest: (endpoint, status) => {
        this.#metrics?.apiRequests.inc({ endpoint, code: String(status) });
      },
      onMalformedRow: (endpoint) => this.#metrics?.apiRowsMalformed.inc({ endpoint }),
    });
    this.api = api;
    this.tokens = tokens;
  }

  async start(monitor: Monitor): Promise<void> {
    this.#metrics = monitor.metrics;
    // Kept after stop(): /health still reports the token while the monitor shuts down.
    monitor.provideToken({
      state: () => {
        const t = this.tokens.state();
        // Retrying after a failure is still an outage, not a routine refresh.
        return t.state === "refreshing" && t.lastError ? "failing" : t.state;
      },
      health: () => {
        const t = this.tokens.state();
        const failing = t.lastError !== undefined;
        return {
          lastError: t.lastError ?? null,
          lastErrorAt: t.lastErrorAt ?? null,
          // Inside a refresh's backoff the provider knows; after it gave up,
          // the next reconciliation pass asks for a token again.
          nextRetryAt: t.nextAttemptAt ?? (failing ? this.reconciler?.nextPassAt ?? null : null),
          expiresAt: t.expiresAt ?? null,
        };
      },
      apiEndpoints: () => this.api.capabilities.snapshot(),
    });
    try {
      await this.tokens.getToken();
    } catch (e) {
      if (e instanceof InvalidCredentialsError) {
        throw new InvalidCredentialsError(
          e.code,
          "Kick rejected KICK_CLIENT_ID/KICK_CLIENT_SECRET (invalid_client): check the app credentials",
          { status: e.status, cause: e },
        );
      }
      const refused = explainNotCapable(e, this.#config);
      if (refused) throw new NotPermittedError(refused, { cause: e });
      log.error("cannot get a Kick access token yet (will retry): {error}", {
        error: e instanceof Error ? e.message : String(e),
      });
    }
    if (this.#stopped) return; // stopped while waiting for the first token
    if (this.#config.kick.webhook.enabled) this.#startWebhooks(monitor);
    const gate = monitor.leadership;
    this.#unhook.push(
      gate.onPromoted(() => this.#lead(monitor, "leader")),
      gate.onDemoted(() => void this.#standDown()),
    );
    if (gate.isLeader) this.#lead(monitor, "start");
  }

  /** Starts a leader term: reconciliation, and the webhook subscriptions and purge. */
  #lead(monitor: Monitor, reason: ReconcileReason): void {
    if (this.#stopped || this.reconciler) return;
    const term = ++this.#term;
    const api = leaderOnly(this.api, () => monitor.leadership.isLeader && this.#term === term);
    this.reconciler = new Reconciler(monitor, api, {
      intervalMs: this.#config.monitoring.reconcileIntervalMs,
      unofficialChannelLookup: this.#config.kick.unofficialChannelLookup,
    });
    this.reconciler.start(reason);
    if (!this.webhook) return;
    void this.#syncSubscriptions(monitor, api);
    // Kick drops subscriptions after a day of failed deliveries (docs/kick-protocol.md §4.7): re-check.
    this.#subTimer = setInterval(() => this.#syncSubscriptions(monitor, api), 10 * 60_000);
    this.#termUnhook.push(monitor.onListChanged(() => void this.#syncSubscriptions(monitor, api)));
    const purge = () =>
      purgeWebhookMessages(monitor.sql, WEBHOOK_MESSAGE_RETENTION_MS).catch((e) =>
        log.warn("purging old webhook message ids failed: {error}", { error: String(e) })
      );
    this.#purgeTimer = setInterval(purge, 3600_000);
  }

  /** Ends the leader term (a call in flight finishes; the next one is refused). */
  async #standDown(): Promise<void> {
    this.#term++;
    for (const off of this.#termUnhook.splice(0)) off();
    clearInterval(this.#subTimer);
    clearInterval(this.#purgeTimer);
    const r = this.reconciler;
    this.reconciler = null;
    await r?.stop();
  }

  /** The receiver and its listener: on every instance, leader or not. */
  #startWebhooks(monitor: Monitor): void {
    const w = this.#config.kick.webhook;
    this.webhook = new WebhookReceiver({
      onObservation: (obs) => {
        monitor.observe({ ...obs, receivedMono: performance.now() });
      },
      publicKeyPem: w.publicKeyPem ?? undefined,
      keySource: this.api,
      onOutcome: (outcome) => monitor.metrics.webhooks.inc({ outcome }),
      // Shared by every instance and kept across restarts (kickmon.webhook_messages).
      claim: (messageId) => claimWebhookMessage(monitor.sql, messageId),
    });
    if (!this.#serveWebhooks) {
      throw new Error("KICK_WEBHOOK_ENABLED=true but the plugin was given no webhook listener");
    }
    this.#server = this.#serveWebhooks(
      { hostname: w.hostname, port: w.port },
      this.webhook.handler,
    );
  }

  #syncing = false;
  /** `api` is the leader term's view: a demotion refuses its next call. */
  async #syncSubscriptions(monitor: Monitor, api: KickApi): Promise<void> {
    if (this.#syncing || Date.now() < this.#subscriptionsPausedUntil) return;
    this.#syncing = true;
    try {
      const existing = await api.listEventSubscriptions();
      const wanted = new Set(
        monitor.tracker.active().filter((s) => s.kickUserId !== null).map((s) => s.kickUserId!),
      );
      const have = new Map<number, string>();
      const stale: string[] = [];
      for (const s of existing) {
        if (s.event !== "livestream.status.updated") continue;
        if (wanted.has(s.broadcasterUserId) && !have.has(s.broadcasterUserId)) {
          have.set(s.broadcasterUserId, s.id);
        } else stale.push(s.id);
      }
      if (stale.length) {
        await api.deleteEventSubscriptions(stale);
        log.info("removed {count} webhook subscriptions of streamers no longer watched", {
          count: stale.length,
        });
      }
      let created = 0;
      for (const id of wanted) {
        if (have.has(id)) continue;
        try {
          await api.createEventSubscription(id);
          created++;
        } catch (e) {
          if (e instanceof KickApiError && e.kind === "subscription_limit") {
            log.error(
              "Kick's event subscription limit reached after {created} new subscriptions; " +
                "remaining streamers rely on Pusher and reconciliation",
              { created },
            );
            this.#subscriptionsPausedUntil = Date.now() + 60 * 60_000;
            break;
          }
          throw e;
        }
      }
      if (created) log.info("created {created} webhook subscriptions", { created });
    } catch (e) {
      if (e instanceof NotLeaderError) return; // stood down: the new leader syncs
      log.warn("webhook subscription sync failed: {error}", {
        error: e instanceof Error ? e.message : String(e),
      });
    } finally {
      this.#syncing = false;
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const off of this.#unhook.splice(0)) off();
    // No new passes; then closing the clients ends a pass in flight at once, even
    // one waiting minutes on the request budget (systemd's TimeoutStopSec is 20 s).
    const reconciling = this.#standDown();
    this.api.close();
    this.tokens.close();
    await reconciling;
    await this.#server?.shutdown();
  }
}
