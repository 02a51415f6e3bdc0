/**
 * GET /bills/:billId/audit: every change of a bill and of its invoice, oldest first, with who made
 * it and why (the billing checklist's audit log). Entries are written in the transaction of the
 * change they record; line items are their own record.
 */
import type { Deps } from '../core/deps';
import { decodeCursor, encodeCursor, pageSize } from '../core/validate';
import { selectAuditPage } from './audit-store';
import { requireBill } from './lookup';
import type { ListAuditQuery } from './requests';
import type { AuditPage } from './types';

export async function listAudit(deps: Deps, billId: string, query: ListAuditQuery): Promise<AuditPage> {
  const limit = pageSize(query.limit, 100, 1000);
  const after = decodeCursor(query.cursor, (p) => p.length === 3 && p.every((v) => typeof v === 'string')) as
    [string, string, string] | null;
  await requireBill(deps.db, billId);
  const rows = await selectAuditPage(deps.db, billId, limit + 1, after);
  const page = rows.slice(0, limit);
  return {
    entries: page.map(({ cursor: _, ...entry }) => entry),
    next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1].cursor) : null,
  };
}
