/**
 * Customer use cases, shared by the Encore endpoints and the standalone host. A bill (or a series)
 * names its customer; the invoice freezes a copy of it at finalization, so changing a customer
 * never changes an invoice already issued.
 */
import { v4 as uuidv4, v5 as uuidv5 } from 'uuid';
import { recordAudit, type Actor } from '../core/audit';
import { inTransaction } from '../core/db';
import { idempotently, type Deps } from '../core/deps';
import { AppError, notFound } from '../core/errors';
import { fingerprint, type IdempotencyKey } from '../core/idempotency';
import { decodeCursor, encodeCursor, isId, isIsoInstant, pageSize } from '../core/validate';
import { checkTaxRateCodes } from '../taxes/tax-rates';
import { addressOf, checkCustomer } from './customer-rules';
import type { CreateCustomerBody, ListCustomersQuery, UpdateCustomerBody } from './requests';
import { findCustomer, insertCustomer, saveCustomer, selectCustomersPage, type CustomerFields } from './store';
import type { Customer, CustomerPage } from './types';

// Fixed namespace: a customer id derived from an idempotency key is the same on every retry.
const CUSTOMER_ID_NAMESPACE = '0c6f3a52-8d1e-4b7a-9f25-3e4d6c8b1a07';

export const customerNotFound = (customerId: string, field = 'customerId') =>
  notFound(`customer ${customerId} not found`, { customer_id: customerId, field });

export async function createCustomer(
  deps: Deps,
  body: CreateCustomerBody,
  key: IdempotencyKey | undefined,
  actor: Actor,
): Promise<Customer> {
  const fields = checkCustomer({
    name: body.name,
    email: body.email,
    address: addressOf(body.address),
    tax_id: body.tax_id ?? null,
    tax_exempt: body.tax_exempt ?? false,
    locale: body.locale ?? null,
    tax_rates: body.tax_rates ?? [],
  });
  await checkTaxRateCodes(deps, fields.tax_rates, 'tax_rates');
  const operation = 'POST /customers';
  const print = fingerprint(operation, { customer_id: body.customer_id ?? null, ...fields });
  return idempotently(deps, key, operation, print, async (seed) => {
    const customerId = body.customer_id ?? (seed ? uuidv5(seed, CUSTOMER_ID_NAMESPACE) : uuidv4());
    return inTransaction(deps.db, async (tx) => {
      const stored = await insertCustomer(tx, customerId, fields, print);
      if (stored.created) {
        await recordAudit(tx, { bill_id: null, subject: 'customer', subject_id: customerId, action: 'created', actor });
      } else if (stored.fingerprint !== print) {
        throw new AppError('already_exists', `customer ${customerId} already exists; PATCH /customers/${customerId} changes it`, {
          customer_id: customerId,
        });
      }
      return stored.customer;
    });
  });
}

export async function getCustomer(deps: Deps, customerId: string): Promise<Customer> {
  const customer = await findCustomer(deps.db, customerId);
  if (!customer) throw customerNotFound(customerId);
  return customer;
}

export async function listCustomers(deps: Deps, query: ListCustomersQuery): Promise<CustomerPage> {
  const limit = pageSize(query.limit, 20, 100);
  const after = decodeCursor(query.cursor, (p) => p.length === 2 && isIsoInstant(p[0]) && isId(p[1])) as [string, string] | null;
  const rows = await selectCustomersPage(deps.db, limit + 1, after);
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { customers: page, next_cursor: rows.length > limit ? encodeCursor([last.created_at, last.customer_id]) : null };
}

export async function updateCustomer(
  deps: Deps,
  customerId: string,
  body: UpdateCustomerBody,
  key: IdempotencyKey | undefined,
  actor: Actor,
): Promise<Customer> {
  if (body.tax_rates) await checkTaxRateCodes(deps, body.tax_rates, 'tax_rates');
  const address = body.address === undefined ? undefined : addressOf(body.address);
  const operation = 'PATCH /customers/:customerId';
  return idempotently(deps, key, operation, fingerprint(operation, { customer_id: customerId, ...body }), () =>
    inTransaction(deps.db, async (tx) => {
      const before = await findCustomer(tx, customerId, true);
      if (!before) throw customerNotFound(customerId);
      const after: CustomerFields = checkCustomer({
        name: body.name ?? before.name,
        email: body.email ?? before.email,
        address: address ?? before.address,
        tax_id: body.tax_id === undefined ? before.tax_id : body.tax_id,
        tax_exempt: body.tax_exempt ?? before.tax_exempt,
        locale: body.locale === undefined ? before.locale : body.locale,
        tax_rates: body.tax_rates === undefined ? before.tax_rates : (body.tax_rates ?? []),
      });
      const changed = (Object.keys(after) as (keyof CustomerFields)[]).filter(
        (k) => JSON.stringify(after[k]) !== JSON.stringify(before[k]),
      );
      if (changed.length === 0) return before;
      const saved = await saveCustomer(tx, customerId, after);
      await recordAudit(tx, { bill_id: null, subject: 'customer', subject_id: customerId, action: 'updated', actor, data: { changed } });
      return saved;
    }),
  );
}
