/**
 * What the live contract suite (`tests/contract/kick_contract.ts`) tells
 * the operator: a {@linkcode ContractFailure} per broken contract, naming
 * the endpoint, what was expected and the raw answer, and a
 * {@linkcode ContractReport} directory (`contract-report/` or
 * `$KICKMON_CONTRACT_REPORT_DIR`) holding one file per failure plus a
 * `summary.json` of every contract, meant to be sent to the kickmon
 * maintainers as it is.
 *
 * Secrets never reach a message or a file: the client secret and every
 * access token the suite obtained are replaced by `[REDACTED]`, and so is
 * the value of any `access_token` field or `Bearer` header in a raw body
 * ({@linkcode Redactor}).
 *
 * @module
 */

/**
 * Replaces known secrets and anything shaped like a token in a text.
 *
 * @example
 * ```ts
 * const r = new Redactor(["s3cret"]);
 * r.add("tok_abc");
 * r.redact('{"access_token":"tok_abc","x":"s3cret"}'); // {"access_token":"[REDACTED]","x":"[REDACTED]"}
 * ```
 */
export class Redactor {
  readonly #secrets = new Set<string>();

  /**
   * @param secrets exact strings to hide (empty strings are ignored).
   */
  constructor(secrets: readonly string[] = []) {
    for (const s of secrets) this.add(s);
  }

  /**
   * Hides one more exact string from now on (e.g. an access token just obtained).
   *
   * @example
   * ```ts
   * new Redactor().add("tok_abc");
   * ```
   */
  add(secret: string): void {
    if (secret.length >= 4) this.#secrets.add(secret);
  }

  /**
   * The text with every secret, `access_token`/`refresh_token` value and
   * `Bearer …` credential replaced by `[REDACTED]`.
   *
   * @example
   * ```ts
   * new Redactor().redact("Authorization: Bearer abc.def"); // Authorization: Bearer [REDACTED]
   * ```
   */
  redact(text: string): string {
    let out = text;
    // Longest first, so a secret containing another is hidden whole.
    for (const s of [...this.#secrets].sort((a, b) => b.length - a.length)) {
      out = out.replaceAll(s, "[REDACTED]");
    }
    return out
      .replace(/("(?:access|refresh)_token"\s*:\s*")[^"]*"/g, '$1[REDACTED]"')
      .replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]+/g, "$1[REDACTED]");
  }
}

/** Longest raw body quoted in a message or report file, characters. */
export const MAX_RAW_CHARS = 16_384;

/**
 * A broken contract: which endpoint (or Pusher frame), what the program
 * expects, what arrived (zod issues, status) and the raw body, already
 * redacted.
 *
 * @example
 * ```ts
 * throw new ContractFailure({
 *   endpoint: "GET /public/v1/channels?slug=xqc",
 *   expected: "HTTP 200 with envelope(ChannelWire[]) (src/kick/official/api.ts)",
 *   problems: ["data[0].stream.is_live: expected boolean, received undefined"],
 *   raw: '{"data":[{"slug":"xqc"}]}',
 * });
 * ```
 */
export class ContractFailure extends Error {
  /** e.g. `GET /public/v1/channels?slug=xqc`, `pusher channel.668`. */
  readonly endpoint: string;
  /** What the program's schema expects, naming the schema and its file. */
  readonly expected: string;
  /** Each thing that did not match, one line each. */
  readonly problems: readonly string[];
  /** The raw answer (redacted, at most {@linkcode MAX_RAW_CHARS}). */
  readonly raw: string;

  /**
   * @param f `endpoint`, `expected`, `problems`, redacted `raw` body, and an optional `cause`.
   */
  constructor(
    f: {
      endpoint: string;
      expected: string;
      problems: readonly string[];
      raw: string;
      cause?: unknown;
    },
  ) {
    const raw = f.raw.length > MAX_RAW_CHARS
      ? `${f.raw.slice(0, MAX_RAW_CHARS)}… (${f.raw.length} characters in all)`
      : f.raw;
    super(
      `${f.endpoint}: contract broken\n  expected: ${f.expected}\n${
        f.problems.map((p) => `  - ${p}`).join("\n")
      }\n  raw: ${raw === "" ? "(empty body)" : raw}`,
      f.cause === undefined ? undefined : { cause: f.cause },
    );
    this.name = "ContractFailure";
    this.endpoint = f.endpoint;
    this.expected = f.expected;
    this.problems = f.problems;
    this.raw = raw;
  }
}

/**
 * A contract that could not be checked here, for a named reason (Cloudflare
 * blocks this address, v1 `/livestreams` is gone, …). Not a failure.
 *
 * @example
 * ```ts
 * throw new ContractSkip("HTTP 403: Cloudflare challenge page (kick.com blocks this address)");
 * ```
 */
export class ContractSkip extends Error {
  /**
   * @param reason one line, said to the operator as it is.
   */
  constructor(reason: string) {
    super(reason);
    this.name = "ContractSkip";
  }
}

/** The outcome of one contract, as `summary.json` lists it. */
export interface ContractOutcome {
  /** The contract's step name, e.g. `api: /channels by slug`. */
  readonly name: string;
  /** `pass`, `skip` (named reason) or `fail`. */
  readonly status: "pass" | "skip" | "fail";
  /** For `pass`: what was checked (e.g. `3 elements`); for `skip`: why; for `fail`: the message. */
  readonly detail: string;
  /** Duration, ms. */
  readonly ms: number;
  /** For `fail`: the file in the report directory holding the whole failure. */
  readonly file?: string;
}

/**
 * The report directory of one run: a file per failure (`NN-name.txt`) and
 * `summary.json` (`{target, started, outcomes[]}`), rewritten after every
 * contract so an interrupted run still leaves one.
 *
 * @example
 * ```ts
 * const report = await ContractReport.open("contract-report", "https://api.kick.com/public/v1", new Redactor());
 * await report.record({ name: "oauth: token", status: "pass", detail: "ok", ms: 12 });
 * ```
 */
export class ContractReport {
  /** Absolute or cwd-relative directory path. */
  readonly dir: string;
  readonly #target: string;
  readonly #redactor: Redactor;
  readonly #started = new Date().toISOString();
  readonly #outcomes: ContractOutcome[] = [];

  private constructor(dir: string, target: string, redactor: Redactor) {
    this.dir = dir;
    this.#target = target;
    this.#redactor = redactor;
  }

  /**
   * Creates (or empties the old files of) the directory.
   *
   * @param dir where to write; created with parents.
   * @param target a one-line, secret-free description of what was tested (base URLs).
   * @param redactor applied to everything written (a second line of defence).
   * @throws {Deno.errors.PermissionDenied} without write permission there.
   * @example
   * ```ts
   * const report = await ContractReport.open(Deno.makeTempDirSync(), "simulator");
   * ```
   */
  static async open(
    dir: string,
    target: string,
    redactor: Redactor = new Redactor(),
  ): Promise<ContractReport> {
    await Deno.mkdir(dir, { recursive: true });
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && (/^\d\d-.*\.txt$/.test(e.name) || e.name === "summary.json")) {
        await Deno.remove(`${dir}/${e.name}`);
      }
    }
    return new ContractReport(dir, target, redactor);
  }

  /** Every outcome recorded so far, in order. */
  get outcomes(): readonly ContractOutcome[] {
    return this.#outcomes;
  }

  /**
   * Records one outcome; a failure's whole message goes to its own file.
   *
   * @param o the outcome (without `file`).
   * @param failure for `fail`: the error, written as `NN-name.txt`.
   * @example
   * ```ts
   * await report.record({ name: "api: /public-key", status: "skip", detail: "HTTP 404", ms: 3 });
   * ```
   */
  async record(o: ContractOutcome, failure?: unknown): Promise<void> {
    let file: string | undefined;
    if (o.status === "fail") {
      const n = String(this.#outcomes.length + 1).padStart(2, "0");
      file = `${n}-${o.name.replace(/[^A-Za-z0-9]+/g, "_").replace(/^_|_$/g, "")}.txt`;
      const text = failure instanceof Error
        ? `${failure.message}\n${failure.cause ? `cause: ${String(failure.cause)}\n` : ""}`
        : `${String(failure)}\n`;
      await Deno.writeTextFile(
        `${this.dir}/${file}`,
        this.#redactor.redact(
          `contract: ${o.name}\ntarget: ${this.#target}\nat: ${
            new Date().toISOString()
          }\n\n${text}`,
        ),
      );
    }
    const detail = this.#redactor.redact(o.detail);
    this.#outcomes.push(file ? { ...o, detail, file } : { ...o, detail });
    await Deno.writeTextFile(
      `${this.dir}/summary.json`,
      JSON.stringify(
        { target: this.#target, started: this.#started, outcomes: this.#outcomes },
        null,
        2,
      ) + "\n",
    );
  }
}
