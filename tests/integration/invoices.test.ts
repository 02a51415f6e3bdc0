/**
 * Invoices end to end: the abandoned post-process renders a PDF and emails it to a real SMTP peer
 * on loopback, exactly once, through SMTP outages, a killed worker and concurrent closes.
 */
import { suiteDataConverter } from '../helpers/encryption';
import type { WorkflowHandle } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { inTransaction } from '../../core/db';
import { createLogger } from '../../core/log';
import { invoiceFailures } from '../../core/metrics';
import { assignInvoiceNumber } from '../../invoices/store';
import { loadConfig } from '../../core/config';
import { sellerOf } from '../../invoices/seller';
import {
  call,
  eventually,
  expectReplayOf,
  inSeconds,
  logSink,
  startCrashingWorker,
  startStack,
  uid,
  type Stack,
  KILLED_WORKER_ENV,
} from '../helpers/stack';
import { finalizedInvoice, invoiceOf, invoiceWhen, pdfAt, storedInvoice } from '../helpers/invoices';
import { pdfText, startSmtpPeer, type ReceivedMail, type SmtpPeer } from '../helpers/smtp';
import { quietActivityEnvironment } from '../helpers/run-logs';

const received: ReceivedMail[] = [];
let logLines: Record<string, unknown>[] = [];
let smtp: SmtpPeer;
let stack: Stack;
let env: Record<string, string>;

beforeAll(async () => {
  smtp = await startSmtpPeer(0, received);
  env = {
    SMTP_URL: smtp.url,
    INVOICE_FROM: 'Fees Test <billing@fees.test>',
    // Short retries so an outage exhausts them in about a second; a short attempt timeout so a
    // killed worker's attempt is retried within seconds.
    POSTPROCESS_MAX_ATTEMPTS: '3',
    POSTPROCESS_RETRY_INITIAL_MS: '100',
    POSTPROCESS_RETRY_MAX_INTERVAL_MS: '300',
    POSTPROCESS_ACTIVITY_TIMEOUT_MS: '4000',
    SMTP_TIMEOUT_MS: '2000',
    ...KILLED_WORKER_ENV,
  };
  // The worker's logger, written to memory so the test can read its lines.
  const sink = logSink();
  logLines = sink.lines;
  stack = await startStack(env, undefined, { log: createLogger('info', { component: 'worker' }, sink.stream) });
});
afterAll(async () => {
  await stack.stop();
  await smtp.stop();
});

const mailsFor = (billId: string) => received.filter((r) => r.mail.text?.includes(billId));

async function closedBill(opts: { email?: string | null; items?: { amount: number; currency: string; description: string }[] } = {}) {
  const billId = uid();
  const email = opts.email === undefined ? `${billId}@example.com` : opts.email;
  const created = await call(stack, 'POST', '/bills', {
    bill_id: billId,
    billing_period_end: inSeconds(3600),
    ...(email ? { customer_email: email } : {}),
    description: 'API usage',
  });
  expect(created.status).toBe(200);
  for (const item of opts.items ?? [{ amount: 1999, currency: 'USD', description: 'calls' }]) {
    expect((await call(stack, 'POST', `/bills/${billId}/line-items`, item)).status).toBe(200);
  }
  const closed = await call(stack, 'POST', `/bills/${billId}/close`);
  expect(closed.status).toBe(200);
  return { billId, email, closed };
}

const invoiceIs = (billId: string, status: string) => invoiceWhen(stack, billId, (i) => i.status === status, 40_000);

/**
 * Pays what is due, so the invoice's lifecycle ends, and waits for its run to complete: every step
 * of the post-process (and any restarted run) has then finished.
 */
async function settleAndFinish(billId: string): Promise<void> {
  const invoice = await finalizedInvoice(stack, billId);
  for (const a of invoice.amounts) {
    if (a.due === 0) continue;
    // Retried with its key while the workflow is still busy (a retried step): applied once.
    const key = { 'Idempotency-Key': uid('pay') };
    await eventually(
      async () =>
        (await call(stack, 'POST', `/bills/${billId}/invoice/payments`, { amount: a.due, currency: a.currency }, key)).status === 200,
      60_000,
    );
  }
  await stack.deps.temporal.workflow.getHandle(`bill-${billId}-postprocess`).result();
}

async function replay(handle: WorkflowHandle): Promise<void> {
  const history = await handle.fetchHistory();
  await Worker.runReplayHistory(
    { workflowBundle: { codePath: process.env.FEES_TEST_BUNDLE! }, dataConverter: suiteDataConverter() },
    history,
    handle.workflowId,
  );
}

const invoicePdf = (billId: string) => pdfAt(stack, `/bills/${billId}/invoice`);

describe('a closed bill gets its invoice', () => {
  it('emails exactly one message with the PDF, whose text has the number and exact totals', async () => {
    const { billId, email } = await closedBill({
      items: [
        { amount: 1999, currency: 'USD', description: 'calls' },
        { amount: 1, currency: 'USD', description: 'one cent' },
        { amount: 250, currency: 'GEL', description: 'storage — Tbilisi' },
        { amount: 700, currency: 'JPY', description: 'yen' },
        { amount: 1005, currency: 'KWD', description: 'three decimals' },
      ],
    });
    const invoice = await invoiceIs(billId, 'sent');
    expect(invoice.invoice_number).toMatch(/^INV-\d{4}-\d{6}$/);
    expect(invoice.sent_at).toMatch(/Z$/);
    expect(invoice.error).toBeNull();

    const mails = mailsFor(billId);
    expect(mails).toHaveLength(1);
    const [{ mail, user, queueId }] = mails;
    expect(user).toBe('fees'); // SMTP_URL's credentials were used
    expect((mail.to as { text: string }).text).toBe(email);
    expect(mail.from?.text).toBe('"Fees Test" <billing@fees.test>');
    expect(mail.subject).toBe(`Invoice ${invoice.invoice_number}`);
    // The PDF, then the e-invoice: one UBL document per currency.
    expect(mail.attachments.map((a) => [a.contentType, a.filename])).toEqual([
      ['application/pdf', `${invoice.invoice_number}.pdf`],
      ...['GEL', 'JPY', 'KWD', 'USD'].map((c) => ['application/xml', `${invoice.invoice_number}-${c}.xml`]),
    ]);
    const [attachment] = mail.attachments;

    const text = await pdfText(attachment.content);
    for (const expected of [invoice.invoice_number, billId, email!, '20.00 USD', '2.50 GEL', '700 JPY', '1.005 KWD', 'storage — Tbilisi']) {
      expect(text).toContain(expected);
    }

    // The delivery record keeps the message id the peer saw, and the peer's answer.
    const { delivery } = (await storedInvoice(stack, billId))!;
    expect(delivery).toMatchObject({ status: 'sent', recipient: email, smtp_message_id: mail.messageId });
    expect(delivery!.smtp_response).toContain(`queued as ${queueId}`);

    // The same bytes are served over HTTP, and they never change.
    expect((await invoicePdf(billId)).equals(attachment.content)).toBe(true);
    await expect(stack.db.query(`UPDATE invoices SET pdf = 'x' WHERE bill_id = $1`, [billId])).rejects.toMatchObject({ code: 'FE003' });
    await expect(stack.db.query(`DELETE FROM invoices WHERE bill_id = $1`, [billId])).rejects.toMatchObject({ code: 'FE003' });
    await expect(stack.db.query(`UPDATE bill_postprocess SET status = 'generated' WHERE bill_id = $1`, [billId])).rejects.toMatchObject({
      code: 'FE004',
    });

    await replay(stack.deps.temporal.workflow.getHandle(`bill-${billId}-postprocess`));

    // Retrying a delivered invoice changes nothing and sends nothing.
    const retry = await call(stack, 'POST', `/bills/${billId}/invoice/retry`);
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual({ invoice, restarted: false });
    // Whatever runs of the post-process exist have finished: had the retry started one, its
    // email would be counted now.
    await settleAndFinish(billId);
    expect(mailsFor(billId)).toHaveLength(1);
  });

  it('records the email step as skipped when the bill has no customer email, and still issues the PDF', async () => {
    const { billId } = await closedBill({ email: null });
    const invoice = await invoiceIs(billId, 'skipped');
    expect(invoice.invoice_number).toMatch(/^INV-/);
    expect(await pdfText(await invoicePdf(billId))).toContain(invoice.invoice_number!);
    expect(mailsFor(billId)).toHaveLength(0);
  });

  it('answers the invoice endpoints with the Encore error shape before there is an invoice', async () => {
    const missing = await call(stack, 'GET', '/bills/no-such-bill/invoice');
    expect(missing).toMatchObject({ status: 404, body: { code: 'not_found', details: { bill_id: 'no-such-bill' } } });

    const billId = uid();
    await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
    const open = await call(stack, 'GET', `/bills/${billId}/invoice`);
    expect(open).toMatchObject({ status: 404, body: { code: 'not_found', details: { bill_status: 'open' } } });
    expect(await invoiceOf(stack, billId)).toBeNull();
    const retry = await call(stack, 'POST', `/bills/${billId}/invoice/retry`);
    expect(retry).toMatchObject({ status: 400, body: { code: 'failed_precondition' } });
    expect((await call(stack, 'POST', '/bills/bad%20id/invoice/retry')).status).toBe(400);
  });
});

describe('SMTP down', () => {
  it('closes the bill at once, ends failed with the reason, and a retry after recovery sends exactly one email', async () => {
    await smtp.stop();
    let down = true;
    const failuresBefore = (await invoiceFailures.get()).values.find((v) => v.labels.step === 'deliver')?.value ?? 0;
    try {
      const { billId, closed } = await closedBill();
      // Closing answered without waiting for the invoice.
      expect(closed.body.bill).toMatchObject({ status: 'closed', invoice: { status: 'pending' } });

      const failed = await invoiceIs(billId, 'failed');
      expect(failed.error).toMatch(/email delivery failed: .*ECONNREFUSED/);
      expect(failed.invoice_number).toMatch(/^INV-/);
      expect((await storedInvoice(stack, billId))!.delivery).toMatchObject({ failed_step: 'deliver', delivery_attempts: 3 });

      // Visible to an operator: the listing filter, a structured error line, the failure counter.
      const listed = await call(stack, 'GET', '/bills?invoice_status=failed&limit=100');
      expect(listed.body.bills.map((b: { bill_id: string }) => b.bill_id)).toContain(billId);
      const line = logLines.find((l) => l.bill_id === billId && l.event === 'invoice_failed');
      expect(line).toMatchObject({ level: 50, step: 'deliver', workflow_id: `bill-${billId}-postprocess` });
      expect(String(line!.error)).toContain('ECONNREFUSED');
      const failuresAfter = (await invoiceFailures.get()).values.find((v) => v.labels.step === 'deliver')?.value;
      expect(failuresAfter).toBe(failuresBefore + 1);

      // The PDF was stored before delivery failed.
      expect(await pdfText(await invoicePdf(billId))).toContain(failed.invoice_number!);
      // The invoice is numbered, so it is due all the same: the run lives on as its lifecycle.
      // Its history, retries and all, replays deterministically.
      const failedRun = stack.deps.temporal.workflow.getHandle(`bill-${billId}-postprocess`);
      expect((await failedRun.describe()).status.name).toBe('RUNNING');
      expect(await invoiceOf(stack, billId)).toMatchObject({ payment_status: 'open' });
      await replay(failedRun);

      smtp = await startSmtpPeer(smtp.port, received);
      down = false;
      const retry = await call(stack, 'POST', `/bills/${billId}/invoice/retry`, undefined, { 'Idempotency-Key': `${billId}-retry` });
      expect(retry.status).toBe(200);
      expect(retry.body).toMatchObject({
        restarted: true,
        invoice: { status: 'generated', invoice_number: failed.invoice_number, error: null },
      });
      const again = await call(stack, 'POST', `/bills/${billId}/invoice/retry`, undefined, { 'Idempotency-Key': `${billId}-retry` });
      expectReplayOf(again, retry); // replayed from the idempotency store, byte for byte

      const sent = await invoiceIs(billId, 'sent');
      expect(sent.invoice_number).toBe(failed.invoice_number);
      // The restarted run has finished, every step done: one email in all.
      await settleAndFinish(billId);
      expect(mailsFor(billId)).toHaveLength(1);
      const once = await call(stack, 'POST', `/bills/${billId}/invoice/retry`);
      expect(once.body).toMatchObject({ restarted: false, invoice: { status: 'sent' } });
      expect(mailsFor(billId)).toHaveLength(1);
    } finally {
      if (down) smtp = await startSmtpPeer(smtp.port, received); // for the tests after this one
    }
  });
});

describe('a worker killed between "PDF stored" and "email sent"', () => {
  it('leaves one invoice and, after restart, sends one email', async () => {
    await stack.stopWorker();
    const { exited } = await startCrashingWorker(stack, 'deliverInvoice', env);

    const { billId } = await closedBill();
    expect(await exited).toBe('SIGKILL');

    // The crash point: the PDF is stored, nothing was sent.
    const stored = (await storedInvoice(stack, billId))!;
    expect(stored).toMatchObject({ invoice_number: expect.stringMatching(/^INV-/), has_pdf: true, delivery: { status: 'generated' } });
    expect(mailsFor(billId)).toHaveLength(0);

    // Two delivery attempts racing (say the retry of the lost attempt and an operator's): each
    // locks the delivery row, so the second finds the first one's record. One email.
    const deliver = stack.activities().deliverInvoice;
    const results = await Promise.all([1, 2].map(() => quietActivityEnvironment().run(deliver, { bill_id: billId })));
    expect(results.map((r) => (r as { status: string }).status)).toEqual(['sent', 'sent']);
    expect(mailsFor(billId)).toHaveLength(1);

    await stack.startWorker();
    const sent = await invoiceIs(billId, 'sent');
    expect(sent.invoice_number).toBe(stored.invoice_number);
    // The workflow's own retry of the lost attempt finds the delivery recorded and sends nothing.
    await settleAndFinish(billId);
    expect(mailsFor(billId)).toHaveLength(1);
  });
});

describe('invoice numbers', () => {
  it('gives bills closing at the same moment distinct numbers, and every sequence stays gap-free', async () => {
    const billIds = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const billId = uid();
        await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) });
        await call(stack, 'POST', `/bills/${billId}/line-items`, { amount: 100, currency: 'EUR', description: 'x' });
        return billId;
      }),
    );
    const closes = await Promise.all(billIds.map((id) => call(stack, 'POST', `/bills/${id}/close`)));
    expect(closes.map((c) => c.status)).toEqual(Array(8).fill(200));
    const numbers = await Promise.all(billIds.map(async (id) => (await invoiceIs(id, 'skipped')).invoice_number));
    expect(new Set(numbers).size).toBe(8);

    const seqs = await stack.db.query(
      `SELECT sequence, count(*)::int AS n, min(sequence_value)::int AS lo, max(sequence_value)::int AS hi FROM invoices GROUP BY sequence`,
    );
    for (const s of seqs.rows) expect({ ...s, lo: 1, hi: s.n }).toEqual(s);
  });

  it('gives a number back when its transaction rolls back', async () => {
    const billId = uid();
    await stack.db.query(
      `INSERT INTO bills (bill_id, policy, billing_period_start, billing_period_end, created_at, request_fingerprint, status, closed_at)
       VALUES ($1, 'usage_based', now(), now() + interval '1 hour', now(), 'test', 'closed', now())`,
      [billId],
    );
    const sequence = `GAP${Date.now()}`;
    const assign = (fail: boolean) =>
      inTransaction(stack.db, async (tx) => {
        const parties = { seller: sellerOf(loadConfig({})), buyer: null as never, taxes: [], totals: [] };
        const n = await assignInvoiceNumber(
          tx,
          billId,
          () => sequence,
          new Date(),
          async () => parties,
        );
        if (fail) throw new Error('crashed before commit');
        return n;
      });
    await expect(assign(true)).rejects.toThrow('crashed before commit');
    const numberOf = (n: Awaited<ReturnType<typeof assign>>) => (typeof n === 'object' ? n?.invoice_number : n);
    expect(numberOf(await assign(false))).toBe(`${sequence}-000001`);
    expect(numberOf(await assign(false))).toBe(`${sequence}-000001`); // assigned once
  });
});
