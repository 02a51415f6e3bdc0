/**
 * The checks a party of an invoice needs (the seller's configuration, a customer): a country that
 * exists, a VAT number that is well formed for its country, a bank account. Libraries hold the
 * tables (i18n-iso-countries, jsvat, ibantools); this module only says what we accept.
 */
import countries from 'i18n-iso-countries';
import { checkVAT, countries as vatCountries } from 'jsvat';
import { electronicFormatIBAN, isValidBIC, isValidIBAN } from 'ibantools';

/** ISO 3166-1 alpha-2, upper case (as EN 16931 and UBL write it). */
export const isCountryCode = (code: string): boolean => /^[A-Z]{2}$/.test(code) && countries.isValid(code);

/**
 * Why a tax ID is not a VAT number of `country`, or null when it is (or when we have no rule for
 * that country: then any text is taken as it is). Checked where a pattern and a check digit are
 * known (the EU's countries and a few others, jsvat's list): the country prefix, the length and
 * the checksum. (Greece's VAT numbers start with EL, its ISO code is GR: jsvat knows.)
 */
export function taxIdProblem(taxId: string, country: string): string | null {
  const known = vatCountries.find((c) => c.codes[0] === country);
  if (!known) return null;
  const result = checkVAT(normalizeTaxId(taxId), [known]);
  if (result.isValid) return null;
  return result.isValidFormat
    ? `is not a valid VAT number of ${country}: its check digits do not match`
    : `is not a VAT number of ${country} (its country prefix, length and pattern)`;
}

/** A VAT number as invoices print it: upper case, no spaces, dots or dashes. */
export const normalizeTaxId = (taxId: string) => taxId.replace(/[\s.-]/g, '').toUpperCase();

/** An IBAN in its electronic form (no spaces), or null when it is not a valid IBAN. */
export function normalizeIban(iban: string): string | null {
  const electronic = electronicFormatIBAN(iban);
  return electronic && isValidIBAN(electronic) ? electronic : null;
}

export const isBic = (bic: string): boolean => isValidBIC(bic.toUpperCase());
