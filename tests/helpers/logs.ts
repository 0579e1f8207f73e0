/**
 * Captures kickmon's LogTape records in memory for assertions.
 *
 * @module
 */
import { configure, type LogRecord, reset } from "@logtape/logtape";

/**
 * Routes every `kickmon.*` record (debug and up) into an array until the
 * returned `restore()` resets LogTape.
 *
 * @example
 * ```ts
 * const logs = await captureLogs();
 * try { … } finally { await logs.restore(); }
 * assert.ok(logs.records.length > 0);
 * ```
 */
export async function captureLogs(): Promise<{ records: LogRecord[]; restore(): Promise<void> }> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r) => records.push(r) },
    loggers: [
      { category: ["kickmon"], lowestLevel: "debug", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  return { records, restore: () => reset() };
}
