/**
 * `kickmon doctor`'s Pusher checks (`pusher connect`, `pusher subscribe`,
 * `pusher ping`) on a one-shot client over a plain WebSocket, not pusher-js:
 * a diagnosis reports each frame, it does not reconnect.
 *
 * @module
 */
import type { Config } from "../../config/config.ts";
import { channelName } from "../../kick/pusher/frames.ts";
import { PusherProbe } from "../../kick/pusher/pusher_probe.ts";
import { type CheckResult, errText, type Found, result, round } from "./check.ts";

function pusherErrorText(data: unknown): { code: number | null; text: string } {
  const d = (data ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof d.code === "number" ? d.code : null;
  return { code, text: `pusher:error ${code ?? "(no code)"}: ${String(d.message ?? "")}` };
}

const PUSHER_REFUSED_REMEDY =
  "Kick refused the Pusher app key: read the current key from kick.com (browser DevTools → WS) " +
  "and set KICK_PUSHER_KEY (and KICK_PUSHER_CLUSTER)";

/**
 * `pusher connect`, `pusher subscribe`, `pusher ping`, on one connection to
 * the configured Pusher host. Subscribes to `found.channelId`'s channel when
 * one is known.
 *
 * @param timeoutMs how long each step waits for its frame, ms.
 * @returns the three lines, in that order.
 *
 * @example
 * ```ts
 * checks.push(...await checkPusher(config, found, 10_000));
 * ```
 */
export async function checkPusher(config: Config, found: Found, timeoutMs: number) {
  const p = config.kick.pusher;
  const host = p.host.includes(":") && !p.host.startsWith("[") ? `[${p.host}]` : p.host;
  const url = `${p.tls ? "wss" : "ws"}://${host}:${p.port}/app/${
    encodeURIComponent(p.key)
  }?protocol=7&client=js&version=8.4.0&flash=false`;
  const out: CheckResult[] = [];
  let t = performance.now();
  const probe = new PusherProbe(url);
  try {
    try {
      const f = await probe.next(["pusher:connection_established"], timeoutMs);
      if (f.event === "pusher:error") {
        const { code, text } = pusherErrorText(f.data);
        const refused = code !== null && code >= 4000 && code <= 4099;
        out.push(
          result(
            "pusher connect",
            t,
            "fail",
            `${p.host}:${p.port}: ${text}`,
            refused
              ? (code === 4000
                ? "this server wants TLS: set KICK_PUSHER_TLS=true"
                : PUSHER_REFUSED_REMEDY)
              : "Pusher answered with an error: retry later; if it stays, check KICK_PUSHER_HOST",
          ),
        );
        throw new Error("not connected");
      }
      const d = (f.data ?? {}) as { activity_timeout?: unknown; socket_id?: unknown };
      if (typeof d.activity_timeout !== "number") {
        out.push(
          result(
            "pusher connect",
            t,
            "fail",
            "pusher:connection_established without activity_timeout",
            "check that KICK_PUSHER_HOST is a Pusher server",
          ),
        );
        throw new Error("not connected");
      }
      out.push(
        result(
          "pusher connect",
          t,
          "ok",
          `${p.host}:${p.port}${
            p.tls ? " (TLS)" : ""
          }: connection_established, activity_timeout ${d.activity_timeout} s`,
        ),
      );
    } catch (e) {
      if (out.length === 0) {
        out.push(
          result(
            "pusher connect",
            t,
            "fail",
            `${p.host}:${p.port}: ${errText(e)}`,
            "check KICK_PUSHER_HOST, KICK_PUSHER_PORT and KICK_PUSHER_TLS, and that this host reaches it",
          ),
        );
      }
      const why = "not connected (see the pusher connect line)";
      const fix = "fix the pusher connect check first";
      t = performance.now();
      out.push(result("pusher subscribe", t, "fail", why, fix));
      out.push(result("pusher ping", t, "fail", why, fix));
      return out;
    }

    t = performance.now();
    if (found.channelId === null) {
      out.push(
        result(
          "pusher subscribe",
          t,
          "warn",
          "no channel id known (streamer offline and no row has one)",
          "run doctor again while the streamer is live, or with --streamer NAME of a live channel",
        ),
      );
    } else {
      const channel = channelName(found.channelId);
      probe.send("pusher:subscribe", { auth: "", channel });
      try {
        const f = await probe.next(
          ["pusher_internal:subscription_succeeded", "pusher:subscription_error"],
          timeoutMs,
        );
        if (f.event === "pusher_internal:subscription_succeeded" && f.channel === channel) {
          out.push(
            result(
              "pusher subscribe",
              t,
              "ok",
              `${channel} (from ${found.channelIdFrom}): subscription_succeeded`,
            ),
          );
        } else {
          out.push(
            result(
              "pusher subscribe",
              t,
              "fail",
              `${channel}: ${f.event === "pusher:error" ? pusherErrorText(f.data).text : f.event}`,
              "Kick refused a public channel: check the channel id, then retry later",
            ),
          );
        }
      } catch (e) {
        out.push(
          result(
            "pusher subscribe",
            t,
            "fail",
            `${channel}: ${errText(e)}`,
            "check that KICK_PUSHER_HOST is Kick's Pusher server",
          ),
        );
      }
    }

    t = performance.now();
    probe.send("pusher:ping", {});
    try {
      const f = await probe.next(["pusher:pong"], timeoutMs);
      if (f.event !== "pusher:pong") throw new Error(pusherErrorText(f.data).text);
      out.push(result("pusher ping", t, "ok", `pong in ${round(performance.now() - t)} ms`));
    } catch (e) {
      out.push(
        result(
          "pusher ping",
          t,
          "fail",
          errText(e),
          "the connection does not answer pings: check proxies between this host and Pusher",
        ),
      );
    }
    return out;
  } finally {
    probe.close();
  }
}
