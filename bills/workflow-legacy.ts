/**
 * The add paths of releases before migration 7, kept only so that histories recorded by them
 * replay (patched(LEDGER_SNAPSHOTS) is false there): a regular activity per write, whose result the
 * workflow added to its totals itself. Live executions never take them. Once no bill started
 * before that release is running, the patch is deprecated and this file goes.
 */
import type { TotalsByCurrency } from '../core/money';
import { addAll, adjust, type BillState } from './bill-state';

/**
 * What a previous-release write that completes now does to the totals. Before this run adopted any
 * snapshot (version 0) the workflow still counts as that release did; after, the snapshot may
 * already hold the row, so the workflow asks its writer for a fresh one instead of adding.
 */
function countLegacy(state: BillState, count: () => void): void {
  if (state.version === 0) count();
  else state.refresh = true;
}

/** One line item's amount counted if the activity says it stored it (its isNew). */
export async function legacyAddOne<T extends { isNew: boolean }>(
  state: BillState,
  currency: string,
  amount: number,
  persist: () => Promise<T>,
): Promise<T> {
  adjust(state.pending, currency, amount, 1);
  state.legacyInflight++;
  try {
    const result = await persist();
    if (result.isNew) {
      countLegacy(state, () => adjust(state.totals, currency, amount, 1));
      state.itemsThisRun++;
    }
    return result;
  } finally {
    adjust(state.pending, currency, amount, -1);
    state.legacyInflight--;
  }
}

/** A batch's sums counted as the activity reports what it added. */
export async function legacyAddBatch(
  state: BillState,
  reserve: TotalsByCurrency,
  persist: () => Promise<{ added: TotalsByCurrency; count: number }>,
): Promise<{ count: number }> {
  addAll(state.pending, reserve, 1);
  state.legacyInflight++;
  try {
    const { added, count } = await persist();
    if (count > 0) countLegacy(state, () => addAll(state.totals, added, 1));
    state.itemsThisRun += count;
    return { count };
  } finally {
    addAll(state.pending, reserve, -1);
    state.legacyInflight--;
  }
}
