/**
 * Activities: one database effect each, keyed so that a retry (or a duplicate update after
 * continue-as-new) changes nothing. They are thin on purpose; the SQL lives in the stores.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { inTransaction, type Db } from '../core/db';
import type { TotalsByCurrency } from '../core/money';
import { closeBill, insertBill, type InsertBillOutcome } from '../bills/store';
import type { BillHeader } from '../bills/types';
import { BILL_CLOSED_SQLSTATE, insertLineItem } from '../lineitems/store';
import type { LineItem } from '../lineitems/types';
import { isSameLineItem } from '../lineitems/validation';
import { recordPostProcessRun } from '../postprocess/store';
import type { AddLineItemInput, FailureType } from './shared';

function rejection(type: FailureType, message: string, details?: Record<string, unknown>) {
  return ApplicationFailure.create({ type, message, nonRetryable: true, details: details ? [details] : [] });
}

export function createActivities(db: Db) {
  return {
    async persistBill(bill: BillHeader): Promise<InsertBillOutcome> {
      return insertBill(db, bill);
    },

    /**
     * `isNew` is true when this activity (any attempt of it) inserted the row: only then may the
     * workflow add the amount to its totals. A row left by another update is returned as it is.
     */
    async persistLineItem(input: AddLineItemInput & { bill_id: string }): Promise<{ isNew: boolean; line_item: LineItem }> {
      const info = Context.current().info;
      const sourceRef = `${info.workflowExecution?.runId ?? info.activityId}/${info.activityId}`;
      let result;
      try {
        result = await insertLineItem(db, { ...input, source_ref: sourceRef });
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === BILL_CLOSED_SQLSTATE) {
          throw rejection('failed_precondition', 'bill is closed: it accepts no more line items', { status: 'closed' });
        }
        // Data the database refuses (class 22: data exception) will be refused on every retry.
        if (code?.startsWith('22')) throw rejection('invalid_argument', `the database refused this line item (${code})`);
        throw err;
      }
      const { item, source_ref } = result.stored;
      const isNew = result.inserted || source_ref === sourceRef;
      if (!isNew && !isSameLineItem(item, input)) {
        throw rejection('invalid_argument', 'this idempotency key was already used for a different line item', {
          field: 'idempotency_key',
        });
      }
      return { isNew, line_item: item };
    },

    async closeBill(input: { bill_id: string; closed_at: string }): Promise<{ closed_at: string; totals: TotalsByCurrency }> {
      return inTransaction(db, (tx) => closeBill(tx, input.bill_id, input.closed_at));
    },

    async recordPostProcessRun(input: { bill_id: string; workflow_id: string }): Promise<void> {
      await recordPostProcessRun(db, input.bill_id, input.workflow_id);
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
