/**
 * The contract suite's shared machinery: the run's {@linkcode ContractRun}
 * (target, redactor, report, what earlier contracts found), one raw HTTP
 * exchange ({@linkcode exchange}), strict validation helpers that report
 * every zod issue with the raw JSON ({@linkcode parseJson},
 * {@linkcode checkSchema}, {@linkcode checkRows}), and
 * {@linkcode runContract}, which turns one contract into one test step.
 *
 * The program tolerates a malformed list element (kick-protocol.md §10.4);
 * the contract does not: {@linkcode checkRows} fails on any element that
 * does not parse.
 *
 * @module
 */
import type { z } from "zod";
import { ListEnvelopeWire } from "../../src/kick/official/wire.ts";
import { ContractFailure, type ContractReport, ContractSkip, type Redactor } from "./report.ts";
import type { ContractTarget } from "./target.ts";

/** What earlier contracts found out, for the later ones. */
export interface Found {
  /** Access token from the OAuth contract. */
  token?: string;
  /** Slug being looked at (the target's streamer, or a live one from `/livestreams`). */
  slug?: string;
  /** Its broadcaster user id, from `/channels`. */
  userId?: number;
  /** A Pusher channel id and where it came from. */
  channel?: { id: number; userId: number; slug: string; from: string };
}

/** One run of the suite. */
export interface ContractRun {
  /** What is tested. */
  readonly target: ContractTarget;
  /** Hides the secret and every token obtained. */
  readonly redactor: Redactor;
  /** Where outcomes go. */
  readonly report: ContractReport;
  /** Shared findings. */
  readonly found: Found;
}

/** One HTTP answer, read whole. */
export interface Exchange {
  /** e.g. `GET /public/v1/channels?slug=xqc` (host left out; never a secret). */
  readonly endpoint: string;
  /** HTTP status. */
  readonly status: number;
  /** The body as text. */
  readonly text: string;
  /** Response headers. */
  readonly headers: Headers;
}

/**
 * One HTTP request with a timeout; the body is always read.
 *
 * @param init `method`, `headers`, `body` as for `fetch`.
 * @throws {Error} naming the endpoint when no answer arrives (network, timeout).
 * @example
 * ```ts
 * const x = await exchange(run, new URL("https://api.kick.com/public/v1/public-key"), {});
 * ```
 */
export async function exchange(run: ContractRun, url: URL, init: RequestInit): Promise<Exchange> {
  const endpoint = `${init.method ?? "GET"} ${url.pathname}${url.search}`;
  try {
    const res = await fetch(url, {
      ...init,
      signal: AbortSignal.timeout(run.target.timeoutMs ?? 15_000),
    });
    const text = await res.text();
    return { endpoint, status: res.status, text, headers: res.headers };
  } catch (e) {
    throw new Error(
      run.redactor.redact(`${endpoint} at ${url.host}: no answer: ${(e as Error).message ?? e}`),
      { cause: e },
    );
  }
}

/**
 * The `Authorization` header of an API request, or a skip when the OAuth
 * contract produced no token.
 *
 * @throws {ContractSkip} without a token.
 * @example
 * ```ts
 * const headers = bearer(run);
 * ```
 */
export function bearer(run: ContractRun): Record<string, string> {
  if (!run.found.token) {
    throw new ContractSkip("needs an access token: the oauth token contract failed");
  }
  return { authorization: `Bearer ${run.found.token}`, accept: "application/json" };
}

/**
 * A {@linkcode ContractFailure} for `x`, with its raw body redacted.
 *
 * @example
 * ```ts
 * throw failure(run, x, "HTTP 200", [`HTTP ${x.status}`]);
 * ```
 */
export function failure(
  run: ContractRun,
  x: Exchange,
  expected: string,
  problems: readonly string[],
): ContractFailure {
  return new ContractFailure({
    endpoint: x.endpoint,
    expected,
    problems: problems.map((p) => run.redactor.redact(p)),
    raw: run.redactor.redact(`HTTP ${x.status} ${x.text}`),
  });
}

/**
 * A named skip when `x` is Cloudflare's block (an HTML page, or a 403 saying
 * `Request blocked by security policy` or carrying `cf-ray`, §4.3, §5): the
 * answer says nothing about the contract.
 *
 * @throws {ContractSkip} for a block.
 * @example
 * ```ts
 * skipIfCloudflare(x);
 * ```
 */
export function skipIfCloudflare(x: Exchange): void {
  const html = /text\/html/i.test(x.headers.get("content-type") ?? "") ||
    /^\s*<(!doctype|html)/i.test(x.text);
  const block = x.status === 403 &&
    (/Request blocked by security policy/i.test(x.text) || x.headers.has("cf-ray"));
  if (html || block) {
    throw new ContractSkip(
      `${x.endpoint}: HTTP ${x.status}, blocked by Cloudflare (${
        /Just a moment/i.test(x.text)
          ? '"Just a moment..." challenge page'
          : html
          ? "an HTML page"
          : "403 block"
      }${x.headers.get("cf-ray") ? `, cf-ray ${x.headers.get("cf-ray")}` : ""}); ` +
        "this address cannot check it",
    );
  }
}

/**
 * Every issue of a zod error as `path: message` lines.
 *
 * @param prefix put before each path, e.g. `data[3].`.
 * @example
 * ```ts
 * issueLines(r.error, "data[0]."); // ["data[0].stream.is_live: Invalid input: expected boolean, received undefined"]
 * ```
 */
export function issueLines(err: z.ZodError, prefix = ""): string[] {
  return err.issues.map((i) =>
    `${prefix}${i.path.map(String).join(".") || "(root)"}: ${i.message}`
  );
}

/**
 * `x.text` as JSON, after checking the status is `status`.
 *
 * @param expected the contract, as the failure states it.
 * @throws {ContractFailure} on another status or a non-JSON body.
 * @example
 * ```ts
 * const body = parseJson(run, x, 200, "envelope(PublicKeyWire)");
 * ```
 */
export function parseJson(
  run: ContractRun,
  x: Exchange,
  status: number | ((s: number) => boolean),
  expected: string,
): unknown {
  const okStatus = typeof status === "number" ? x.status === status : status(x.status);
  if (!okStatus) throw failure(run, x, expected, [`unexpected HTTP status ${x.status}`]);
  try {
    return JSON.parse(x.text);
  } catch (e) {
    throw failure(run, x, expected, [`body is not JSON: ${(e as Error).message}`]);
  }
}

/**
 * `value` parsed by `schema`, or a failure listing every issue.
 *
 * @throws {ContractFailure} when `value` does not parse.
 * @example
 * ```ts
 * const key = checkSchema(run, x, envelope(PublicKeyWire), body, "envelope(PublicKeyWire)");
 * ```
 */
export function checkSchema<T>(
  run: ContractRun,
  x: Exchange,
  schema: z.ZodType<T>,
  value: unknown,
  expected: string,
): T {
  const r = schema.safeParse(value);
  if (!r.success) throw failure(run, x, expected, issueLines(r.error));
  return r.data;
}

/**
 * A list answer: the envelope as the program reads it (`ListEnvelopeWire` of
 * src/kick/official/api.ts), then **every** element with `schema`. Each
 * element that fails is reported with its index, every zod issue and its
 * raw JSON.
 *
 * @param what the element schema's name and file, for the message.
 * @returns the parsed elements (all of them).
 * @throws {ContractFailure} when the envelope or any element fails.
 * @example
 * ```ts
 * const rows = checkRows(run, x, ChannelWire, "ChannelWire (src/kick/official/api.ts)");
 * ```
 */
export function checkRows<T>(
  run: ContractRun,
  x: Exchange,
  schema: z.ZodType<T>,
  what: string,
): T[] {
  const expected =
    `HTTP 200, {"data":[…],"message"} (ListEnvelopeWire) whose every element is ${what}`;
  const env = checkSchema(run, x, ListEnvelopeWire, parseJson(run, x, 200, expected), expected);
  const out: T[] = [];
  const problems: string[] = [];
  for (const [i, row] of (env.data ?? []).entries()) {
    const r = schema.safeParse(row);
    if (r.success) out.push(r.data);
    else {
      problems.push(
        ...issueLines(r.error, `data[${i}].`),
        `data[${i}] raw: ${JSON.stringify(row)}`,
      );
    }
  }
  if (problems.length > 0) throw failure(run, x, expected, problems);
  return out;
}

/**
 * Runs one contract and records it as one test step named `name`: a
 * {@linkcode ContractSkip} makes the step ignored (and prints its reason);
 * anything else thrown fails it with the (redacted) message. The outcome
 * and any failure also go to the report directory.
 *
 * @param body returns a one-line description of what was checked.
 * @example
 * ```ts
 * await runContract(t, run, "api: /public-key", async () => "PEM imports");
 * ```
 */
export async function runContract(
  t: Deno.TestContext,
  run: ContractRun,
  name: string,
  body: () => Promise<string>,
): Promise<void> {
  const t0 = performance.now();
  let status: "pass" | "skip" | "fail" = "pass";
  let detail: string;
  let error: Error | undefined;
  try {
    detail = await body();
  } catch (e) {
    if (e instanceof ContractSkip) {
      status = "skip";
      detail = run.redactor.redact(e.message);
      console.log(`contract skipped: ${name}: ${detail}`);
    } else {
      status = "fail";
      const message = run.redactor.redact(e instanceof Error ? e.message : String(e));
      detail = message.split("\n")[0];
      error = e instanceof ContractFailure ? e : new Error(message);
    }
  }
  const ms = Math.round(performance.now() - t0);
  await run.report.record({ name, status, detail, ms }, error);
  const report = run.report.outcomes.at(-1)?.file;
  await t.step({
    name,
    ignore: status === "skip",
    fn: () => {
      if (error) {
        throw new Error(`${error.message}\n  (written to ${run.report.dir}/${report})`);
      }
    },
  });
}
