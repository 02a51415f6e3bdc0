/**
 * The Temporal floor the benchmark sets our adds against, measured in the same run: workflows whose
 * update handlers do nothing, or write one row by local activity, by regular activity, or by
 * regular activity dispatched eagerly. None of the service's code runs here.
 */
import { condition, defineUpdate, proxyActivities, proxyLocalActivities, setHandler } from '@temporalio/workflow';
import type * as activities from './activities';

export const noopUpdate = defineUpdate<number>('noopUpdate');
export const writeLocalUpdate = defineUpdate<number, [string]>('writeLocalUpdate');
export const writeActivityUpdate = defineUpdate<number, [string]>('writeActivityUpdate');
export const writeEagerUpdate = defineUpdate<number, [string]>('writeEagerUpdate');

const retry = { initialInterval: 200, backoffCoefficient: 2, maximumInterval: 10_000 };
const local = proxyLocalActivities<typeof activities>({ startToCloseTimeout: 5_000, retry });
const regular = proxyActivities<typeof activities>({ startToCloseTimeout: 30_000, retry, allowEagerDispatch: false });
const eager = proxyActivities<typeof activities>({ startToCloseTimeout: 30_000, retry, allowEagerDispatch: true });

/** Lives until the dev server goes; every handler answers with how many updates it has taken. */
export async function noopWorkflow(): Promise<void> {
  let n = 0;
  setHandler(noopUpdate, () => ++n);
  setHandler(writeLocalUpdate, async (id) => (await local.writeRow(id), ++n));
  setHandler(writeActivityUpdate, async (id) => (await regular.writeRow(id), ++n));
  setHandler(writeEagerUpdate, async (id) => (await eager.writeRow(id), ++n));
  await condition(() => false);
}
