/**
 * `deno task demo [--no-view]` (`deno run -A dev/demo.ts [--no-view]`): the
 * real monitor against the built-in Kick simulator, so anyone can watch
 * kickmon work without a Kick app or any streamer list. A development tool,
 * not a command of the shipped binary: it needs the simulator and the
 * throwaway cluster from `dev/`, which the bundle does not carry.
 *
 * 1. A database: `DATABASE_URL` when set (its `streamers` table must be
 *    empty, so the demo never writes simulated statuses over real ones),
 *    otherwise a throwaway PostgreSQL cluster (`startThrowawayCluster`),
 *    otherwise a one-line explanation and exit 1.
 * 2. The simulator with a dozen made-up streamers (slugs, broadcaster user
 *    ids and channel ids all different, as on Kick), a few of them live.
 * 3. The schema (`migrate`) and those streamers in the `streamers` table.
 * 4. The monitor, configured from `sim.env()` + the database + a temporary
 *    state directory, under the live view (or, with `view: false`, logging
 *    to stdout as `kickmon start` does, plus one line per simulated change
 *    and per committed transition).
 * 5. Every `tickMs` one or two random streamers go live or offline.
 *
 * With `--replay DIR` (a `kickmon capture` directory), the simulator replays
 * that capture instead (`simulator/replay.ts`): the streamers are the
 * capture's, its API answers are given and its frames sent once the monitor
 * has subscribed (`--replay-speed N` divides the gaps), and nothing random
 * happens.
 *
 * On exit (`q`, Ctrl-C, SIGTERM) nothing is left behind: the simulator is
 * closed, the demo rows are deleted (external database) or the cluster is
 * stopped and deleted, and the temporary state directory is removed.
 *
 * Exit codes are kickmon's (`src/cli/errors.ts`): 0 after a clean stop, 1 a
 * failure, 2 a usage or configuration error.
 *
 * @example
 * ```sh
 * deno task demo              # the live view
 * deno task demo --no-view    # JSON log lines on stdout instead
 * deno task demo --no-view --replay state/captures/capture-2026-12-02T052504Z
 * ```
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { Command, CommanderError } from "commander";
import { loadConfig, readEnvironment } from "../src/config/config.ts";
import { EXIT, reportError } from "../src/cli/errors.ts";
import { runStart } from "../src/cli/start.ts";
import { connectDatabase, type Sql } from "../src/db/client.ts";
import { migrate } from "../src/db/migrate.ts";
import { countStreamers, deleteStreamers, insertStreamer } from "../src/db/streamers_repo.ts";
import { isPgServerInstalled, startThrowawayCluster, type ThrowawayCluster } from "./pg_cluster.ts";
import { setupLogging, shutdownLogging } from "../src/log/logging.ts";
import type { Monitor } from "../src/service/monitor.ts";
import { type Simulator, startSimulator } from "./simulator/simulator.ts";
import { runLiveView } from "../src/cli/manual.ts";

const log = getLogger(["kickmon", "demo"]);

/** The made-up streamers: slug, broadcaster user id, Pusher channel id (all different). */
export const DEMO_STREAMERS: ReadonlyArray<
  { readonly slug: string; readonly userId: number; readonly channelId: number }
> = [
  { slug: "pixelpanda", userId: 61_004_117, channelId: 2_400_311 },
  { slug: "nightowl_tv", userId: 61_004_254, channelId: 2_400_587 },
  { slug: "speedrunsam", userId: 61_004_391, channelId: 2_400_863 },
  { slug: "cozycrafter", userId: 61_004_528, channelId: 2_401_139 },
  { slug: "lofi_luna", userId: 61_004_665, channelId: 2_401_415 },
  { slug: "grandmaster_gg", userId: 61_004_802, channelId: 2_401_691 },
  { slug: "retro_rick", userId: 61_004_939, channelId: 2_401_967 },
  { slug: "chef_kaito", userId: 61_005_076, channelId: 2_402_243 },
  { slug: "arcticfox", userId: 61_005_213, channelId: 2_402_519 },
  { slug: "tacticaltea", userId: 61_005_350, channelId: 2_402_795 },
  { slug: "moonlit_mara", userId: 61_005_487, channelId: 2_403_071 },
  { slug: "turbotom", userId: 61_005_624, channelId: 2_403_347 },
];

/** The one-line explanation when no database can be had. */
export const NO_DATABASE_MESSAGE: string =
  "kickmon demo: needs PostgreSQL: install the server (apt-get install -y postgresql) " +
  "for a throwaway cluster, or set DATABASE_URL to an empty database";

/** Options for {@linkcode runDemo}. */
export interface DemoOptions {
  /** Open the live view (true) or log to stdout (false, `--no-view`). */
  readonly view: boolean;
  /** Period of the simulated changes, ms. Default 2000. */
  readonly tickMs?: number;
  /** Replay this capture directory instead of random changes (`kickmon capture --out`). */
  readonly replay?: string;
  /** Gaps between replayed frames are divided by this (default 1). */
  readonly replaySpeed?: number;
}

/**
 * Raised when the demo cannot set itself up (database, simulator); `cause`
 * is the underlying error.
 *
 * @example
 * ```ts
 * try { await runDemo({ view: false }); } catch (e) { if (e instanceof DemoError) console.error(e.message); }
 * ```
 */
export class DemoError extends Error {
  /**
   * Creates the error.
   *
   * @param message what failed, for one line on stderr.
   * @param options `cause`: the underlying error.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DemoError";
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
function freeLocalPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Environment variables the demo replaces (Kick, database, state, listeners). */
function isOverridden(name: string): boolean {
  return name.startsWith("KICK_") || name.startsWith("DATABASE_") ||
    name.startsWith("HEALTH_CHECK_") || name === "SYSTEM_STATE_DIRECTORY" ||
    name === "STATE_DIRECTORY";
}

/**
 * Runs the demo until `q`/Ctrl-C (view) or SIGINT/SIGTERM (`--no-view`),
 * then removes everything it made.
 *
 * @returns the exit code: 0 after a clean stop; 1 when no database can be
 *   had (a one-line explanation is printed), setup failed, or cleanup
 *   failed; 2 when the view is wanted but stdin/stdout is not a terminal.
 * @throws {ConfigError} when a variable the demo keeps (`MANUAL_MODE_*`,
 *   `MONITORING_*`, `SYSTEM_LOG_LEVEL`, …) is invalid.
 *
 * @example
 * ```ts
 * Deno.exit(await runDemo({ view: Deno.stdin.isTerminal() }));
 * ```
 */
export async function runDemo(opts: DemoOptions): Promise<number> {
  if (opts.view && (!Deno.stdin.isTerminal() || !Deno.stdout.isTerminal())) {
    console.error(
      "kickmon demo: the live view needs a terminal; use 'deno task demo --no-view' for log lines",
    );
    return EXIT.usage;
  }
  const externalUrl = Deno.env.get("DATABASE_URL")?.trim() || "";
  if (!externalUrl && !isPgServerInstalled()) {
    console.error(NO_DATABASE_MESSAGE);
    return EXIT.failure;
  }

  const keptEnv = Object.fromEntries(
    Object.entries(readEnvironment()).filter(([k]) => !isOverridden(k)),
  );
  // Validate the variables the demo keeps before making anything.
  const baseLogConfig = loadConfig({ ...keptEnv, KICK_CLIENT_ID: "-", KICK_CLIENT_SECRET: "-" });

  // A signal during set-up (before runStart listens) must still clean up.
  let interrupted = false;
  let stop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (stop = resolve));
  const onSignal = () => {
    interrupted = true;
    stop();
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);

  // A log line already names its logger (kickmon.demo): no "kickmon demo:" twice.
  const say = (line: string) => {
    if (!opts.view) log.info(line.replace(/^kickmon demo: /, ""));
    else console.error(line);
  };
  if (!opts.view) {
    await setupLogging({
      level: baseLogConfig.system.logLevel,
      json: baseLogConfig.system.jsonLogging,
    });
  }

  let cluster: ThrowawayCluster | null = null;
  let sim: Simulator | null = null;
  let stateDir: string | null = null;
  let sql: Sql | null = null;
  let ticker: ReturnType<typeof setInterval> | undefined;
  const inserted: number[] = [];
  let code: number = EXIT.ok;
  try {
    let url = externalUrl;
    if (!url) {
      say("kickmon demo: starting a throwaway PostgreSQL cluster…");
      try {
        cluster = await startThrowawayCluster();
      } catch (e) {
        throw new DemoError(`could not start a throwaway PostgreSQL cluster: ${errText(e)}`, {
          cause: e,
        });
      }
      url = cluster.url;
      say(`kickmon demo: PostgreSQL ${cluster.version} on 127.0.0.1:${cluster.port}`);
    }
    if (interrupted) throw new Interrupted();
    stateDir = await Deno.makeTempDir({ prefix: "kickmon-demo-" });
    sim = await startSimulator(
      opts.replay ? { replay: { dir: opts.replay, speed: opts.replaySpeed } } : {},
    );
    const world = sim.world;
    const streamers = sim.replay ? replayStreamers(sim) : DEMO_STREAMERS;
    if (sim.replay) {
      say(
        `kickmon demo: replaying ${opts.replay}: ${streamers.length} streamer(s), ` +
          `${sim.replay.frames.length} frame(s), ${sim.replay.answers.length} API answer(s)`,
      );
    } else {
      for (const [i, s] of DEMO_STREAMERS.entries()) {
        world.add({ ...s, live: i % 4 === 0, title: `${s.slug} (simulated)` });
      }
    }

    const config = loadConfig({
      ...keptEnv,
      ...sim.env(),
      DATABASE_URL: url,
      SYSTEM_STATE_DIRECTORY: stateDir,
      // /health and /metrics of the demo's monitor, on a free port (said below).
      HEALTH_CHECK_ENABLED: "true",
      HEALTH_CHECK_LISTEN: `127.0.0.1:${freeLocalPort()}`,
      KICK_WEBHOOK_ENABLED: "false",
    });
    say(
      `kickmon demo: health and metrics on http://127.0.0.1:${config.health.port}/health ` +
        `and /metrics`,
    );
    sql = connectDatabase(config.database, { max: 2 });
    try {
      await migrate(sql, { appSchema: config.database.schema });
      const n = await countStreamers(sql);
      if (n > 0) {
        throw new DemoError(
          `the streamers table at DATABASE_URL has ${n} rows; the demo would write simulated ` +
            "statuses into it: use an empty database, or unset DATABASE_URL for a throwaway cluster",
        );
      }
      for (const s of streamers) {
        inserted.push(
          await insertStreamer(sql, {
            username: s.slug,
            kickUserId: s.userId,
            kickChannelId: s.channelId,
          }),
        );
      }
    } catch (e) {
      if (e instanceof DemoError) throw e;
      throw new DemoError(`preparing the demo database failed: ${errText(e)}`, { cause: e });
    }
    if (interrupted) throw new Interrupted();

    const flip = () => {
      const all = world.all();
      const n = Math.random() < 0.5 ? 1 : 2;
      for (let k = 0; k < n && all.length; k++) {
        const [s] = all.splice(Math.floor(Math.random() * all.length), 1);
        world.setLive(s.userId, !s.live);
        if (!opts.view) {
          log.info("simulated Kick: {slug} {what}", {
            slug: s.slug,
            what: s.live ? "went live" : "went offline",
          });
        }
      }
    };
    const prepare = (monitor: Monitor) => {
      if (!opts.view) {
        monitor.onTransition((r) => {
          for (const c of r.committed) {
            const t = c.transition;
            log.info("{username}: {from} -> {to} ({source})", {
              username: monitor.tracker.get(t.streamerId)?.username ?? `#${t.streamerId}`,
              from: c.previousStatus,
              to: t.status,
              source: t.source,
            });
          }
        });
      }
      if (!opts.replay) ticker = setInterval(flip, opts.tickMs ?? 2000);
    };
    if (opts.view) {
      code = await runLiveView({
        config,
        title: "kickmon demo (simulated Kick)",
        prepare,
        stopRequested,
      });
    } else {
      code = await runStart({ config, prepare, stopRequested, loggingConfigured: true });
    }
  } catch (e) {
    if (!(e instanceof Interrupted)) {
      const msg = e instanceof DemoError ? e.message : `the demo failed: ${errText(e)}`;
      console.error(`kickmon demo: ${msg}`);
      code = EXIT.failure;
    }
  } finally {
    clearInterval(ticker);
    const failures: string[] = [];
    const step = async (what: string, f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (e) {
        failures.push(`${what}: ${errText(e)}`);
      }
    };
    if (sim) await step("closing the simulator", () => sim!.close());
    if (sql) {
      if (!cluster && inserted.length) {
        await step(
          "removing the demo streamers",
          () => deleteStreamers(sql!, { ids: inserted }),
        );
      }
      await step("closing the database", () => sql!.end({ timeout: 2 }));
    }
    if (cluster) await step("removing the PostgreSQL cluster", () => cluster!.stop());
    if (stateDir) {
      await step("removing the state directory", () => Deno.remove(stateDir!, { recursive: true }));
    }
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    if (failures.length) {
      for (const f of failures) console.error(`kickmon demo: cleanup: ${f}`);
      if (code === EXIT.ok) code = EXIT.failure;
    } else if (!opts.view) {
      log.info("cleaned up (simulator closed, temporary files removed)");
    }
    if (!opts.view) await shutdownLogging();
  }
  return code;
}

/** The streamers of a replayed capture that the monitor can follow (a broadcaster user id known). */
function replayStreamers(
  sim: Simulator,
): { slug: string; userId: number; channelId: number | undefined }[] {
  return sim.replay!.manifest.streamers.filter((s) => s.kick_user_id !== null).map((s) => ({
    slug: s.username ?? `user-${s.kick_user_id}`,
    userId: s.kick_user_id!,
    channelId: s.kick_channel_id ?? undefined,
  }));
}

/** Thrown inside the set-up when SIGINT/SIGTERM arrived: stop setting up, clean up, exit 0. */
class Interrupted extends Error {}

function errText(e: unknown): string {
  return e instanceof Error ? e.message.split("\n")[0] : String(e);
}

/**
 * The demo's command line: `[--no-view]`, `--help`. Errors are reported as
 * every kickmon command reports them (`reportError`).
 *
 * @param args the arguments after `dev/demo.ts` (`deno task demo` passes its own).
 * @returns the exit code: {@linkcode runDemo}'s, 0 for `--help`, 2 for a
 *   usage or configuration error.
 *
 * @example
 * ```ts
 * Deno.exit(await main(["--no-view"]));
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command()
    .name("deno task demo")
    .summary("watch kickmon work against a built-in Kick simulator (no Kick app needed)")
    .description(
      "run the real monitor against a built-in Kick simulator (a dozen made-up streamers " +
        "going live and offline) with the live view; uses DATABASE_URL (an empty database) " +
        "or a throwaway PostgreSQL cluster, and removes everything on exit",
    )
    .option("--no-view", "log to stdout as 'kickmon start' does instead of the live view")
    .option("--replay <dir>", "replay a 'kickmon capture' directory instead of random changes")
    .option("--replay-speed <n>", "divide the gaps between replayed frames by n (default 1)")
    .exitOverride()
    .showHelpAfterError("(run 'deno task demo --help' for usage)")
    .action(async (opts: { view: boolean; replay?: string; replaySpeed?: string }) => {
      const speed = opts.replaySpeed === undefined ? undefined : Number(opts.replaySpeed);
      if (speed !== undefined && !(speed > 0)) {
        console.error(
          `deno task demo: --replay-speed: expected a number > 0, got '${opts.replaySpeed}'`,
        );
        code = EXIT.usage;
        return;
      }
      code = await runDemo({ view: opts.view, replay: opts.replay, replaySpeed: speed });
    });
  try {
    await program.parseAsync([...args], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === "commander.helpDisplayed" ? EXIT.ok : EXIT.usage;
    }
    return reportError(e);
  }
  return code;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
