/**
 * The seller an invoice names, from configuration (SELLER_*, validated at start-up by
 * core/config.ts). With none configured a demo seller stands in, so `npm start` issues complete
 * invoices on its defaults; its name says it is a demo, and NODE_ENV=production refuses to start
 * without a real one.
 */
import { readFileSync } from 'node:fs';
import type { Config } from '../core/config';
import { normalizeTaxId } from '../core/parties';
import type { Seller } from './document';
import { mailAddress } from './mailer';

export function sellerOf(config: Config): Seller {
  const s = config.seller;
  const email = mailAddress(s.email ?? config.invoice.from);
  if (s.name === undefined) {
    return {
      name: 'Fees API demo seller (set SELLER_NAME)',
      address: { line1: 'Example Street 1', line2: null, city: 'Berlin', postal_code: '10115', country: 'DE', region: null },
      // A well-formed German VAT number that belongs to nobody, and the IBAN of the standard's examples.
      tax_id: 'DE123456788',
      email,
      payment: {
        text: 'Demo seller: configure SELLER_* to print your own payment details.',
        bank_name: null,
        iban: 'DE89370400440532013000',
        bic: null,
      },
    };
  }
  return {
    name: s.name,
    address: {
      line1: s.addressLine1!,
      line2: s.addressLine2 ?? null,
      city: s.city!,
      postal_code: s.postalCode!,
      country: s.country!,
      region: s.region ?? null,
    },
    tax_id: s.taxId === undefined ? null : normalizeTaxId(s.taxId),
    email,
    payment: {
      text: s.paymentInstructions ?? null,
      bank_name: s.bankName ?? null,
      iban: s.iban ?? null,
      bic: s.bic?.toUpperCase() ?? null,
    },
  };
}

const logos = new Map<string, Buffer>();

/** The logo's bytes, read once per process (the file was checked at start-up). */
export function sellerLogo(config: Config): Buffer | null {
  const file = config.seller.logoPath;
  if (!file) return null;
  if (!logos.has(file)) logos.set(file, readFileSync(file));
  return logos.get(file)!;
}
