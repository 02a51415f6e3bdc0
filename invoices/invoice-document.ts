/**
 * The invoice document: frozen once when the invoice is numbered (the seller, the buyer as it is
 * then, the tax per rate and currency), and read back whole to render the PDF and the e-invoice.
 * A line's rate is its own, else its bill's, else its customer's (the first code of each list;
 * `{}` on a line means no tax); a tax-exempt customer's taxed lines are exempt (category E).
 */
import type { Config } from '../core/config';
import type { Queryable } from '../core/db';
import { parseMinorUnits } from '../core/money';
import type { AppliedTaxRate, Buyer, DocumentLine, InvoiceDocument, InvoiceParties, PostalAddress, UnlistedLines } from './document';
import { sellerOf } from './seller';
import { EXEMPT_RATE, categoryOf, percentageText, taxDocument } from './tax';

// The rate code each line item is taxed at (NULL: none), from the line, the bill, the customer.
const RATE_OF_LINE = `(COALESCE(li.tax_rates, b.tax_rates, c.tax_rates))[1]`;
const LINES_FROM = `line_items li JOIN bills b USING (bill_id) LEFT JOIN customers c ON c.customer_id = b.customer_id
  LEFT JOIN tax_rates r ON r.code = ${RATE_OF_LINE}`;

interface RateRow {
  code: string | null;
  name: string | null;
  percentage: string | null;
}

function appliedRate(row: RateRow, exempt: boolean): AppliedTaxRate | null {
  if (row.code === null) return null;
  if (exempt) return EXEMPT_RATE;
  const percentage = percentageText(row.percentage!);
  return { code: row.code, name: row.name!, percentage, category: categoryOf(percentage), exemption_reason: null };
}

interface BuyerRow {
  customer_email: string | null;
  customer_id: string | null;
  name: string | null;
  email: string | null;
  address: PostalAddress | null;
  tax_id: string | null;
  tax_exempt: boolean | null;
}

async function buyerOf(db: Queryable, billId: string): Promise<Buyer> {
  const { rows } = await db.query<BuyerRow>(
    `SELECT b.customer_email, c.customer_id, c.name, c.email, c.address, c.tax_id, c.tax_exempt
       FROM bills b LEFT JOIN customers c ON c.customer_id = b.customer_id WHERE b.bill_id = $1`,
    [billId],
  );
  const r = rows[0];
  return {
    customer_id: r.customer_id,
    name: r.name,
    // The bill's own customer_email wins: it is where its invoice was always sent.
    email: r.customer_email ?? r.email,
    address: r.address,
    tax_id: r.tax_id,
    tax_exempt: r.tax_exempt ?? false,
  };
}

interface GroupRow extends RateRow {
  currency: string;
  count: string;
  net: string;
}

/** The bill's line items summed per currency and rate (one pass over its items). */
async function taxableGroups(db: Queryable, billId: string): Promise<GroupRow[]> {
  const { rows } = await db.query<GroupRow>(
    `SELECT li.currency, r.code, r.name, r.percentage::text AS percentage, count(*)::text AS count, sum(li.amount)::text AS net
       FROM ${LINES_FROM} WHERE li.bill_id = $1
      GROUP BY li.currency, r.code, r.name, r.percentage ORDER BY li.currency, r.code`,
    [billId],
  );
  return rows;
}

/**
 * What the invoice of a closed bill freezes: the parties and the tax. Null when the bill has no
 * line item: a bill closed with nothing on it gets no invoice (and no number).
 */
export async function freezeParties(db: Queryable, billId: string, config: Config): Promise<InvoiceParties | null> {
  const groups = await taxableGroups(db, billId);
  if (groups.length === 0) return null;
  const buyer = await buyerOf(db, billId);
  const { taxes, totals } = taxDocument(
    groups.map((g) => ({ currency: g.currency, rate: appliedRate(g, buyer.tax_exempt), net: parseMinorUnits(g.net) })),
  );
  return { seller: sellerOf(config), buyer, taxes, totals };
}

interface HeaderRow {
  invoice_number: string;
  issued_at: Date;
  document: InvoiceParties | null;
  due_at: Date | null;
  payment_terms: string;
  description: string | null;
  billing_period_start: Date;
  billing_period_end: Date;
  closed_at: Date;
}

interface LineRow extends RateRow {
  position: string;
  created_at: Date;
  description: string;
  amount: string;
  currency: string;
}

/**
 * The numbered invoice of a closed bill, whole: its frozen parties and tax, and its first
 * `maxLines` line items with the rate each was taxed at; the rest summed per currency and rate.
 * Null when the bill has no invoice (not numbered, or closed with nothing on it).
 */
export async function loadInvoiceDocument(
  db: Queryable,
  billId: string,
  maxLines: number,
  config: Config,
): Promise<InvoiceDocument | null> {
  const { rows } = await db.query<HeaderRow>(
    `SELECT i.invoice_number, i.issued_at, i.document, ia.due_at, b.payment_terms, b.description, b.billing_period_start,
            b.billing_period_end, b.closed_at
       FROM invoices i JOIN bills b USING (bill_id) LEFT JOIN invoice_accounts ia USING (bill_id) WHERE i.bill_id = $1`,
    [billId],
  );
  const h = rows[0];
  if (!h) return null;
  // An invoice finalized by 1.0.0 froze nothing: it had no tax, and its seller is today's.
  const parties = h.document ?? (await freezeParties(db, billId, config))!;
  const exempt = parties.buyer.tax_exempt;
  const [lines, groups] = await Promise.all([
    db.query<LineRow>(
      `SELECT row_number() OVER (ORDER BY li.position) AS position, li.created_at, li.description, li.amount::text AS amount,
              li.currency, r.code, r.name, r.percentage::text AS percentage
         FROM ${LINES_FROM} WHERE li.bill_id = $1 ORDER BY li.position LIMIT $2`,
      [billId, maxLines],
    ),
    taxableGroups(db, billId),
  ]);
  const listed: DocumentLine[] = lines.rows.map((l) => ({
    position: Number(l.position),
    created_at: l.created_at.toISOString(),
    description: l.description,
    amount: parseMinorUnits(l.amount),
    currency: l.currency,
    tax_rate: h.document ? appliedRate(l, exempt) : null,
  }));
  // Per currency and rate as applied (an exempt customer's rates all become one): all, less the listed.
  const unlisted = new Map<string, UnlistedLines>();
  for (const g of groups) {
    const rate = h.document ? appliedRate(g, exempt) : null;
    const key = `${g.currency} ${rate?.code ?? ''}`;
    const sum = unlisted.get(key) ?? { currency: g.currency, tax_rate: rate, count: 0, amount: 0 };
    unlisted.set(key, { ...sum, count: sum.count + parseMinorUnits(g.count), amount: sum.amount + parseMinorUnits(g.net) });
  }
  for (const l of listed) {
    const key = `${l.currency} ${l.tax_rate?.code ?? ''}`;
    const sum = unlisted.get(key)!;
    unlisted.set(key, { ...sum, count: sum.count - 1, amount: sum.amount - l.amount });
  }
  const end = h.closed_at < h.billing_period_end ? h.closed_at : h.billing_period_end;
  return {
    ...parties,
    invoice_number: h.invoice_number,
    issued_at: h.issued_at.toISOString(),
    due_at: (h.due_at ?? h.issued_at).toISOString(),
    payment_terms: h.payment_terms,
    bill_id: billId,
    description: h.description,
    period: { start: h.billing_period_start.toISOString(), end: end.toISOString() },
    lines: listed,
    unlisted: [...unlisted.values()].filter((u) => u.count > 0),
  };
}
