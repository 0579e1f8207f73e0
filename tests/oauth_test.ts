import assert from "node:assert/strict";
import { captureLogs } from "./helpers/logs.ts";
import { World } from "../dev/simulator/world.ts";
import { startApiServer } from "../dev/simulator/api_server.ts";
import { parseRetryAfter } from "../src/kick/http/backoff.ts";
import { InvalidCredentialsError, OAuthError } from "../src/kick/official/oauth_error.ts";
import {
  tokenFingerprint,
  TokenProvider,
  type TokenProviderOptions,
} from "../src/kick/official/oauth.ts";

const CLIENT_ID = "01JTESTCLIENTID";
const SECRET = "super-secret-client-secret-value";

function setup(extra: Partial<Parameters<typeof startApiServer>[0]> = {}) {
  const sim = startApiServer({
    world: new World(),
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    ...extra,
  });
  const provider = (o: Partial<TokenProviderOptions> = {}) =>
    new TokenProvider({
      oauthUrl: sim.oauthUrl,
      clientId: CLIENT_ID,
      clientSecret: SECRET,
      backoffBaseMs: 5,
      backoffMaxMs: 20,
      timeoutMs: 2000,
      ...o,
    });
  return { sim, provider };
}

Deno.test("oauth: fetches a token once and caches it; concurrent callers share one request", async () => {
  const { sim, provider } = setup();
  try {
    const tp = provider();
    assert.equal(tp.state().state, "none");
    const tokens = await Promise.all(Array.from({ length: 20 }, () => tp.getToken()));
    assert.equal(new Set(tokens).size, 1);
    assert.equal(sim.requests("POST /oauth/token"), 1);
    assert.equal(await tp.getToken(), tokens[0]);
    assert.equal(sim.requests("POST /oauth/token"), 1);
    const st = tp.state();
    assert.equal(st.state, "valid");
    assert.ok(st.expiresAt! > Date.now() + 7000_000 && st.expiresAt! <= Date.now() + 7200_000);
  } finally {
    await sim.close();
  }
});

Deno.test("oauth: expires_in as a numeric string is accepted", async () => {
  const { sim, provider } = setup({ expiresInAsString: true, tokenLifetimeSec: 3600 });
  try {
    const tp = provider();
    await tp.getToken();
    const exp = tp.state().expiresAt!;
    assert.ok(Math.abs(exp - (Date.now() + 3600_000)) < 5000, `expiresAt ${exp}`);
  } finally {
    await sim.close();
  }
});

Deno.test("oauth: refreshes ahead of expiry (margin = min(60 s, 10 %))", async () => {
  const { sim, provider } = setup({ tokenLifetimeSec: 7200 });
  try {
    let clock = Date.now();
    const tp = provider({ now: () => clock });
    const t1 = await tp.getToken();
    clock += (7200 - 61) * 1000; // still outside the 60 s margin
    assert.equal(await tp.getToken(), t1);
    clock += 2000; // inside the margin, not yet expired
    const t2 = await tp.getToken();
    assert.notEqual(t2, t1);
    assert.equal(sim.requests("/oauth/token"), 2);

    // Short lifetime: margin is 10 % of 100 s = 10 s.
    const { sim: sim2, provider: provider2 } = setup({ tokenLifetimeSec: 100 });
    try {
      let c2 = Date.now();
      const tp2 = provider2({ now: () => c2 });
      const a = await tp2.getToken();
      c2 += 89_000;
      assert.equal(await tp2.getToken(), a);
      c2 += 2_000;
      assert.notEqual(await tp2.getToken(), a);
    } finally {
      await sim2.close();
    }
  } finally {
    await sim.close();
  }
});

Deno.test("oauth: invalidate() drops only the cached token", async () => {
  const { sim, provider } = setup();
  try {
    const tp = provider();
    const t1 = await tp.getToken();
    tp.invalidate(t1);
    const t2 = await tp.getToken();
    assert.notEqual(t2, t1);
    tp.invalidate(t1); // stale token: ignored
    assert.equal(await tp.getToken(), t2);
    assert.equal(sim.requests("/oauth/token"), 2);
  } finally {
    await sim.close();
  }
});

Deno.test("oauth: wrong secret → InvalidCredentialsError (fatal, no retries, no secret in message)", async () => {
  const { sim, provider } = setup();
  try {
    const wrong = "wrong-secret-that-must-not-leak";
    const tp = provider({ clientSecret: wrong });
    const err = await tp.getToken().then(() => undefined, (e) => e);
    assert.ok(err instanceof InvalidCredentialsError, String(err));
    assert.ok(err instanceof OAuthError);
    assert.equal(err.code, "invalid_client");
    assert.equal(err.status, 401);
    assert.equal(err.retryable, false);
    assert.ok(!String(err).includes(wrong) && !String(err.stack).includes(wrong));
    assert.equal(sim.requests("/oauth/token"), 1);
    const st = tp.state();
    assert.equal(st.state, "invalid_credentials");
    assert.ok(st.lastError && !st.lastError.includes(wrong));
    // Later calls fail fast without hitting the network.
    await assert.rejects(tp.getToken(), InvalidCredentialsError);
    assert.equal(sim.requests("/oauth/token"), 1);
  } finally {
    await sim.close();
  }
});

Deno.test("oauth: transient 503 / 400-empty-body / Cloudflare 403 are retried with backoff", async () => {
  const { sim, provider } = setup();
  try {
    sim.failNext("/oauth/token", { status: 503, body: "" });
    sim.failNext("/oauth/token", { status: 400, body: "" }); // KickDevDocs #156
    sim.failNext("/oauth/token", {
      status: 403,
      body: '{"error":"Request blocked by security policy.","reference":"9e4db7e3"}',
    });
    const tp = provider({ maxAttempts: 4 });
    const t = await tp.getToken();
    assert.ok(t.length > 10);
    assert.equal(sim.requests("/oauth/token"), 4);
    assert.equal(tp.state().state, "valid");
    assert.equal(tp.state().lastError, undefined);
  } finally {
    await sim.close();
  }
});

Deno.test("oauth: retries are bounded; state becomes failing; a later call recovers", async () => {
  const { sim, provider } = setup();
  try {
    sim.failNext("/oauth/token", { status: 500, body: '{"error":"server_error"}' }, 3);
    const tp = provider({ maxAttempts: 3 });
    const err = await tp.getToken().then(() => undefined, (e) => e);
    assert.ok(err instanceof OAuthError && !(err instanceof InvalidCredentialsError));
    assert.equal(err.code, "server_error");
    assert.equal(err.retryable, true);
    assert.equal(sim.requests("/oauth/token"), 3);
    assert.equal(tp.state().state, "failing");
    assert.match(tp.state().lastError!, /HTTP 500/);
    await tp.getToken();
    assert.equal(tp.state().state, "valid");
  } finally {
    await sim.close();
  }
});

Deno.test("oauth: 400 with a JSON error body is not retried", async () => {
  const { sim, provider } = setup();
  try {
    sim.failNext("/oauth/token", { status: 400, body: '{"error":"Invalid request"}' });
    const tp = provider();
    const err = await tp.getToken().then(() => undefined, (e) => e);
    assert.ok(err instanceof OAuthError);
    assert.equal(err.code, "Invalid request");
    assert.equal(err.retryable, false);
    assert.equal(sim.requests("/oauth/token"), 1);
  } finally {
    await sim.close();
  }
});

Deno.test("oauth: malformed 200 bodies → OAuthError malformed (with the issue path)", async () => {
  const { sim, provider } = setup();
  try {
    sim.failNext("/oauth/token", { status: 200, body: "<html>oops</html>" });
    sim.failNext("/oauth/token", { status: 200, body: '{"access_token":"x","expires_in":"soon"}' });
    const tp = provider({ maxAttempts: 1 });
    const e1 = await tp.getToken().then(() => undefined, (e) => e);
    assert.ok(e1 instanceof OAuthError);
    assert.equal(e1.code, "malformed");
    const e2 = await tp.getToken().then(() => undefined, (e) => e);
    assert.equal(e2.code, "malformed");
    assert.match(e2.message, /expires_in/);
  } finally {
    await sim.close();
  }
});

Deno.test("oauth: timeout → OAuthError timeout", async () => {
  const { sim, provider } = setup();
  try {
    sim.setDelay("/oauth/token", 400);
    const tp = provider({ timeoutMs: 50, maxAttempts: 1 });
    const err = await tp.getToken().then(() => undefined, (e) => e);
    assert.ok(err instanceof OAuthError);
    assert.equal(err.code, "timeout");
    assert.equal(err.retryable, true);
  } finally {
    await sim.close();
  }
});

Deno.test("oauth: a failed refresh ahead of expiry keeps serving the still-valid token", async () => {
  const { sim, provider } = setup({ tokenLifetimeSec: 7200 });
  try {
    let clock = Date.now();
    const tp = provider({ now: () => clock, maxAttempts: 1 });
    const t1 = await tp.getToken();
    clock += (7200 - 30) * 1000;
    sim.failNext("/oauth/token", { status: 502, body: "" });
    assert.equal(await tp.getToken(), t1);
    assert.equal(tp.state().state, "failing");
  } finally {
    await sim.close();
  }
});

Deno.test("oauth: network error (nothing listening) → retryable OAuthError network", async () => {
  const { sim } = setup();
  const url = sim.oauthUrl;
  await sim.close();
  const tp = new TokenProvider({
    oauthUrl: url,
    clientId: CLIENT_ID,
    clientSecret: SECRET,
    maxAttempts: 1,
  });
  const err = await tp.getToken().then(() => undefined, (e) => e);
  assert.ok(err instanceof OAuthError);
  assert.equal(err.code, "network");
  assert.ok(!err.message.includes(SECRET));
});

Deno.test("oauth: logs never contain the client secret or the token", async () => {
  const logs = await captureLogs();
  const records = logs.records;
  const { sim, provider } = setup();
  try {
    sim.failNext("/oauth/token", { status: 503, body: `echo ${SECRET}` });
    const tp = provider();
    const token = await tp.getToken();
    tp.invalidate(token);
    await tp.getToken();
    const wrong = provider({ clientSecret: "another-wrong-secret" });
    await assert.rejects(wrong.getToken(), InvalidCredentialsError);
    assert.ok(records.length >= 3, `expected some logs, got ${records.length}`);
    const text = records.map((r) => JSON.stringify({ m: r.message, p: r.properties })).join("\n");
    assert.ok(!text.includes(SECRET), text);
    assert.ok(!text.includes(token), text);
    assert.ok(!text.includes("another-wrong-secret"));
    assert.ok(text.includes(tokenFingerprint(token)));
  } finally {
    await sim.close();
    await logs.restore();
  }
});

Deno.test("oauth: parseRetryAfter handles seconds and HTTP dates", () => {
  const now = Date.UTC(2026, 0, 1, 0, 0, 0);
  assert.equal(parseRetryAfter("3", now), 3000);
  assert.equal(parseRetryAfter(new Date(now + 10_000).toUTCString(), now), 10_000);
  assert.equal(parseRetryAfter(new Date(now - 10_000).toUTCString(), now), 0);
  assert.equal(parseRetryAfter("soon", now), undefined);
  assert.equal(parseRetryAfter(null, now), undefined);
});

Deno.test("oauth: an oversized answer is refused unread; a 4 MB access token is refused", async () => {
  const { sim, provider } = setup();
  try {
    const huge = JSON.stringify({
      access_token: "x".repeat(8 * 1024 * 1024),
      token_type: "Bearer",
      expires_in: 3600,
    });
    sim.failNext("/oauth/token", { status: 200, body: huge });
    const tp = provider({ maxAttempts: 1 });
    await assert.rejects(tp.getToken(), (e: Error) => {
      assert.match(e.message, /body over 65536 bytes/);
      return true;
    });
    const longToken = JSON.stringify({
      access_token: "y".repeat(5000),
      token_type: "Bearer",
      expires_in: 3600,
    });
    sim.failNext("/oauth/token", { status: 200, body: longToken.slice(0, 60_000) });
    await assert.rejects(provider({ maxAttempts: 1 }).getToken(), (e: Error) => {
      assert.match(e.message, /access_token: longer than 4096 characters/);
      return true;
    });
    assert.ok((await provider().getToken()).length < 4096, "a normal answer still works");
  } finally {
    await sim.close();
  }
});
