import assert from "node:assert/strict";
import type { LogLevel, LogRecord } from "@logtape/logtape";
import { createFormatter, renderValue, stdoutIsJournal } from "./format.ts";
import { describeError, networkCause } from "./errors.ts";

/** A record as LogTape builds it for `log.<level>(template, props)`. */
function rec(level: LogLevel, template: string, props: Record<string, unknown> = {}): LogRecord {
  const message: unknown[] = [];
  let rest = template;
  for (;;) {
    const m = rest.match(/\{(\w+)\}/);
    if (!m) break;
    message.push(rest.slice(0, m.index), props[m[1]]);
    rest = rest.slice(m.index! + m[0].length);
  }
  message.push(rest);
  return {
    category: ["kickmon", "test"],
    level,
    message,
    rawMessage: template,
    properties: props,
    timestamp: Date.UTC(2025, 0, 2, 3, 4, 5, 678),
  };
}

Deno.test("format: values in messages are text, not quoted JSON", () => {
  const plain = createFormatter({ json: false, journal: false });
  assert.equal(
    plain(rec("info", "health and metrics on http://{hostname}:{port}/health", {
      hostname: "127.0.0.1",
      port: 8080,
    })),
    "2025-01-02 03:04:05.678 +00 [INF] kickmon.test: health and metrics on http://127.0.0.1:8080/health\n",
  );
  const json = createFormatter({ json: true, journal: false });
  const line = JSON.parse(json(rec("info", "{reason}: shutting down", { reason: "SIGTERM" })));
  assert.equal(line.message, "SIGTERM: shutting down");
  assert.equal(line.reason, "SIGTERM");
  assert.equal(line.level, "INFO");
  assert.equal(line.logger, "kickmon.test");
  assert.equal(line["@timestamp"], "2025-01-02T03:04:05.678Z");
  const hint = JSON.parse(json(rec("warning", "reconcile failed: {error}{hint}", {
    error: "HTTP 500",
    hint: "",
  })));
  assert.equal(hint.message, "reconcile failed: HTTP 500", "an empty hint renders as nothing");
  assert.equal(hint.level, "WARN");
  assert.equal(renderValue(["KICK_API_URL", "DATABASE_PORT"]), "KICK_API_URL, DATABASE_PORT");
  const clash = JSON.parse(json(rec("info", "memory: {message}", { message: "163 MiB" })));
  assert.equal(clash.message, "memory: 163 MiB", "a property cannot replace the line's message");
  assert.equal(clash.message_, "163 MiB");
  assert.equal(renderValue({ kickUserId: 1 }), '{"kickUserId":1}');
  assert.equal(renderValue(null), "");
});

Deno.test("format: an Error renders with its causes, in the message and as a JSON property", () => {
  const err = new TypeError("fetch failed", {
    cause: new Error(
      "error sending request for url (https://id.kick.com/oauth/token): client error (Connect): " +
        "dns error: failed to lookup address information: Name or service not known",
    ),
  });
  assert.equal(
    describeError(err),
    "fetch failed: dns error: failed to lookup address information: Name or service not known",
  );
  assert.equal(
    networkCause(err),
    "dns error: failed to lookup address information: Name or service not known",
  );
  const json = createFormatter({ json: true, journal: false });
  const line = JSON.parse(json(rec("error", "token: {error}", { error: err })));
  assert.match(line.message, /^token: fetch failed: dns error/);
  assert.equal(line.error, describeError(err), "not {} as LogTape would serialise it");
  // A cause the message already quotes is not repeated.
  assert.equal(describeError(new Error("a: b", { cause: new Error("b") })), "a: b");
});

Deno.test("format: journald lines carry their syslog priority, plain ones drop the timestamp", () => {
  const plain = createFormatter({ json: false, journal: true });
  const levels: [LogLevel, string][] = [
    ["fatal", "<2>[FTL]"],
    ["error", "<3>[ERR]"],
    ["warning", "<4>[WRN]"],
    ["info", "<6>[INF]"],
    ["debug", "<7>[DBG]"],
    ["trace", "<7>[TRC]"],
  ];
  for (const [level, start] of levels) {
    assert.equal(plain(rec(level, "x")), `${start} kickmon.test: x\n`);
  }
  assert.equal(
    plain(rec("error", "boom\n    at f (x.ts:1:1)")),
    "<3>[ERR] kickmon.test: boom\n<3>    at f (x.ts:1:1)\n",
    "every line of a multi-line message keeps its priority",
  );
  const json = createFormatter({ json: true, journal: true })(rec("warning", "w"));
  assert.match(json, /^<4>\{"@timestamp":"2025-01-02T03:04:05\.678Z","level":"WARN","message":"w"/);
});

Deno.test("format: JOURNAL_STREAM counts only when it names stdout", async () => {
  assert.equal(stdoutIsJournal(undefined), false);
  assert.equal(stdoutIsJournal("garbage"), false);
  // This test process's stdout, whatever it is (a pipe under deno test).
  const st = await Deno.stat("/dev/stdout");
  assert.equal(stdoutIsJournal(`${st.dev}:${st.ino}`), true);
  assert.equal(
    stdoutIsJournal(`${st.dev}:${(st.ino ?? 0) + 1}`),
    false,
    "inherited, stdout elsewhere",
  );
});
