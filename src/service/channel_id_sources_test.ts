import assert from "node:assert/strict";
import type { KickApi } from "../kick/official/api.ts";
import { EndpointCapabilities } from "../kick/official/capabilities.ts";
import { GONE_REPROBE_MS, isGone, mayAsk } from "./channel_id_sources.ts";

Deno.test("channel id sources: a gone endpoint is asked again only after GONE_REPROBE_MS", () => {
  let now = 1_000_000;
  const capabilities = new EndpointCapabilities({ now: () => now });
  const api = { capabilities } as unknown as KickApi;
  assert.equal(mayAsk(api, "GET /livestreams", now), true, "unknown: ask");
  capabilities.record("GET /livestreams", 404, new Headers());
  assert.equal(isGone(api, "GET /livestreams"), true);
  assert.equal(mayAsk(api, "GET /livestreams", now + 1000), false);
  assert.equal(mayAsk(api, "GET /livestreams", now + GONE_REPROBE_MS), true, "the hourly probe");
  now += GONE_REPROBE_MS;
  capabilities.record("GET /livestreams", 404, new Headers()); // the probe: still gone
  assert.equal(mayAsk(api, "GET /livestreams", now + 1000), false, "an hour from the probe");
  capabilities.record("GET /livestreams", 200, new Headers({ deprecation: "@1782172800" }));
  assert.equal(isGone(api, "GET /livestreams"), false);
  assert.equal(mayAsk(api, "GET /livestreams", now + 1000), true, "deprecated still answers");
});
