/**
 * The outage spool's file: transitions as JSON lines (one
 * {@linkcode Transition} per line, without `receivedMono`, a
 * `performance.now()` of the process that wrote it), every write fsynced.
 *
 * This module is the file I/O only: reading what a crash left, appending,
 * replacing the whole file atomically (temporary file, fsync, rename) and
 * truncating. When to append, rewrite or collapse (the spool bound, the
 * retry after ENOSPC) is the status writer's policy (`status_writer.ts`).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Transition } from "../core/types.ts";

const log = getLogger(["kickmon", "db", "writer"]);

/**
 * Serialises and appends transitions to `file`, fsynced.
 *
 * @returns bytes written (0 for no transitions, which writes nothing).
 * @throws {Error} what the write or fsync throws (e.g. ENOSPC, EIO).
 */
function writeLines(file: Deno.FsFile, ts: readonly Transition[]): number {
  if (ts.length === 0) return 0;
  // receivedMono is a performance.now() of this process: meaningless after a restart.
  const lines = ts.map(({ receivedMono: _m, ...rest }) => JSON.stringify(rest));
  const data = new TextEncoder().encode(lines.join("\n") + "\n");
  let off = 0;
  while (off < data.length) off += file.writeSync(data.subarray(off));
  file.syncDataSync();
  return data.length;
}

/**
 * One spool file and its open append handle (none until
 * {@linkcode SpoolFile.openForAppend} or a {@linkcode SpoolFile.rewrite}).
 *
 * @example
 * ```ts
 * const spool = new SpoolFile("./state/spool.jsonl");
 * const { transitions } = await spool.read(); // left by a crash
 * const bytes = spool.rewrite((put) => put(queue)); // exactly the queue, now open
 * spool.append([transition]); // bytes appended, fsynced
 * spool.truncate(); // the outage is over
 * ```
 */
export class SpoolFile {
  /** The spool's path. */
  readonly path: string;
  #file: Deno.FsFile | null = null;

  constructor(path: string) {
    this.path = path;
  }

  /** Whether an append handle is open (false after a failed write or rewrite). */
  get isOpen(): boolean {
    return this.#file !== null;
  }

  /**
   * Reads the spool; a line that does not parse (torn by a crash while
   * appending) is skipped with a warning. A missing file is empty.
   *
   * @returns the transitions, oldest first, and the file's size in bytes.
   * @throws {Deno.errors.PermissionDenied} when the spool cannot be read.
   */
  async read(): Promise<{ transitions: Transition[]; bytes: number }> {
    let text = "";
    try {
      text = await Deno.readTextFile(this.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const transitions: Transition[] = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        transitions.push(JSON.parse(line) as Transition);
      } catch {
        log.warn("spool: skipping a torn line (crash while appending)", { path: this.path });
      }
    }
    return { transitions, bytes: transitions.length ? new TextEncoder().encode(text).length : 0 };
  }

  /**
   * Opens the file for appending, created when missing; its content is kept.
   *
   * @throws what `Deno.open` throws.
   */
  async openForAppend(): Promise<void> {
    this.#file = await Deno.open(this.path, { append: true, create: true });
  }

  /**
   * Appends transitions, fsynced.
   *
   * @returns bytes written.
   * @throws {Error} when there is no open handle or the write fails (ENOSPC, EIO …);
   *   the append may be partial then: {@linkcode rewrite} the file.
   */
  append(ts: readonly Transition[]): number {
    if (!this.#file) throw new Error(`spool ${this.path} is not open`);
    return writeLines(this.#file, ts);
  }

  /**
   * Replaces the file atomically. The open handle is closed first; `fill`
   * gets `put(ts)`, which truncates a temporary file and writes `ts` to it
   * (fsynced; it may be called again, e.g. after collapsing the queue) and
   * returns its bytes. When `fill` returns, the temporary file is renamed
   * over the spool and becomes the append handle.
   *
   * @returns what `fill` returned.
   * @throws what a write, fsync or rename throws, or `fill` throws; the
   *   temporary file is removed then and no handle is open.
   */
  rewrite(fill: (put: (ts: readonly Transition[]) => number) => number): number {
    const tmp = `${this.path}.tmp`;
    let file: Deno.FsFile | null = null;
    try {
      this.close();
      const put = (ts: readonly Transition[]) => {
        file?.close();
        file = Deno.openSync(tmp, { write: true, create: true, truncate: true });
        return writeLines(file, ts);
      };
      const result = fill(put);
      Deno.renameSync(tmp, this.path);
      this.#file = file;
      file = null;
      return result;
    } catch (e) {
      try {
        (file as Deno.FsFile | null)?.close();
      } catch { /* gone */ }
      try {
        Deno.removeSync(tmp);
      } catch { /* never made */ }
      throw e;
    }
  }

  /** Closes the append handle, if any. Never throws. */
  close(): void {
    try {
      this.#file?.close();
    } catch { /* already closed */ }
    this.#file = null;
  }

  /** Closes the handle and empties the file (the queue it held was committed). Never throws. */
  truncate(): void {
    this.close();
    try {
      Deno.truncateSync(this.path, 0);
    } catch { /* gone */ }
  }
}
