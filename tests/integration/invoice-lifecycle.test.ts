/**
 * Invoices after the close, on the real stack: a draft that still takes late usage during its
 * grace period, payments per currency up to paid, overdue at a short due date, credit notes that
 * never credit more than the invoice, and a void that keeps the original invoice. Every write is
 * sent twice with its idempotency key and applied once; the outbox holds each event once. Due
 * dates and write-offs have files of their own (invoice-due-dates, invoice-write-off), which run
 * beside this one.
 */
import { createHash } from 'node:crypto';
import { call, eventually, expectReplayOf, inSeconds, ledgerSums, rowsOf, startStack, uid, type Stack } from '../helpers/stack';
import { accountOf, eventCount, invoiceEvents, invoiceOf, invoiceWhen, issuedBill, issuedInvoice, pdfAt } from '../helpers/invoices';
import { pdfText, startSmtpPeer, type ReceivedMail, type SmtpPeer } from '../helpers/smtp';

const received: ReceivedMail[] = [];
let smtp: SmtpPeer;
let stack: Stack;

beforeAll(async () => {
  smtp = await startSmtpPeer(0, received);
  stack = await startStack({ SMTP_URL: smtp.url, INVOICE_FROM: 'Fees Test <billing@fees.test>' });
});
afterAll(async () => {
  await stack.stop();
  await smtp.stop();
});

const key = (k: string) => ({ 'Idempotency-Key': k });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Sends a write twice under one key: the second answer is the first, byte for byte. */
async function twice(method: string, path: string, body: unknown) {
  const k = uid('k');
  const first = await call(stack, method, path, body, key(k));
  expectReplayOf(await call(stack, method, path, body, key(k)), first);
  return first;
}

/** A closed bill with its invoice issued and emailed (see issuedBill). */
const closedBill = (items: [number, string][], extra: Record<string, unknown> = {}) =>
  issuedBill(stack, items, { customer_email: `${uid('c')}@example.com`, ...extra });

const typesOf = async (billId: string) => (await invoiceEvents(stack, billId)).map((e) => e.type);
const pdfOf = (path: string) => pdfAt(stack, path);

describe('grace period', () => {
  it('a late item inside the grace period lands on the invoice; one after finalization is refused', async () => {
    const billId = uid();
    const created = await call(stack, 'POST', '/bills', {
      bill_id: billId,
      billing_period_end: inSeconds(2),
      grace_period: 'PT5S',
      customer_email: 'late@example.com',
    });
    expect(created.body).toMatchObject({ status: 'open', grace_period: 'PT5S', payment_terms: 'P30D' });
    expect(
      (await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 1000, currency: 'EUR', description: 'in period' })).status,
    ).toBe(200);
    const draft = await eventually(async () => {
      const bill = (await call(stack, 'GET', `/bills/${billId}`)).body;
      return bill.status === 'draft' && bill;
    }, 15_000);
    // As instants: the period end may be written without milliseconds, drafted_at never is.
    expect(Date.parse(draft.drafted_at)).toBeGreaterThanOrEqual(Date.parse(draft.billing_period_end));
    expect(draft.invoice).toBeNull();
    const listed = (await call(stack, 'GET', '/bills?status=draft&limit=100')).body.bills.map((b: { bill_id: string }) => b.bill_id);
    expect(listed).toContain(billId);

    const late = await twice('POST', `/bills/${billId}/line-items`, { amount: 250, currency: 'EUR', description: 'late usage' });
    expect(late.status).toBe(200);
    expect(late.body.totals).toMatchObject([{ currency: 'EUR', amount: 1250, line_item_count: 2 }]);

    // Finalized by its grace period's end, with the late item on the invoice.
    await issuedInvoice(stack, billId);
    const closed = (await call(stack, 'GET', `/bills/${billId}`)).body;
    expect(closed).toMatchObject({ status: 'closed', totals: [{ currency: 'EUR', amount: 1250, line_item_count: 2 }] });
    expect(await ledgerSums(stack, billId)).toEqual({ n: 2, total: '1250' });
    expect(closed.invoice.amounts).toEqual([{ currency: 'EUR', net: 1250, tax: 0, total: 1250, credited: 0, paid: 0, due: 1250 }]);
    const text = await pdfText(await pdfOf(`/bills/${billId}/invoice`));
    expect(text).toContain('late usage');
    expect(text).toContain('12.50');

    const after = await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 1, currency: 'EUR', description: 'too late' });
    expect(after.status).toBe(400);
    expect(after.body.code).toBe('failed_precondition');
    expect(await typesOf(billId)).toEqual(expect.arrayContaining(['bill.created', 'bill.drafted', 'bill.closed', 'invoice.finalized']));
  });

  it('POST /finalize ends a draft now; a zero grace period closes at the period end as before', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(1), grace_period: 'P1D' });
    await eventually(async () => (await call(stack, 'GET', `/bills/${billId}`)).body.status === 'draft', 15_000);
    const finalizedNow = await twice('POST', `/bills/${billId}/finalize`, undefined);
    expect(finalizedNow.body.bill.status).toBe('closed');

    const plain = uid();
    await call(stack, 'POST', '/bills', { bill_id: plain, billing_period_end: inSeconds(1) });
    const closed = await eventually(async () => {
      const bill = (await call(stack, 'GET', `/bills/${plain}`)).body;
      return bill.status === 'closed' && bill;
    }, 15_000);
    expect(closed.drafted_at).toBeNull();
  });
  it('a series passes its grace period on, and opens the next period when a draft begins', async () => {
    const first = uid();
    await call(stack, 'POST', '/bills', {
      bill_id: first,
      policy: 'recurring',
      interval: 'PT4S',
      grace_period: 'PT2S',
      payment_terms: 'P7D',
    });
    const draft = await eventually(async () => {
      const bill = (await call(stack, 'GET', `/bills/${first}`)).body;
      return bill.status === 'draft' && bill.next_bill_id && bill;
    }, 15_000);
    const next = (await call(stack, 'GET', `/bills/${draft.next_bill_id}`)).body;
    // The next period starts where this one ended, while this one is still a draft.
    expect(next).toMatchObject({
      status: 'open',
      grace_period: 'PT2S',
      payment_terms: 'P7D',
      billing_period_start: draft.billing_period_end,
    });
    expect((await call(stack, 'POST', `/bills/${next.bill_id}/cancel`, { close_now: true })).status).toBe(200);
    await eventually(async () => (await call(stack, 'GET', `/bills/${first}`)).body.status === 'closed', 15_000);
  });
});

describe('payments', () => {
  it('a partial payment, then the rest (each currency on its own), gives paid; overpayment is refused and writes nothing', async () => {
    const billId = await closedBill([
      [1000, 'EUR'],
      [500, 'USD'],
    ]);
    const path = `/bills/${billId}/invoice/payments`;
    const first = await twice('POST', path, { amount: 400, currency: 'EUR', reference: 'bank-1' });
    expect(first.status).toBe(200);
    expect(first.body.invoice).toMatchObject({ status: 'partially_paid' });

    // Refused: the bill's rows (its events among them) and the keys sent stay as they were.
    const [overKey, wrongKey] = [uid('k'), uid('k')];
    const scope = { bills: [billId], keys: [overKey, wrongKey] };
    const accountBefore = await accountOf(stack, billId);
    const before = await rowsOf(stack.db, scope);
    const over = await call(stack, 'POST', path, { amount: 601, currency: 'EUR' }, key(overKey));
    expect(over.status).toBe(400);
    expect(over.body).toMatchObject({ code: 'failed_precondition', details: { field: 'amount', currency: 'EUR', due: 600 } });
    const wrong = await call(stack, 'POST', path, { amount: 1, currency: 'GBP' }, key(wrongKey));
    expect(wrong.status).toBe(400);
    expect(await rowsOf(stack.db, scope)).toEqual(before);
    expect(await accountOf(stack, billId)).toEqual(accountBefore);

    // Money moves only under a key; a key reused for another payment after its record expired
    // is refused by the payment's own fingerprint, not answered as the first one.
    const keyless = await call(stack, 'POST', path, { amount: 1, currency: 'EUR' });
    expect(keyless.status).toBe(400);
    expect(keyless.body.details).toMatchObject({ field: 'Idempotency-Key' });
    const reused = uid('k');
    expect((await call(stack, 'POST', path, { amount: 1, currency: 'EUR' }, key(reused))).status).toBe(200);
    await stack.db.query('DELETE FROM idempotency_keys WHERE key = $1', [reused]);
    const other = await call(stack, 'POST', path, { amount: 2, currency: 'EUR' }, key(reused));
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({ code: 'already_exists', details: { field: 'idempotency_key' } });

    expect((await twice('POST', path, { amount: 599, currency: 'EUR' })).body.invoice.status).toBe('partially_paid');
    const last = await twice('POST', path, { amount: 500, currency: 'USD', paid_at: '2026-01-02T03:04:05Z' });
    expect(last.body.invoice).toMatchObject({ status: 'paid', paid_at: '2026-01-02T03:04:05.000Z' });

    const invoice = await invoiceOf(stack, billId);
    expect(invoice).toMatchObject({ payment_status: 'paid' });
    expect(invoice!.amounts).toEqual([
      { currency: 'EUR', net: 1000, tax: 0, total: 1000, credited: 0, paid: 1000, due: 0 },
      { currency: 'USD', net: 500, tax: 0, total: 500, credited: 0, paid: 500, due: 0 },
    ]);
    const account = await accountOf(stack, billId);
    expect(account.payments.map((p) => p.amount)).toEqual([400, 1, 599, 500]);
    const paidList = (await call(stack, 'GET', '/bills?invoice_status=paid&limit=100')).body.bills.map(
      (b: { bill_id: string }) => b.bill_id,
    );
    expect(paidList).toContain(billId);
    const events = await typesOf(billId);
    expect(events.filter((t) => t === 'invoice.payment_recorded')).toHaveLength(4);
    expect(events.filter((t) => t === 'invoice.paid')).toHaveLength(1);
    // Paid: the lifecycle has ended; a later payment starts it again and is refused as overpayment.
    const againKey = uid('k');
    const paidRows = await rowsOf(stack.db, { bills: [billId], keys: [againKey] });
    const again = await call(stack, 'POST', path, { amount: 1, currency: 'EUR' }, key(againKey));
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ code: 'failed_precondition', details: { due: 0 } });
    expect(await rowsOf(stack.db, { bills: [billId], keys: [againKey] })).toEqual(paidRows);
  });

  it('a PT5S payment term gives overdue, once', async () => {
    const billId = await closedBill([[700, 'EUR']], { payment_terms: 'PT5S' });
    const overdue = await invoiceWhen(stack, billId, (i) => i.payment_status === 'overdue');
    expect(Date.parse(overdue.due_at!)).toBeLessThanOrEqual(Date.now());
    // Still payable: a full payment settles it.
    expect((await twice('POST', `/bills/${billId}/invoice/payments`, { amount: 700, currency: 'EUR' })).body.invoice.status).toBe('paid');
    expect(await eventCount(stack, billId, 'invoice.overdue')).toBe(1);
  });
});

describe('credit notes', () => {
  it('two credit notes can never credit more than the invoice; each is numbered, rendered and emailed', async () => {
    const billId = await closedBill([[1000, 'EUR']]);
    const path = `/bills/${billId}/credit-notes`;
    const body = (reason: string) => ({ lines: [{ amount: 600, currency: 'EUR', reason }] });
    const racing = await Promise.all([
      call(stack, 'POST', path, body('first'), key(uid('k'))),
      call(stack, 'POST', path, body('second'), key(uid('k'))),
    ]);
    expect(racing.map((r) => r.status).sort()).toEqual([200, 400]);
    const won = racing.find((r) => r.status === 200)!.body;
    expect(won.credit_note.credit_note_number).toMatch(/^CN-\d{4}-\d{6}$/);
    expect(won.invoice.amounts).toEqual([{ currency: 'EUR', net: 1000, tax: 0, total: 1000, credited: 600, paid: 0, due: 400 }]);
    expect(racing.find((r) => r.status === 400)!.body.details).toMatchObject({ creditable: 400 });

    const full = await twice('POST', path, { full: true, reason: 'goodwill' });
    expect(full.body.credit_note).toMatchObject({ kind: 'full', lines: [{ currency: 'EUR', amount: 400, reason: 'goodwill' }] });
    expect(full.body.invoice).toMatchObject({
      status: 'paid',
      amounts: [{ currency: 'EUR', net: 1000, tax: 0, total: 1000, credited: 1000, paid: 0, due: 0 }],
    });
    const numbers = [won.credit_note.credit_note_number, full.body.credit_note.credit_note_number].map((n: string) => Number(n.slice(-6)));
    expect(numbers[1]).toBeGreaterThan(numbers[0]);
    expect((await call(stack, 'POST', path, body('third'), key(uid('k')))).status).toBe(400);

    const pdf = await pdfOf(`/bills/${billId}/credit-notes/${full.body.credit_note.credit_note_id}/pdf`);
    const text = await pdfText(pdf);
    for (const part of [
      'Credit note',
      full.body.credit_note.credit_note_number,
      full.body.invoice.invoice_number,
      'goodwill',
      'Total credited EUR',
      '4.00',
    ]) {
      expect(text).toContain(part);
    }
    const mails = await eventually(async () => {
      const m = received.filter(
        (r) => r.mail.subject?.startsWith('Credit note') && r.mail.text?.includes(full.body.invoice.invoice_number),
      );
      return m.length === 2 && m;
    }, 30_000);
    expect(mails.map((m) => m.mail.attachments[0].filename).sort()).toEqual(
      [`${won.credit_note.credit_note_number}.pdf`, `${full.body.credit_note.credit_note_number}.pdf`].sort(),
    );
    expect(await eventCount(stack, billId, 'credit_note.issued')).toBe(2);
  });

  it('a void keeps the PDF and number of the original, with a full credit note that says so', async () => {
    const billId = await closedBill([
      [1500, 'EUR'],
      [300, 'USD'],
    ]);
    const original = await pdfOf(`/bills/${billId}/invoice`);
    const number = (await invoiceOf(stack, billId))!.invoice_number;
    await twice('POST', `/bills/${billId}/credit-notes`, { lines: [{ amount: 500, currency: 'EUR', reason: 'discount' }] });

    const voided = await twice('POST', `/bills/${billId}/invoice/void`, { reason: 'billed in error' });
    expect(voided.body.invoice).toMatchObject({ status: 'void', invoice_number: number });
    expect(voided.body.credit_note).toMatchObject({ kind: 'void', reason: 'billed in error' });
    expect(voided.body.credit_note.lines.map((l: { currency: string; amount: number }) => [l.currency, l.amount])).toEqual([
      ['EUR', 1000],
      ['USD', 300],
    ]);
    const kept = await pdfOf(`/bills/${billId}/invoice`);
    expect(sha(kept)).toBe(sha(original));
    const invoiceText = await pdfText(kept);
    expect(invoiceText).toContain(number);
    expect(invoiceText).toContain('15.00');
    const noteText = await pdfText(await pdfOf(`/bills/${billId}/credit-notes/${voided.body.credit_note.credit_note_id}/pdf`));
    expect(noteText).toContain(`Invoice ${number} is void.`);
    expect(noteText).toContain('billed in error');

    expect((await call(stack, 'POST', `/bills/${billId}/invoice/payments`, { amount: 1, currency: 'USD' }, key(uid('k')))).body.code).toBe(
      'failed_precondition',
    );
    expect(await eventCount(stack, billId, 'invoice.voided')).toBe(1);

    // A paid invoice cannot be voided.
    const paid = await closedBill([[100, 'EUR']]);
    await call(stack, 'POST', `/bills/${paid}/invoice/payments`, { amount: 100, currency: 'EUR' }, key(uid('k')));
    const voidKey = uid('k');
    const paidRows = await rowsOf(stack.db, { bills: [paid], keys: [voidKey] });
    const refused = await call(stack, 'POST', `/bills/${paid}/invoice/void`, {}, key(voidKey));
    expect(refused).toMatchObject({ status: 400, body: { code: 'failed_precondition', details: { status: 'paid' } } });
    expect(await rowsOf(stack.db, { bills: [paid], keys: [voidKey] })).toEqual(paidRows);
  });

  it('an invoice that is not finalized takes nothing', async () => {
    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const [payKey, creditKey] = [uid('k'), uid('k')];
    const scope = { bills: [billId], keys: [payKey, creditKey] };
    const before = await rowsOf(stack.db, scope);
    const refused = await call(stack, 'POST', `/bills/${billId}/invoice/payments`, { amount: 1, currency: 'EUR' }, key(payKey));
    expect(refused.status).toBe(400);
    expect(refused.body.message).toMatch(/not finalized/);
    expect((await call(stack, 'POST', `/bills/nope-${billId}/credit-notes`, { full: true }, key(creditKey))).status).toBe(404);
    expect(await rowsOf(stack.db, scope)).toEqual(before);
    await call(stack, 'POST', `/bills/${billId}/close`);
  });
});

describe('reconciliation', () => {
  it('finds every invoice consistent, and reports a balance that disagrees with its payments', async () => {
    const billId = await closedBill([[900, 'EUR']]);
    await call(stack, 'POST', `/bills/${billId}/invoice/payments`, { amount: 300, currency: 'EUR' }, key(uid('k')));
    await call(stack, 'POST', `/bills/${billId}/credit-notes`, { lines: [{ amount: 100, currency: 'EUR', reason: 'r' }] }, key(uid('k')));
    // One bill at a time: the shared test database holds other files' bills, open ones among them.
    const clean = (await call(stack, 'GET', `/admin/reconcile?bill_id=${billId}`)).body;
    expect(clean).toMatchObject({ ok: true, invoices_checked: 1, invoice_differences: [] });

    // What was paid only grows (a trigger); a balance that shows more than its payments is reported.
    await expect(stack.db.query(`UPDATE invoice_balances SET paid = paid - 1 WHERE bill_id = $1`, [billId])).rejects.toMatchObject({
      code: 'FE003',
    });
    await stack.db.query(`UPDATE invoice_balances SET paid = paid + 1 WHERE bill_id = $1`, [billId]);
    const report = (await call(stack, 'GET', `/admin/reconcile?bill_id=${billId}`)).body;
    expect(report.ok).toBe(false);
    expect(report.invoice_differences).toEqual([
      expect.objectContaining({
        bill_id: billId,
        currency: 'EUR',
        paid: '301',
        payments: '300',
        credited: '100',
        credit_notes: '100',
        total: '900',
        invoiced: '900',
      }),
    ]);
  });
});
