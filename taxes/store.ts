/** SQL for tax rates. */
import { percentageText } from '../invoices/tax';
import type { Queryable } from '../core/db';
import type { TaxRate } from './types';

interface TaxRateRaw {
  code: string;
  name: string;
  percentage: string;
  country: string | null;
  description: string | null;
  created_at: Date;
}

const COLUMNS = 'code, name, percentage::text AS percentage, country, description, created_at';

/** NUMERIC(9,6) reads back as "19.000000": shown as the shortest exact decimal, "19" (percentageText). */
const toRate = (r: TaxRateRaw): TaxRate => ({
  code: r.code,
  name: r.name,
  percentage: percentageText(r.percentage),
  inclusive: false,
  country: r.country,
  description: r.description,
  created_at: r.created_at.toISOString(),
});

/** Inserts the rate unless its code exists; answers the stored rate and whether this call created it. */
export async function insertTaxRate(
  db: Queryable,
  rate: Omit<TaxRate, 'created_at' | 'inclusive'>,
): Promise<{ rate: TaxRate; created: boolean }> {
  const inserted = await db.query<TaxRateRaw>(
    `INSERT INTO tax_rates (code, name, percentage, country, description) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (code) DO NOTHING RETURNING ${COLUMNS}`,
    [rate.code, rate.name, rate.percentage, rate.country, rate.description],
  );
  if (inserted.rows[0]) return { rate: toRate(inserted.rows[0]), created: true };
  return { rate: (await findTaxRates(db, [rate.code]))[0], created: false };
}

/** The rates of these codes that exist, in code order. */
export async function findTaxRates(db: Queryable, codes: string[]): Promise<TaxRate[]> {
  const { rows } = await db.query<TaxRateRaw>(`SELECT ${COLUMNS} FROM tax_rates WHERE code = ANY($1::text[]) ORDER BY code`, [codes]);
  return rows.map(toRate);
}

export async function listTaxRates(db: Queryable): Promise<TaxRate[]> {
  const { rows } = await db.query<TaxRateRaw>(`SELECT ${COLUMNS} FROM tax_rates ORDER BY code`);
  return rows.map(toRate);
}
