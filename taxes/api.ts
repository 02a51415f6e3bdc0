/** Tax rate endpoints for Encore. The standalone host serves the same table (host/routes.ts). */
import { api, type Header } from 'encore.dev/api';
import { SQLDatabase } from 'encore.dev/storage/sqldb';
import { encoreDeps, run } from '../core/encore';
import { idempotencyKeyOf } from '../core/idempotency';
import type { CreateTaxRateBody } from './requests';
import * as taxRates from './tax-rates';
import type { TaxRate, TaxRateList } from './types';

// Bound once, at the top: Encore's parser binds a database handle to the const it initialises.
const database = SQLDatabase.named('fees');
const deps = () => encoreDeps(database);

/** Creates a tax rate; the same code again with the same values answers it, with other values is refused (a rate never changes). */
export interface CreateTaxRateRequest extends CreateTaxRateBody {
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const create = api(
  { expose: true, auth: true, method: 'POST', path: '/tax-rates' },
  async (req: CreateTaxRateRequest): Promise<TaxRate> =>
    run('bills:write', async (caller) => {
      const { idempotencyKey, idempotencyKeyAlt, ...body } = req;
      return taxRates.createTaxRate(await deps(), body, idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt), caller.key_id);
    }),
);

/** Lists every tax rate, by code. */
export const list = api({ expose: true, auth: true, method: 'GET', path: '/tax-rates' }, async (): Promise<TaxRateList> =>
  run('bills:read', async () => taxRates.listTaxRates(await deps())),
);
