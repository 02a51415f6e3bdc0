/** Usage endpoints for Encore. The standalone host serves the same table (host/routes.ts). */
import { api, type Header } from 'encore.dev/api';
import { SQLDatabase } from 'encore.dev/storage/sqldb';
import { encoreDeps, run } from '../core/encore';
import { idempotencyKeyOf } from '../core/idempotency';
import type { IdPattern } from '../invoices/requests';
import { ingestEvents } from './events';
import * as meters from './meters';
import type { CreateMeterBody, IngestEventsBody } from './requests';
import type { BillUsage, IngestResult, Meter, MeterList } from './types';
import { getBillUsage } from './usage';

// Bound once, at the top: Encore's parser binds a database handle to the const it initialises.
const database = SQLDatabase.named('fees');
const deps = () => encoreDeps(database);

/** Creates a meter; the same code again with the same values answers it, with others is refused (a meter never changes). */
export interface CreateMeterRequest extends CreateMeterBody {
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const createMeter = api(
  { expose: true, auth: true, method: 'POST', path: '/meters' },
  async (req: CreateMeterRequest): Promise<Meter> =>
    run('bills:write', async (caller) => {
      const { idempotencyKey, idempotencyKeyAlt, ...body } = req;
      return meters.createMeter(await deps(), body, idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt), caller.key_id);
    }),
);

/** Lists every meter, by code. */
export const listMeters = api({ expose: true, auth: true, method: 'GET', path: '/meters' }, async (): Promise<MeterList> =>
  run('bills:read', async () => meters.listMeters(await deps())),
);

/** Returns one meter. */
export interface GetMeterRequest {
  /** The meter's code. */
  code: string & IdPattern;
}
export const getMeter = api(
  { expose: true, auth: true, method: 'GET', path: '/meters/:code' },
  async (req: GetMeterRequest): Promise<Meter> => run('bills:read', async () => meters.getMeter(await deps(), req.code)),
);

/**
 * Takes 1-1,000 usage events, each answered `accepted` (stored), `duplicate` (its id was seen for
 * its meter) or `refused` (its bill is closed). Stored before the answer; retry freely.
 */
export interface IngestEventsRequest extends IngestEventsBody {
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const ingest = api(
  { expose: true, auth: true, method: 'POST', path: '/events' },
  async (req: IngestEventsRequest): Promise<IngestResult> =>
    run('bills:write', async () => {
      const { idempotencyKey: _, idempotencyKeyAlt: __, ...body } = req;
      return ingestEvents(await deps(), body);
    }),
);

/** A bill's usage: per priced meter, the aggregate so far, the estimated amount and the tiers applied. */
export interface GetBillUsageRequest {
  /** The bill's id (`bill_id`). */
  billId: string & IdPattern;
}
export const billUsage = api(
  { expose: true, auth: true, method: 'GET', path: '/bills/:billId/usage' },
  async (req: GetBillUsageRequest): Promise<BillUsage> => run('bills:read', async () => getBillUsage(await deps(), req.billId)),
);
