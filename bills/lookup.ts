/** The bill a request names: found, or the 404 every endpoint answers alike. */
import type { Db } from '../core/db';
import { billNotFound } from '../core/errors';
import { findBill, type BillRow } from './store';

export async function requireBill(db: Db, billId: string): Promise<BillRow> {
  const row = await findBill(db, billId);
  if (!row) throw billNotFound(billId);
  return row;
}
