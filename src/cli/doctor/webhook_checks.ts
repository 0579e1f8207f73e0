/**
 * `kickmon doctor`'s webhook checks: Kick's signing key (`webhook public
 * key`, `GET /public-key` and `KICK_WEBHOOK_PUBLIC_KEY`) and the local
 * receiver (`webhook listener` on `KICK_WEBHOOK_LISTEN`). Each returns one
 * {@linkcode CheckResult} and never throws.
 *
 * @module
 */
import type { Config } from "../../config/config.ts";
import type { KickApi } from "../../kick/official/api.ts";
import { importKickPublicKey } from "../../kick/official/webhook_signature.ts";
import { healthUrl } from "../health_client.ts";
import { apiDetail, apiRemedy, FIX_TOKEN, NO_TOKEN } from "./api_checks.ts";
import { type CheckResult, type CheckStatus, errText, type Found, result } from "./check.ts";

/**
 * `webhook public key`: `GET /public-key` imports as an RSA key; matches a
 * configured one. A failure is `fail` when webhooks are enabled, else `warn`.
 *
 * @example
 * ```ts
 * checks.push(await checkPublicKey(config, api, found));
 * ```
 */
export async function checkPublicKey(
  config: Config,
  api: KickApi,
  found: Found,
): Promise<CheckResult> {
  const t = performance.now();
  const name = "webhook public key";
  const bad: CheckStatus = config.kick.webhook.enabled ? "fail" : "warn";
  const configured = config.kick.webhook.publicKeyPem;
  if (configured) {
    try {
      await importKickPublicKey(configured);
    } catch (e) {
      return result(
        name,
        t,
        "fail",
        `KICK_WEBHOOK_PUBLIC_KEY does not import: ${errText(e)}`,
        "paste the whole PEM from GET /public-key, or leave the variable empty to fetch it",
      );
    }
  }
  if (!found.token) return result(name, t, bad, NO_TOKEN, FIX_TOKEN);
  try {
    const pem = await api.getPublicKey();
    await importKickPublicKey(pem);
    const norm = (s: string) => s.replace(/\s+/g, "");
    if (configured && norm(configured) !== norm(pem)) {
      return result(
        name,
        t,
        "warn",
        "HTTP 200, but it differs from KICK_WEBHOOK_PUBLIC_KEY",
        "Kick rotated its key: update KICK_WEBHOOK_PUBLIC_KEY or leave it empty",
      );
    }
    return result(
      name,
      t,
      "ok",
      `HTTP 200, RSA public key imports${configured ? ", same as KICK_WEBHOOK_PUBLIC_KEY" : ""}`,
    );
  } catch (e) {
    return result(name, t, bad, apiDetail(e), apiRemedy(e));
  }
}

/**
 * `webhook listener`: something answers on `KICK_WEBHOOK_LISTEN` (a running
 * kickmon).
 *
 * @param timeoutMs timeout of the request, ms (at most 3000 are used).
 *
 * @example
 * ```ts
 * checks.push(await checkWebhookListener(config, 10_000));
 * ```
 */
export async function checkWebhookListener(
  config: Config,
  timeoutMs: number,
): Promise<CheckResult> {
  const t = performance.now();
  const w = config.kick.webhook;
  const name = "webhook listener";
  if (!w.enabled) return result(name, t, "ok", "webhooks disabled (KICK_WEBHOOK_ENABLED=false)");
  const url = healthUrl({ hostname: w.hostname, port: w.port }).replace(
    /\/health$/,
    "/webhooks/kick",
  );
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(Math.min(timeoutMs, 3000)) });
    await res.body?.cancel();
    return result(
      name,
      t,
      "ok",
      `${w.hostname}:${w.port} is bound (GET answered HTTP ${res.status})`,
    );
  } catch (e) {
    return result(
      name,
      t,
      "warn",
      `nothing listens on ${w.hostname}:${w.port} (${errText(e)})`,
      "start kickmon ('kickmon start' or 'systemctl start kickmon') and make this port reachable from Kick",
    );
  }
}
