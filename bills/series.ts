/**
 * Workflow side of a recurring bill: the fee each period charges, and the bill of the next period.
 * Deterministic: time and ids come from the workflow's own clock and random source.
 */
import { log, uuid4 } from '@temporalio/workflow';
import type { BillState } from './bill-state';
import type { BillWorkflowInput } from './messages';
import { parseInterval, periodEnd, prorateFee, type Interval } from './periods';
import type { BillHeader } from './types';

/** The period's recurring fee, prorated when the period is partial: once per bill, through the ledger writer. */
export async function chargeRecurringFee(bill: BillState): Promise<void> {
  const header = bill.bill;
  const fee = header.recurring_fee!;
  const interval = parseInterval(header.interval!) as Interval; // validated when the series was created
  const start = new Date(header.billing_period_start);
  const end = new Date(header.billing_period_end);
  const amount = prorateFee(fee.amount, start, end, interval, header.billing_anchor_day ?? 1);
  if (amount > 0) {
    const charge = {
      amount,
      currency: fee.currency,
      description: fee.description,
      metadata: {
        recurring_fee: true,
        period_start: header.billing_period_start,
        period_end: header.billing_period_end,
        full_amount: fee.amount,
      },
    };
    const [outcome] = await bill.enqueueOne({ recurring_fee: charge }, fee.currency, amount);
    if (outcome.status === 'refused') log.error('the recurring fee was refused', { billId: header.bill_id, refusal: outcome.refusal });
  }
  bill.feeCharged = true;
}

/**
 * The input of the next period's bill of a series. Periods follow each other without a gap, also
 * when this one closed late (a worker was down).
 */
export function nextPeriod(input: BillWorkflowInput): BillWorkflowInput {
  const header = input.bill;
  const interval = parseInterval(header.interval!) as Interval;
  const start = header.billing_period_end;
  const next: BillHeader = {
    ...header,
    bill_id: uuid4(),
    billing_period_start: start,
    billing_period_end: periodEnd(new Date(start), interval, header.billing_anchor_day ?? 1).toISOString(),
    created_at: new Date(Date.now()).toISOString(),
    previous_bill_id: header.bill_id,
    // The audit trail's actor of a renewal: the series itself, not whoever created its first bill.
    created_by: 'system',
    request_fingerprint: `renewal of ${header.bill_id}`,
  };
  return {
    bill: next,
    continueAsNewAfterItems: input.continueAsNewAfterItems,
    activitySettings: input.activitySettings,
    ...(input.customerPrivate ? { customerPrivate: true } : {}),
  };
}
