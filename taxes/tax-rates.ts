/**
 * Tax rate use cases, shared by the Encore endpoints and the standalone host. A rate is created
 * once and never changes (an issued invoice must keep meaning the same rate): creating a code again
 * with the same values answers the rate; with other values it is refused, naming the field.
 */
import { percentageText } from '../invoices/tax';
import { recordAudit, type Actor } from '../core/audit';
import { inTransaction } from '../core/db';
import { idempotently, type Deps } from '../core/deps';
import { fingerprint, type IdempotencyKey } from '../core/idempotency';
import { checkStorable, fieldError } from '../core/validate';
import { isCountryCode } from '../core/parties';
import type { CreateTaxRateBody } from './requests';
import { findTaxRates, insertTaxRate, listTaxRates as listStored } from './store';
import type { TaxRate, TaxRateList } from './types';

export async function createTaxRate(deps: Deps, body: CreateTaxRateBody, key: IdempotencyKey | undefined, actor: Actor): Promise<TaxRate> {
  if (body.inclusive) throw fieldError('inclusive', 'must be false: tax-inclusive amounts are not supported, every amount is net');
  if (body.country != null && !isCountryCode(body.country)) throw fieldError('country', 'is not an ISO 3166-1 alpha-2 country code');
  checkStorable({ name: body.name, description: body.description });
  const wanted = {
    code: body.code,
    name: body.name,
    percentage: percentageText(body.percentage),
    country: body.country ?? null,
    description: body.description ?? null,
  };
  const operation = 'POST /tax-rates';
  return idempotently(deps, key, operation, fingerprint(operation, wanted), () => createOnce(deps, wanted, actor));
}

async function createOnce(deps: Deps, wanted: Omit<TaxRate, 'created_at' | 'inclusive'>, actor: Actor): Promise<TaxRate> {
  return inTransaction(deps.db, async (tx) => {
    const { rate, created } = await insertTaxRate(tx, wanted);
    if (created) {
      await recordAudit(tx, { bill_id: null, subject: 'tax_rate', subject_id: rate.code, action: 'created', actor, data: wanted });
      return rate;
    }
    const changed = (['percentage', 'name', 'country', 'description'] as const).find((field) => rate[field] !== wanted[field]);
    if (changed) {
      throw fieldError(
        changed,
        `differs from tax rate ${rate.code}'s (${JSON.stringify(rate[changed])}): a tax rate never changes once created; create a new code`,
      );
    }
    return rate;
  });
}

export async function listTaxRates(deps: Deps): Promise<TaxRateList> {
  return { tax_rates: await listStored(deps.db) };
}

// Codes that exist, remembered per process: rates are never deleted, so a code seen once exists
// for ever, and an add with rates costs no query after the first.
const known = new Set<string>();

/** Refuses a list naming a rate that does not exist (or the same rate twice), naming the field. */
export async function checkTaxRateCodes(deps: Deps, codes: string[] | null | undefined, field: string): Promise<void> {
  if (!codes || codes.length === 0) return;
  if (new Set(codes).size !== codes.length) throw fieldError(field, 'names a tax rate twice');
  const unknown = codes.filter((c) => !known.has(c));
  if (unknown.length === 0) return;
  const found = await findTaxRates(deps.db, unknown);
  for (const r of found) known.add(r.code);
  const missing = unknown.filter((c) => !known.has(c));
  if (missing.length > 0) throw fieldError(field, `names tax rates that do not exist: ${missing.join(', ')} (POST /tax-rates creates one)`);
}
