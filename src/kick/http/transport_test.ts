import assert from "node:assert/strict";
import { ResponseTooLargeError } from "./body.ts";
import { HttpTransport, TransportError } from "./transport.ts";

const URL_ = new URL("http://kick.test:8080/x");

function transport(
  fetchImpl: typeof fetch,
  extra: Partial<ConstructorParameters<typeof HttpTransport>[0]> = {},
) {
  const calls: [string, number | "error"][] = [];
  const t = new HttpTransport({
    timeoutMs: 50,
    maxBodyBytes: 16,
    fetch: fetchImpl,
    onRequest: (endpoint, status) => calls.push([endpoint, status]),
    ...extra,
  });
  return { t, calls };
}

async function failureOf(p: Promise<unknown>): Promise<TransportError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TransportError, `not a TransportError: ${e}`);
    return e;
  }
  throw new Error("did not fail");
}

Deno.test("transport: an answer of any status is returned with its body and reported", async () => {
  const { t, calls } = transport(() => Promise.resolve(new Response("nope", { status: 503 })));
  const { res, text } = await t.send("GET /x", URL_, { method: "GET" });
  assert.equal(res.status, 503);
  assert.equal(text, "nope");
  assert.deepEqual(calls, [["GET /x", 503]]);
});

Deno.test("transport: each way to get no answer is one kind, with the thrown value as cause", async () => {
  const refused = new TypeError("fetch failed", {
    cause: new Error("tcp connect error: Connection refused (os error 111)"),
  });
  const network = await failureOf(
    transport(() => Promise.reject(refused)).t.send("GET /x", URL_, {}),
  );
  assert.equal(network.kind, "network");
  assert.equal(network.host, "kick.test:8080");
  assert.equal(network.message, "tcp connect error: Connection refused (os error 111)");
  assert.equal(network.cause, refused);

  const denied = new Deno.errors.NotCapable('Requires net access to "kick.test:8080"');
  const notPermitted = await failureOf(
    transport(() => Promise.reject(denied)).t.send("GET /x", URL_, {}),
  );
  assert.equal(notPermitted.kind, "not_permitted");
  assert.equal(notPermitted.cause, denied);

  const big = await failureOf(
    transport(() => Promise.resolve(new Response("x".repeat(17)))).t.send("GET /x", URL_, {}),
  );
  assert.equal(big.kind, "too_large");
  assert.ok(big.cause instanceof ResponseTooLargeError);

  const hang: typeof fetch = (_url, init) =>
    new Promise((_resolve, reject) => {
      const signal = init!.signal!;
      if (signal.aborted) return reject(signal.reason);
      signal.addEventListener("abort", () => reject(signal.reason));
    });
  const { t: slow, calls } = transport(hang);
  const timeout = await failureOf(slow.send("GET /x", URL_, {}));
  assert.equal(timeout.kind, "timeout");
  assert.equal(timeout.message, "no response within 50 ms");
  assert.deepEqual(calls, [["GET /x", "error"]]);

  const { t: closing } = transport(hang);
  const pending = closing.send("GET /x", URL_, {});
  closing.close();
  assert.equal((await failureOf(pending)).kind, "closed");
  assert.equal((await failureOf(closing.send("GET /x", URL_, {}))).kind, "closed");
});

Deno.test("transport: a throwing onRequest hook goes to onHookError, never to the caller", async () => {
  const hookErrors: unknown[] = [];
  const t = new HttpTransport({
    timeoutMs: 1000,
    maxBodyBytes: 16,
    fetch: () => Promise.resolve(new Response("ok")),
    onRequest: () => {
      throw new Error("metrics broke");
    },
    onHookError: (e) => hookErrors.push(e),
  });
  assert.equal((await t.send("GET /x", URL_, {})).text, "ok");
  assert.equal(hookErrors.length, 1);
});

Deno.test("transport: sleep() ends early and says false once closed", async () => {
  const { t } = transport(() => Promise.resolve(new Response("")));
  assert.equal(await t.sleep(1), true);
  const started = performance.now();
  const waiting = t.sleep(10_000);
  t.close();
  assert.equal(await waiting, false);
  assert.ok(performance.now() - started < 1000);
});

Deno.test("transport: onExchange sees the raw body with the token replaced, and never the request", async () => {
  const seen: import("./exchange.ts").RawExchange[] = [];
  const body = '{"access_token":"tok-123","token_type":"Bearer","expires_in":3600}';
  const t = new HttpTransport({
    timeoutMs: 1000,
    maxBodyBytes: 1024,
    fetch: () =>
      Promise.resolve(
        new Response(body, {
          status: 200,
          headers: { "content-type": "application/json", "set-cookie": "s=1", "retry-after": "1" },
        }),
      ),
    onExchange: (e) => seen.push(e),
  });
  const { text } = await t.send("POST /oauth/token", URL_, {
    method: "POST",
    headers: { authorization: "Bearer hunter2" },
    body: "client_secret=hunter2",
  });
  assert.equal(text, body, "the caller still gets the real token");
  assert.equal(seen.length, 1);
  const e = seen[0];
  assert.equal(e.method, "POST");
  assert.equal(e.url, URL_.href);
  assert.equal(e.status, 200);
  assert.deepEqual(e.headers, { "content-type": "application/json", "retry-after": "1" });
  assert.equal(
    e.body,
    '{"access_token":"REDACTED-BY-KICKMON-CAPTURE","token_type":"Bearer","expires_in":3600}',
  );
  assert.deepEqual(e.removed, ["tok-123"]);
  assert.ok(!JSON.stringify(e).includes("hunter2"), "no request header or body is recorded");
});

Deno.test("transport: an observer that throws does not break the request", async () => {
  const errors: unknown[] = [];
  const { t } = transport(() => Promise.resolve(new Response("ok")), {
    onExchange: () => {
      throw new Error("observer broke");
    },
    onHookError: (e) => errors.push(e),
  });
  assert.equal((await t.send("GET /x", URL_, { method: "GET" })).text, "ok");
  assert.equal(errors.length, 1);
});
