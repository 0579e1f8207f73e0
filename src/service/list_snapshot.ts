/**
 * The saved copy of the streamer list (`streamers.json` in the state
 * directory, the tracker's {@linkcode StreamerRecord}s as one JSON array),
 * so that a monitor started during a database outage keeps listening
 * (README, "a monitor started during an outage keeps listening from a saved
 * copy of the list"). Written to a temporary file and renamed over the old
 * one; a failure to write is a warning, never an error.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { StreamerRecord } from "../core/types.ts";

const log = getLogger(["kickmon", "monitor"]);

/** Most one save per this many ms while the list changes. */
const SNAPSHOT_DELAY_MS = 1000;

/**
 * One snapshot file.
 *
 * @example
 * ```ts
 * const snapshot = new ListSnapshot("./state/streamers.json", () => tracker.records());
 * const rows = await snapshot.load(); // null when there is none
 * snapshot.schedule(); // saved within 1 s
 * await snapshot.flush(); // on stop: a scheduled save is done now
 * ```
 */
export class ListSnapshot {
  /** The file's path. */
  readonly path: string;
  readonly #records: () => readonly StreamerRecord[] | null;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param path where the snapshot lives.
   * @param records the list to save, or null while there is none worth
   *   saving (never save an empty guess before the list was loaded).
   */
  constructor(path: string, records: () => readonly StreamerRecord[] | null) {
    this.path = path;
    this.#records = records;
  }

  /** Saves the list within {@linkcode SNAPSHOT_DELAY_MS} (at most once per that time). */
  schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.save();
    }, SNAPSHOT_DELAY_MS);
  }

  /** Saves now. Never throws (a failure is logged). */
  async save(): Promise<void> {
    const records = this.#records();
    if (!records) return;
    const tmp = `${this.path}.tmp`;
    try {
      await Deno.writeTextFile(tmp, JSON.stringify(records));
      await Deno.rename(tmp, this.path);
    } catch (e) {
      log.warn("cannot save the streamer list snapshot: {error}", { error: String(e) });
    }
  }

  /**
   * Saves now, synchronously (the moment an outage starts, before anything
   * else can run). Never throws (a failure is logged).
   */
  saveSync(): void {
    const records = this.#records();
    if (!records) return;
    const tmp = `${this.path}.tmp`;
    try {
      Deno.writeTextFileSync(tmp, JSON.stringify(records));
      Deno.renameSync(tmp, this.path);
    } catch (e) {
      log.warn("cannot save the streamer list snapshot: {error}", { error: String(e) });
    }
  }

  /** Cancels a scheduled save and, if there was one, saves now (on stop). Never throws. */
  async flush(): Promise<void> {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.save();
  }

  /**
   * Reads the snapshot.
   *
   * @returns the saved records, or null when there is none or it cannot be read or parsed.
   */
  async load(): Promise<StreamerRecord[] | null> {
    try {
      return JSON.parse(await Deno.readTextFile(this.path)) as StreamerRecord[];
    } catch {
      return null;
    }
  }
}
