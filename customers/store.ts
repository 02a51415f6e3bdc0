/** SQL for customers. */
import type { Queryable } from '../core/db';
import { parseMinorUnits } from '../core/money';
import type { Customer } from './types';

interface CustomerRaw extends Omit<Customer, 'created_at' | 'updated_at' | 'version'> {
  request_fingerprint: string;
  created_at: Date;
  updated_at: Date;
  version: string;
}

const COLUMNS = `customer_id, name, email, address, tax_id, tax_exempt, locale, tax_rates, request_fingerprint,
  created_at, updated_at, version::text AS version`;

const toCustomer = ({ request_fingerprint: _, ...r }: CustomerRaw): Customer => ({
  ...r,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
  version: parseMinorUnits(r.version),
});

export type CustomerFields = Omit<Customer, 'customer_id' | 'created_at' | 'updated_at' | 'version'>;

/** Inserts unless the id exists; answers the stored row (with the fingerprint of the request that made it). */
export async function insertCustomer(
  db: Queryable,
  customerId: string,
  c: CustomerFields,
  fingerprint: string,
): Promise<{ customer: Customer; fingerprint: string; created: boolean }> {
  const inserted = await db.query<CustomerRaw>(
    `INSERT INTO customers (customer_id, name, email, address, tax_id, tax_exempt, locale, tax_rates, request_fingerprint)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (customer_id) DO NOTHING RETURNING ${COLUMNS}`,
    [customerId, c.name, c.email, JSON.stringify(c.address), c.tax_id, c.tax_exempt, c.locale, c.tax_rates, fingerprint],
  );
  const row = inserted.rows[0] ?? (await selectCustomer(db, customerId, false));
  return { customer: toCustomer(row!), fingerprint: row!.request_fingerprint, created: inserted.rows.length === 1 };
}

async function selectCustomer(db: Queryable, customerId: string, lock: boolean): Promise<CustomerRaw | null> {
  const { rows } = await db.query<CustomerRaw>(`SELECT ${COLUMNS} FROM customers WHERE customer_id = $1${lock ? ' FOR UPDATE' : ''}`, [
    customerId,
  ]);
  return rows[0] ?? null;
}

export async function findCustomer(db: Queryable, customerId: string, lock = false): Promise<Customer | null> {
  const row = await selectCustomer(db, customerId, lock);
  return row && toCustomer(row);
}

export async function saveCustomer(db: Queryable, customerId: string, c: CustomerFields): Promise<Customer> {
  const { rows } = await db.query<CustomerRaw>(
    `UPDATE customers SET name = $2, email = $3, address = $4, tax_id = $5, tax_exempt = $6, locale = $7, tax_rates = $8,
       updated_at = now(), version = version + 1
     WHERE customer_id = $1 RETURNING ${COLUMNS}`,
    [customerId, c.name, c.email, JSON.stringify(c.address), c.tax_id, c.tax_exempt, c.locale, c.tax_rates],
  );
  return toCustomer(rows[0]);
}

/** Newest first, keyset-paginated on (created_at, customer_id). */
export async function selectCustomersPage(db: Queryable, limit: number, after: [string, string] | null): Promise<Customer[]> {
  const { rows } = await db.query<CustomerRaw>(
    `SELECT ${COLUMNS} FROM customers
     WHERE $2::timestamptz IS NULL OR (created_at, customer_id) < ($2::timestamptz, $3::text)
     ORDER BY created_at DESC, customer_id DESC LIMIT $1`,
    [limit, after?.[0] ?? null, after?.[1] ?? null],
  );
  return rows.map(toCustomer);
}
