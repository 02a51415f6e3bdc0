/**
 * What a customer must be that its request's shape cannot say: a country that exists and a VAT
 * number that fits it (where its pattern is known), text Postgres stores as sent. Pure.
 */
import { isCountryCode, normalizeTaxId, taxIdProblem } from '../core/parties';
import { checkStorable, fieldError } from '../core/validate';
import type { PostalAddress } from '../invoices/document';
import type { CustomerFields } from './store';

/** An address as a request gives it (its shape checked): the optional parts may be absent. */
export type AddressInput = Omit<PostalAddress, 'line2' | 'region'> & { line2?: string | null; region?: string | null };

export function addressOf(body: AddressInput, field = 'address'): PostalAddress {
  if (!isCountryCode(body.country)) throw fieldError(`${field}.country`, 'is not an ISO 3166-1 alpha-2 country code');
  return {
    line1: body.line1,
    line2: body.line2 ?? null,
    city: body.city,
    postal_code: body.postal_code,
    country: body.country,
    region: body.region ?? null,
  };
}

/** Checks a customer's fields as they will be stored (after a change is applied, for PATCH). */
export function checkCustomer(c: CustomerFields): CustomerFields {
  checkStorable({ name: c.name, email: c.email, address: c.address, tax_id: c.tax_id, locale: c.locale });
  if (c.tax_id === null) return c;
  const problem = taxIdProblem(c.tax_id, c.address.country);
  if (problem) throw fieldError('tax_id', problem);
  return { ...c, tax_id: normalizeTaxId(c.tax_id) };
}
