/**
 * Invoices a finance team can send, on the real stack: a customer with an address and a VAT number
 * on a bill with two tax rates in two currencies; the tax computed per rate and currency, the PDF
 * naming both parties, each rate and the totals; an EN 16931 UBL e-invoice per currency that the
 * UBL 2.1 schema and the EN 16931 rules accept and whose totals are the API's; an invoice that a
 * later change of its customer leaves as issued; a credit note split like its invoice; a bill
 * closed with nothing on it that gets no invoice and no number; and the audit trail of it all.
 */
import { createHash } from 'node:crypto';
import { validateUbl } from '../helpers/einvoice';
import { accountOf, eventCount, invoiceWhen, issuedInvoice, pdfAt } from '../helpers/invoices';
import { pdfText, startSmtpPeer, type ReceivedMail, type SmtpPeer } from '../helpers/smtp';
import { call, inSeconds, uid, type Stack, startStack } from '../helpers/stack';

const received: ReceivedMail[] = [];
let smtp: SmtpPeer;
let stack: Stack;
// A series of its own: the numbers this file's invoices get are consecutive whatever runs beside it.
const PREFIX = `TX${Date.now().toString(36).toUpperCase().slice(-8)}`;
const SELLER = {
  SELLER_NAME: 'Muster Abrechnung GmbH',
  SELLER_ADDRESS_LINE1: 'Hauptstraße 5',
  SELLER_CITY: 'München',
  SELLER_POSTAL_CODE: '80331',
  SELLER_COUNTRY: 'DE',
  SELLER_TAX_ID: 'DE 123 456 788',
  SELLER_IBAN: 'DE89 3704 0044 0532 0130 00',
  SELLER_BIC: 'COBADEFFXXX',
  SELLER_BANK_NAME: 'Commerzbank',
};

beforeAll(async () => {
  smtp = await startSmtpPeer(0, received);
  stack = await startStack({
    SMTP_URL: smtp.url,
    INVOICE_FROM: 'Muster Billing <billing@muster.test>',
    INVOICE_NUMBER_PREFIX: PREFIX,
    ...SELLER,
  });
});
afterAll(async () => {
  await stack?.stop();
  await smtp?.stop();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const rateCode = (name: string) => `${name}-${uid('r').slice(2)}`;

async function file(path: string): Promise<{ status: number; type: string | null; body: Buffer }> {
  const res = await fetch(stack.url + path);
  return { status: res.status, type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}

/** A decimal amount of an element of a UBL document (the first one with that name). */
const ublAmount = (xml: string, element: string) => Number(new RegExp(`<cbc:${element}[^>]*>([0-9.]+)<`).exec(xml)?.[1]);

describe('tax rates and customers', () => {
  it('refuses bad input with a 400 naming the field, and a rate never changes', async () => {
    const code = rateCode('VAT');
    const bad = async (body: unknown, field: string) => {
      const reply = await call(stack, 'POST', '/tax-rates', body);
      expect({ status: reply.status, field: reply.body.details?.field }).toEqual({ status: 400, field });
    };
    await bad({ code, name: 'VAT', percentage: '101' }, 'percentage');
    await bad({ code, name: 'VAT', percentage: '-1' }, 'percentage');
    await bad({ code, name: 'VAT', percentage: '19', country: 'XX' }, 'country');
    await bad({ code, name: 'VAT', percentage: '19', inclusive: true }, 'inclusive');
    expect((await call(stack, 'GET', '/tax-rates')).body.tax_rates.map((r: { code: string }) => r.code)).not.toContain(code);

    const created = await call(stack, 'POST', '/tax-rates', { code, name: 'VAT 19 %', percentage: '19.000', country: 'DE' });
    expect(created.body).toMatchObject({ code, name: 'VAT 19 %', percentage: '19', inclusive: false, country: 'DE' });
    // The same rate again is the same rate; another percentage under its code is refused.
    expect((await call(stack, 'POST', '/tax-rates', { code, name: 'VAT 19 %', percentage: '19', country: 'DE' })).body).toEqual(
      created.body,
    );
    await bad({ code, name: 'VAT 19 %', percentage: '16', country: 'DE' }, 'percentage');

    const customer = (body: Record<string, unknown>) =>
      call(stack, 'POST', '/customers', {
        name: 'Kunde AG',
        email: 'ap@kunde.test',
        address: { line1: 'Weg 1', city: 'Berlin', postal_code: '10115', country: 'DE' },
        ...body,
      });
    for (const [body, field] of [
      [{ address: { line1: 'Weg 1', city: 'Berlin', postal_code: '10115', country: 'XX' } }, 'address.country'],
      [{ tax_id: 'DE123' }, 'tax_id'],
      [{ tax_id: 'DE123456789' }, 'tax_id'], // a German pattern, wrong check digit
      [{ tax_rates: ['no-such-rate'] }, 'tax_rates'],
    ] as const) {
      const reply = await customer(body);
      expect({ status: reply.status, field: reply.body.details?.field }).toEqual({ status: 400, field });
    }
    const bill = await call(stack, 'POST', '/bills', { billing_period_end: inSeconds(3600), customer_id: 'no-such-customer' });
    expect({ status: bill.status, field: bill.body.details?.field }).toEqual({ status: 400, field: 'customer_id' });
  });
});

describe('an invoice with parties, two rates and two currencies', () => {
  let billId: string;
  let customerId: string;
  let vat19: string;
  let vat7: string;

  beforeAll(async () => {
    vat19 = rateCode('DE-VAT-19');
    vat7 = rateCode('DE-VAT-7');
    expect((await call(stack, 'POST', '/tax-rates', { code: vat19, name: 'USt 19 %', percentage: '19', country: 'DE' })).status).toBe(200);
    expect((await call(stack, 'POST', '/tax-rates', { code: vat7, name: 'USt 7 %', percentage: '7', country: 'DE' })).status).toBe(200);
    customerId = uid('cust');
    const created = await call(stack, 'POST', '/customers', {
      customer_id: customerId,
      name: 'Beispiel Kunde GmbH',
      email: `${customerId}@kunde.test`,
      address: { line1: 'Kundenallee 7', line2: '3. OG', city: 'Hamburg', postal_code: '20095', country: 'DE' },
      tax_id: 'DE136695976',
      tax_rates: [vat19],
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({ customer_id: customerId, tax_id: 'DE136695976', tax_rates: [vat19], version: 1 });

    billId = uid();
    expect(
      (await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600), customer_id: customerId })).status,
    ).toBe(200);
    // Lines at the customer's default rate (19 %) and at their own (7 %), in EUR and USD.
    for (const item of [
      { amount: 10000, currency: 'EUR', description: 'Platform fee' },
      { amount: 5000, currency: 'EUR', description: 'Books', tax_rates: [vat7] },
      { amount: 2000, currency: 'USD', description: 'API calls' },
      { amount: 333, currency: 'USD', description: 'Printed manual', tax_rates: [vat7] },
    ]) {
      const added = await call(stack, 'POST', `/bills/${billId}/line-items`, item);
      expect(added.status).toBe(200);
      expect(added.body.line_item.tax_rates).toEqual(item.tax_rates ?? null);
    }
    expect((await call(stack, 'POST', `/bills/${billId}/close`)).status).toBe(200);
    await issuedInvoice(stack, billId);
  });

  it('taxes each rate and currency once, half up, and the account is gross', async () => {
    const { invoice } = await accountOf(stack, billId);
    // EUR: 19 % of 100.00 = 19.00, 7 % of 50.00 = 3.50. USD: 19 % of 20.00 = 3.80, 7 % of 3.33 = 0.2331 → 0.23.
    expect(invoice.amounts).toEqual([
      { currency: 'EUR', net: 15000, tax: 2250, total: 17250, credited: 0, paid: 0, due: 17250 },
      { currency: 'USD', net: 2333, tax: 403, total: 2736, credited: 0, paid: 0, due: 2736 },
    ]);
    expect(invoice.taxes.map((t) => [t.currency, t.code, t.percentage, t.category, t.net, t.tax])).toEqual(
      [
        ['EUR', vat19, '19', 'S', 10000, 1900],
        ['EUR', vat7, '7', 'S', 5000, 350],
        ['USD', vat19, '19', 'S', 2000, 380],
        ['USD', vat7, '7', 'S', 333, 23],
      ].sort((a, b) => `${a[0]} ${a[1]}`.localeCompare(`${b[0]} ${b[1]}`)),
    );
    const bill = (await call(stack, 'GET', `/bills/${billId}`)).body;
    expect(bill.customer_id).toBe(customerId);
    expect(bill.invoice.amounts).toEqual(invoice.amounts);
  });

  it('prints both parties, each rate and the totals on the PDF, and emails it with its e-invoices', async () => {
    const text = await pdfText(await pdfAt(stack, `/bills/${billId}/invoice`));
    for (const expected of [
      'Muster Abrechnung GmbH',
      'Hauptstraße 5',
      '80331',
      'DE123456788',
      'Beispiel Kunde GmbH',
      'Kundenallee 7',
      '20095 Hamburg',
      'DE136695976',
      'USt 19 %',
      'USt 7 %',
      '172.50',
      '27.36',
      'DE89 3704 0044 0532 0130 00',
    ]) {
      expect(text).toContain(expected);
    }
    const number = (await accountOf(stack, billId)).invoice.invoice_number;
    const mail = received.find((m) => m.mail.subject?.includes(number));
    expect(mail?.mail.to).toMatchObject({ text: `${customerId}@kunde.test` });
    expect(mail?.mail.attachments.map((a) => [a.contentType, a.filename])).toEqual([
      ['application/pdf', expect.stringMatching(/\.pdf$/)],
      ['application/xml', expect.stringMatching(/-EUR\.xml$/)],
      ['application/xml', expect.stringMatching(/-USD\.xml$/)],
    ]);
  });

  it('answers an EN 16931 UBL document per currency that the schema and the rules accept, with the API totals', async () => {
    const missing = await file(`/bills/${billId}/invoice?format=ubl`);
    expect(missing.status).toBe(400);
    expect(JSON.parse(missing.body.toString()).details.field).toBe('currency');
    expect((await file(`/bills/${billId}/invoice?format=xml`)).status).toBe(400);
    const { invoice } = await accountOf(stack, billId);
    for (const amounts of invoice.amounts) {
      const ubl = await file(`/bills/${billId}/invoice?format=ubl&currency=${amounts.currency}`);
      expect({ status: ubl.status, type: ubl.type }).toEqual({ status: 200, type: 'application/xml' });
      const xml = ubl.body.toString();
      const { schemaErrors, ruleFailures } = await validateUbl(xml);
      expect(schemaErrors).toEqual([]);
      expect(ruleFailures.filter((f) => f.flag === 'fatal')).toEqual([]);
      const minor = (element: string) => Math.round(ublAmount(xml, element) * 100);
      expect([minor('TaxExclusiveAmount'), minor('TaxAmount'), minor('PayableAmount')]).toEqual([amounts.net, amounts.tax, amounts.total]);
      expect(xml).toContain(`<cbc:ID>${invoice.invoice_number}-${amounts.currency}</cbc:ID>`);
      expect(xml).toContain('Beispiel Kunde GmbH');
    }
  });

  it('keeps the issued invoice as it was when its customer changes', async () => {
    const before = await pdfAt(stack, `/bills/${billId}/invoice`);
    const changed = await call(stack, 'PATCH', `/customers/${customerId}`, {
      name: 'Umbenannt SE',
      address: { line1: 'Neue Straße 1', city: 'Köln', postal_code: '50667', country: 'DE' },
    });
    expect(changed.body).toMatchObject({ name: 'Umbenannt SE', version: 2 });
    expect(sha(await pdfAt(stack, `/bills/${billId}/invoice`))).toBe(sha(before));
    const xml = (await file(`/bills/${billId}/invoice?format=ubl&currency=EUR`)).body.toString();
    expect(xml).toContain('Beispiel Kunde GmbH');
    expect(xml).not.toContain('Umbenannt');
  });

  it('splits a credit note’s tax like its invoice, and its e-invoice passes the rules too', async () => {
    const issued = await call(
      stack,
      'POST',
      `/bills/${billId}/credit-notes`,
      { lines: [{ amount: 1725, currency: 'EUR', reason: 'Goodwill: 10 %' }], reason: 'Late delivery' },
      { 'Idempotency-Key': uid('k') },
    );
    expect(issued.status).toBe(200);
    const note = issued.body.credit_note;
    // 17.25 over gross 119.00 (19 %) and 53.50 (7 %): 11.90 and 5.35, split back into net and tax.
    expect(note.taxes.map((t: { code: string; net: number; tax: number }) => [t.code, t.net, t.tax])).toEqual(
      [
        [vat19, 1000, 190],
        [vat7, 500, 35],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );
    expect(issued.body.invoice.amounts[0]).toMatchObject({ currency: 'EUR', total: 17250, credited: 1725, due: 15525 });
    const xml = (await file(`/bills/${billId}/credit-notes/${note.credit_note_id}/pdf?format=ubl`)).body.toString();
    const { schemaErrors, ruleFailures } = await validateUbl(xml);
    expect(schemaErrors).toEqual([]);
    expect(ruleFailures.filter((f) => f.flag === 'fatal')).toEqual([]);
    expect(Math.round(ublAmount(xml, 'PayableAmount') * 100)).toBe(1725);
    expect(xml).toContain('Beispiel Kunde GmbH'); // its invoice's buyer, not the renamed customer
  });

  it('records who changed what, when and why', async () => {
    const audit = (await call(stack, 'GET', `/bills/${billId}/audit`)).body.entries as {
      subject: string;
      action: string;
      actor: string;
      reason: string | null;
    }[];
    expect(audit.map((e) => [e.subject, e.action, e.actor])).toEqual([
      ['bill', 'created', 'anonymous'],
      ['line_item', 'added', 'anonymous'],
      ['line_item', 'added', 'anonymous'],
      ['line_item', 'added', 'anonymous'],
      ['line_item', 'added', 'anonymous'],
      ['bill', 'closed on request', 'anonymous'],
      ['invoice', 'finalized', 'system'],
      ['credit_note', 'issued (partial)', 'anonymous'],
    ]);
    expect(audit[7].reason).toBe('Late delivery');
  });
});

describe('a bill closed with nothing on it', () => {
  it('gets no invoice, no number and no invoice.paid, and the series stays gap-free', async () => {
    const close = async (amount: number | null) => {
      const billId = uid();
      await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
      if (amount) await call(stack, 'POST', `/bills/${billId}/line-items`, { amount, currency: 'EUR', description: 'x' });
      expect((await call(stack, 'POST', `/bills/${billId}/close`)).status).toBe(200);
      return billId;
    };
    const first = await close(100);
    const firstNumber = (await issuedInvoice(stack, first)).invoice_number!;
    const empty = await close(null);
    const invoice = await invoiceWhen(stack, empty, (i) => i.status === 'no_invoice');
    expect(invoice).toMatchObject({ invoice_number: null, payment_status: null, amounts: [] });
    expect((await file(`/bills/${empty}/invoice`)).status).toBe(404);
    expect(await eventCount(stack, empty, 'invoice.paid')).toBe(0);
    expect(await eventCount(stack, empty, 'invoice.finalized')).toBe(0);
    const next = (await issuedInvoice(stack, await close(200))).invoice_number!;
    const serial = (n: string) => Number(n.slice(-6));
    expect(serial(next)).toBe(serial(firstNumber) + 1);
  });
});
