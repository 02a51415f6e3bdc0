import type { Queryable } from '../core/db';

/** Records that the post-process of a closed bill ran; once per bill however often it retries. */
export async function recordPostProcessRun(db: Queryable, billId: string, workflowId: string): Promise<void> {
  await db.query(
    'INSERT INTO bill_postprocess (bill_id, workflow_id) VALUES ($1, $2) ON CONFLICT (bill_id) DO NOTHING',
    [billId, workflowId],
  );
}
