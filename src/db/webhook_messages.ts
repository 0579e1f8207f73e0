/**
 * Webhook de-duplication in kickmon's schema (`kickmon.webhook_messages`,
 * migrations/kickmon_002_webhook_messages.sql): a delivery's
 * `Kick-Event-Message-Id` is claimed once, whichever instance receives it and
 * however often Kick retries it (docs/kick-protocol.md §4.7–4.8, §10.7).
 *
 * @module
 */
import { type Sql, toDatabaseError } from "./client.ts";

/** How long a claimed message id is remembered, ms (two days). */
export const WEBHOOK_MESSAGE_RETENTION_MS = 2 * 86_400_000;

/**
 * Claims a message id.
 *
 * @returns true when this is the first delivery of it; false for a duplicate.
 * @throws {DatabaseError} when the database cannot be reached.
 *
 * @example
 * ```ts
 * if (await claimWebhookMessage(sql, "01JQR5KV0QC94HMETWYNBWRW4Z")) console.log("new");
 * ```
 */
export async function claimWebhookMessage(sql: Sql, messageId: string): Promise<boolean> {
  try {
    const rows = await sql`
      INSERT INTO kickmon.webhook_messages (message_id) VALUES (${messageId})
      ON CONFLICT (message_id) DO NOTHING RETURNING 1`;
    return rows.length === 1;
  } catch (e) {
    throw toDatabaseError(e, "recording a webhook message id");
  }
}

/**
 * Forgets message ids claimed more than `olderThanMs` (ms) ago.
 *
 * @returns how many were removed.
 * @throws {DatabaseError} when the statement fails.
 *
 * @example
 * ```ts
 * await purgeWebhookMessages(sql, WEBHOOK_MESSAGE_RETENTION_MS);
 * ```
 */
export async function purgeWebhookMessages(sql: Sql, olderThanMs: number): Promise<number> {
  try {
    const r = await sql`
      DELETE FROM kickmon.webhook_messages
      WHERE received_at < now() - ${olderThanMs / 1000} * interval '1 second'`;
    return r.count;
  } catch (e) {
    throw toDatabaseError(e, "purging webhook message ids");
  }
}
