/**
 * The audit trail (the billing checklist's "who, when, what, why"): one row per billing mutation,
 * written in the mutation's own transaction, so a change and its entry commit or roll back together.
 */
import type { Queryable } from './db';

/** Who made a change: an API key id, `anonymous` with authentication off, or `system` (a timer, a workflow). */
export type Actor = string;
export const SYSTEM: Actor = 'system';

export interface AuditEntry {
  /** The bill it concerns, when it concerns one. */
  bill_id: string | null;
  subject: 'bill' | 'invoice' | 'payment' | 'credit_note' | 'customer' | 'tax_rate' | 'meter';
  subject_id: string;
  action: string;
  actor: Actor;
  reason?: string | null;
  /** What changed, as the API shows it (kept small: ids and amounts, not documents). */
  data?: Record<string, unknown> | null;
}

export async function recordAudit(db: Queryable, e: AuditEntry): Promise<void> {
  await db.query('INSERT INTO audit_log (bill_id, subject, subject_id, action, actor, reason, data) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
    e.bill_id,
    e.subject,
    e.subject_id,
    e.action,
    e.actor,
    e.reason ?? null,
    e.data ? JSON.stringify(e.data) : null,
  ]);
}
