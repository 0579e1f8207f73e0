/**
 * The live view's terminal side: takes over the terminal (alternate screen,
 * raw keyboard, hidden cursor, no auto-wrap), redraws every
 * `MANUAL_MODE_REFRESH_RATE` ms from a running {@linkcode Monitor}, handles
 * keys and `SIGWINCH`, and gives the terminal back exactly as it found it on
 * every exit path ({@linkcode LiveView.close} is idempotent and also runs on
 * the process's `unload` event).
 *
 * What is drawn is decided by the pure `render.ts`; this module only
 * gathers the {@linkcode ViewModel} and writes frames.
 *
 * @module
 */
import type { CommitResult } from "../db/status_writer.ts";
import { logOutputStats } from "../log/logging.ts";
import type { Monitor } from "../service/monitor.ts";
import { TERM } from "./ansi.ts";
import { type Key, parseKeys } from "./keys.ts";
import { RateMeter } from "./rate.ts";
import {
  type RecentChange,
  renderScreen,
  type SortKey,
  type ViewModel,
  type ViewState,
} from "./render.ts";

/** The terminal the view draws on; the default is the process's own. */
export interface ViewTerminal {
  /** Writes text (escape sequences included) completely. */
  write(text: string): void;
  /** Current size in columns and rows. */
  size(): { columns: number; rows: number };
  /** Switches raw mode (no echo, no line buffering, Ctrl-C as a byte). */
  setRaw(raw: boolean): void;
  /** Key bytes as they are typed. */
  readonly input: ReadableStream<Uint8Array>;
  /** Subscribes to size changes; returns an unsubscribe function. */
  onResize(listener: () => void): () => void;
}

/**
 * The process's terminal (stdin/stdout, `SIGWINCH`).
 *
 * @throws {Deno.errors.BadResource} from `setRaw` when stdin is not a terminal.
 * @example
 * ```ts
 * const term = processTerminal();
 * term.write("\x1b[2J");
 * ```
 */
export function processTerminal(): ViewTerminal {
  const enc = new TextEncoder();
  return {
    write(text) {
      const bytes = enc.encode(text);
      let off = 0;
      while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
    },
    size() {
      try {
        return Deno.consoleSize();
      } catch {
        return { columns: 80, rows: 24 };
      }
    },
    setRaw(raw) {
      Deno.stdin.setRaw(raw);
    },
    get input() {
      return Deno.stdin.readable;
    },
    onResize(listener) {
      Deno.addSignalListener("SIGWINCH", listener);
      return () => Deno.removeSignalListener("SIGWINCH", listener);
    },
  };
}

/** Options for {@linkcode LiveView}. */
export interface LiveViewOptions {
  /** Shown first on the top line, e.g. `kickmon live view`. */
  readonly title: string;
  /** Where the logs go (shown in the footer). */
  readonly logPath: string;
  /** Redraw period, ms (`MANUAL_MODE_REFRESH_RATE`). */
  readonly refreshRateMs: number;
  /** Most table rows at once (`MANUAL_MODE_MAX_STREAMERS`). */
  readonly maxRows: number;
  /** Colour escapes allowed (false under `NO_COLOR`). */
  readonly color: boolean;
  /** Default: {@linkcode processTerminal}. */
  readonly terminal?: ViewTerminal;
  /** Events/s window, ms. Default 10 000. */
  readonly rateWindowMs?: number;
}

/**
 * Raised (through {@linkcode LiveView.failed}) when drawing or reading keys
 * fails, e.g. the terminal went away; `cause` is the underlying error.
 *
 * @example
 * ```ts
 * view.failed.then((e) => console.error(e.message, e.cause));
 * ```
 */
export class LiveViewError extends Error {
  /**
   * Creates the error.
   *
   * @param message what failed.
   * @param options `cause`: the underlying error.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LiveViewError";
  }
}

const MAX_RECENT = 50;
const CRASH_EVENTS = ["unload", "error", "unhandledrejection"] as const;

/** What to show when log lines are not written: `{ logProblem }`, or nothing when fine. */
function logProblem(): { logProblem?: string } {
  const s = logOutputStats();
  if (s.state === "ok") return {};
  return { logProblem: `${s.lastError ?? "write failed"}; ${s.dropped} lines dropped` };
}

/**
 * One live view over one monitor.
 *
 * @example
 * ```ts
 * const view = new LiveView({ title: "kickmon live view", logPath, refreshRateMs: 1000,
 *   maxRows: 50, color: true });
 * view.open();
 * try {
 *   await runStart({ config, loggingConfigured: true, stopRequested: view.stopRequested,
 *     prepare: (m) => view.attach(m) });
 * } finally {
 *   view.close();
 * }
 * ```
 */
export class LiveView {
  readonly #o: LiveViewOptions;
  readonly #term: ViewTerminal;
  #monitor: Monitor | null = null;
  #state: ViewState = { sort: "status", reverse: false, offset: 0, help: false };
  #pageRows = 1;
  #maxOffset = 0;
  #phase: ViewModel["phase"] = "starting";
  #recent: RecentChange[] = [];
  #recentCleared = false;
  readonly #rate: RateMeter;
  #timer: ReturnType<typeof setInterval> | undefined;
  #unsubscribeResize: (() => void) | null = null;
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  #opened = false;
  #closed = false;
  #drawing: Promise<void> | null = null;
  #drawAgain = false;
  #clearNext = true;
  #quit!: () => void;
  #fail!: (e: LiveViewError) => void;
  #failure: LiveViewError | null = null;
  readonly #onUnload = () => this.close();

  /** Resolves when the person asks to quit (`q`, Ctrl-C) or the view fails. */
  readonly stopRequested: Promise<void>;
  /** Resolves with the error when the view cannot go on (it then also requests a stop). */
  readonly failed: Promise<LiveViewError>;

  /** Creates the view; nothing happens to the terminal until {@linkcode open}. */
  constructor(options: LiveViewOptions) {
    this.#o = options;
    this.#term = options.terminal ?? processTerminal();
    this.#rate = new RateMeter(options.rateWindowMs ?? 10_000);
    const quit = new Promise<void>((resolve) => (this.#quit = resolve));
    this.failed = new Promise<LiveViewError>((resolve) => (this.#fail = resolve));
    this.stopRequested = Promise.race([quit, this.failed.then(() => {})]);
  }

  /** The error that ended the view, if any. */
  get failure(): LiveViewError | null {
    return this.#failure;
  }

  /** The current sort, order, scroll offset and help flag (for tests). */
  get state(): ViewState {
    return this.#state;
  }

  /**
   * Connects the view to a monitor (call in `runStart`'s `prepare`, before
   * the monitor starts): recent changes come from `onTransition`; the
   * `starting` phase ends when the list is first loaded or `Monitor.start()`
   * completes (a plugin named `live-view` marks that).
   */
  attach(monitor: Monitor): void {
    this.#monitor = monitor;
    const running = () => {
      if (this.#phase === "starting") {
        this.#phase = "running";
        this.redraw();
      }
    };
    monitor.onListChanged(running);
    monitor.onTransition((r) => this.#onTransition(r));
    // Non-early plugins start last in `Monitor.start()`: then the monitor is running.
    monitor.use({ name: "live-view", start: running, stop: () => {} });
  }

  #onTransition(r: CommitResult): void {
    if (r.committed.length === 0) return;
    const at = Date.now();
    for (const c of r.committed) {
      const t = c.transition;
      this.#recent.unshift({
        at,
        streamerId: t.streamerId,
        username: this.#monitor?.tracker.get(t.streamerId)?.username ?? null,
        from: c.previousStatus,
        to: t.status,
        source: t.source,
      });
    }
    if (this.#recent.length > MAX_RECENT) this.#recent.length = MAX_RECENT;
    this.#recentCleared = false;
  }

  /**
   * Takes over the terminal and starts drawing, reading keys and following
   * resizes. Call once.
   *
   * @throws {LiveViewError} when the terminal cannot be switched to raw mode
   *   (the terminal is restored first).
   */
  open(): void {
    if (this.#opened) throw new LiveViewError("the live view is already open");
    this.#opened = true;
    // Give the terminal back before Deno prints an uncaught error (or exits), so the
    // message lands on the main screen; the default handling is left untouched.
    for (const ev of CRASH_EVENTS) globalThis.addEventListener(ev, this.#onUnload);
    try {
      this.#term.setRaw(true);
      this.#term.write(TERM.altScreenOn + TERM.cursorHide + TERM.wrapOff + TERM.clearScreen);
    } catch (e) {
      this.close();
      throw new LiveViewError(`cannot take over the terminal: ${String(e)}`, { cause: e });
    }
    this.#unsubscribeResize = this.#term.onResize(() => {
      this.#clearNext = true;
      this.redraw();
    });
    this.#timer = setInterval(() => this.redraw(), this.#o.refreshRateMs);
    this.#readKeys();
    this.redraw();
  }

  async #readKeys(): Promise<void> {
    try {
      this.#reader = this.#term.input.getReader();
      for (;;) {
        const { value, done } = await this.#reader.read();
        if (done) {
          if (!this.#closed) this.#requestQuit(); // the terminal went away
          return;
        }
        for (const k of parseKeys(value)) this.handleKey(k);
      }
    } catch (e) {
      if (!this.#closed) this.#failWith(new LiveViewError("reading keys failed", { cause: e }));
    }
  }

  #requestQuit(): void {
    if (this.#phase !== "stopping") {
      this.#phase = "stopping";
      this.redraw();
    }
    this.#quit();
  }

  #failWith(e: LiveViewError): void {
    if (this.#failure) return;
    this.#failure = e;
    this.#phase = "stopping";
    this.#fail(e);
  }

  #sortBy(sort: SortKey): void {
    const s = this.#state;
    this.#state = s.sort === sort
      ? { ...s, reverse: !s.reverse, offset: 0 }
      : { ...s, sort, reverse: false, offset: 0 };
  }

  #scroll(by: number | "home" | "end"): void {
    const s = this.#state;
    const offset = by === "home" ? 0 : by === "end" ? this.#maxOffset : s.offset + by;
    this.#state = { ...s, offset: Math.min(Math.max(0, offset), this.#maxOffset) };
  }

  /**
   * Applies one key press (public for tests; the view's own key reader calls it).
   *
   * @example
   * ```ts
   * view.handleKey({ kind: "char", char: "u" }); // sort by username
   * ```
   */
  handleKey(k: Key): void {
    if (k.kind === "ctrl-c" || (k.kind === "char" && (k.char === "q" || k.char === "Q"))) {
      this.#requestQuit();
      return;
    }
    if (this.#state.help) {
      // Any key closes the help; `h`/`?` toggle it anyway.
      this.#state = { ...this.#state, help: false };
      this.redraw();
      return;
    }
    if (k.kind === "char") {
      switch (k.char.toLowerCase()) {
        case "r":
          this.#clearNext = true;
          break;
        case "s":
          this.#sortBy("status");
          break;
        case "u":
          this.#sortBy("username");
          break;
        case "t":
          this.#sortBy("updated");
          break;
        case "c":
          this.#recent = [];
          this.#recentCleared = true;
          this.#clearNext = true;
          break;
        case "h":
        case "?":
          this.#state = { ...this.#state, help: true };
          break;
        default:
          return;
      }
    } else if (k.kind === "up") this.#scroll(-1);
    else if (k.kind === "down") this.#scroll(1);
    else if (k.kind === "pageUp") this.#scroll(-this.#pageRows);
    else if (k.kind === "pageDown") this.#scroll(this.#pageRows);
    else if (k.kind === "home") this.#scroll("home");
    else if (k.kind === "end") this.#scroll("end");
    else return;
    this.redraw();
  }

  /** Builds the model from the monitor (or an empty one before {@linkcode attach}). */
  async #model(): Promise<ViewModel> {
    const m = this.#monitor;
    const now = Date.now();
    if (!m) {
      return {
        now,
        phase: this.#phase,
        title: this.#o.title,
        rows: [],
        counts: { online: 0, offline: 0, unknown: 0, inactive: 0 },
        shards: [],
        eventsPerSec: 0,
        database: { up: false },
        token: "-",
        queueDepth: 0,
        recent: this.#recent,
        recentCleared: this.#recentCleared,
        logPath: this.#o.logPath,
      };
    }
    const received = await m.metrics.eventsReceived.get();
    this.#rate.add(performance.now(), received.values.reduce((n, v) => n + v.value, 0));
    const health = m.health();
    return {
      now,
      phase: this.#phase,
      title: this.#o.title,
      rows: m.tracker.active().map((r) => ({
        id: r.id,
        username: r.username,
        status: r.belief,
        lastChangeAt: r.statusObservedAt,
      })),
      counts: m.tracker.counts(),
      shards: health.pusher.shards.map((s) => ({
        index: s.index,
        state: s.state,
        channels: s.channels,
        subscribed: s.subscribed,
      })),
      eventsPerSec: this.#rate.perSecond(),
      database: health.database,
      token: health.token.state,
      role: { role: health.leadership.role, leader: health.leadership.leader },
      queueDepth: health.writeQueueDepth,
      recent: this.#recent,
      recentCleared: this.#recentCleared,
      logPath: this.#o.logPath,
      ...logProblem(),
    };
  }

  /**
   * Redraws soon (coalesces with a draw in progress). Errors end the view
   * through {@linkcode failed}.
   */
  redraw(): void {
    if (!this.#opened || this.#closed) return;
    if (this.#drawing) {
      this.#drawAgain = true;
      return;
    }
    this.#drawing = (async () => {
      do {
        this.#drawAgain = false;
        try {
          const model = await this.#model();
          if (this.#closed) return;
          this.#draw(model);
        } catch (e) {
          this.#failWith(
            new LiveViewError(`drawing the live view failed: ${String(e)}`, {
              cause: e,
            }),
          );
          return;
        }
      } while (this.#drawAgain && !this.#closed);
    })().finally(() => (this.#drawing = null));
  }

  #draw(model: ViewModel): void {
    const { columns, rows } = this.#term.size();
    const screen = renderScreen(model, this.#state, {
      width: columns,
      height: rows,
      color: this.#o.color,
      maxRows: this.#o.maxRows,
    });
    this.#pageRows = screen.pageRows;
    this.#maxOffset = screen.maxOffset;
    if (screen.offset !== this.#state.offset) {
      this.#state = { ...this.#state, offset: screen.offset };
    }
    let frame = this.#clearNext ? TERM.clearScreen : "";
    this.#clearNext = false;
    screen.lines.forEach((line, i) => {
      frame += TERM.moveTo(i + 1) + TERM.clearLine + line;
    });
    if (screen.lines.length < rows) frame += TERM.moveTo(screen.lines.length + 1) + TERM.clearBelow;
    this.#term.write(frame);
  }

  /**
   * Gives the terminal back: stops drawing and reading keys, leaves the
   * alternate screen, shows the cursor, re-enables auto-wrap and turns raw
   * mode off. Idempotent; never throws.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    for (const ev of CRASH_EVENTS) globalThis.removeEventListener(ev, this.#onUnload);
    try {
      this.#unsubscribeResize?.();
    } catch { /* already removed */ }
    if (this.#opened) {
      try {
        this.#term.write(
          TERM.reset + TERM.wrapOn + TERM.cursorShow + TERM.altScreenOff,
        );
      } catch { /* the terminal is gone */ }
      try {
        this.#term.setRaw(false);
      } catch { /* not a terminal any more */ }
    }
    this.#reader?.cancel().catch(() => {});
    this.#reader = null;
  }
}
