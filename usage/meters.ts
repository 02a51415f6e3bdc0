/**
 * Meter use cases. A meter is created once and never changes (its events must keep meaning what
 * they meant): creating its code again with the same values answers it, with others is refused.
 */
import { recordAudit, type Actor } from '../core/audit';
import { inTransaction } from '../core/db';
import { idempotently, type Deps } from '../core/deps';
import { notFound } from '../core/errors';
import { fingerprint, type IdempotencyKey } from '../core/idempotency';
import { checkStorable, fieldError } from '../core/validate';
import type { CreateMeterBody } from './requests';
import { findMeters, insertMeter, listMeters as listStored } from './store';
import type { Meter, MeterList } from './types';

export async function createMeter(deps: Deps, body: CreateMeterBody, key: IdempotencyKey | undefined, actor: Actor): Promise<Meter> {
  const field = body.field ?? null;
  if ((body.aggregation === 'unique_count') !== (field !== null)) {
    throw fieldError('field', body.aggregation === 'unique_count' ? 'is required by unique_count' : 'is only for unique_count');
  }
  checkStorable({ name: body.name, field });
  const wanted = { code: body.code, name: body.name, aggregation: body.aggregation, field };
  const operation = 'POST /meters';
  return idempotently(deps, key, operation, fingerprint(operation, wanted), () =>
    inTransaction(deps.db, async (tx) => {
      const { meter, created } = await insertMeter(tx, wanted);
      if (created) {
        await recordAudit(tx, { bill_id: null, subject: 'meter', subject_id: meter.code, action: 'created', actor, data: wanted });
        return meter;
      }
      const changed = (['aggregation', 'field', 'name'] as const).find((f) => meter[f] !== wanted[f]);
      if (changed) {
        throw fieldError(
          changed,
          `differs from meter ${meter.code}'s (${JSON.stringify(meter[changed])}): a meter never changes; create a new code`,
        );
      }
      return meter;
    }),
  );
}

export async function getMeter(deps: Deps, code: string): Promise<Meter> {
  const [meter] = await findMeters(deps.db, [code]);
  if (!meter) throw notFound(`meter ${code} not found`, { meter: code });
  return meter;
}

export async function listMeters(deps: Deps): Promise<MeterList> {
  return { meters: await listStored(deps.db) };
}

// Meters never change nor go: one read once is good for the process's life.
const known = new Map<string, Meter>();

/** The meters of these codes; a code with none is refused, naming `field(code)`. */
export async function requireMeters(deps: Deps, codes: string[], field: (code: string) => string): Promise<Map<string, Meter>> {
  const missing = [...new Set(codes)].filter((c) => !known.has(c));
  if (missing.length > 0) for (const m of await findMeters(deps.db, missing)) known.set(m.code, m);
  for (const code of codes) {
    if (!known.has(code)) throw fieldError(field(code), `names meter ${code}, which does not exist (POST /meters creates one)`);
  }
  return new Map(codes.map((c) => [c, known.get(c)!]));
}
