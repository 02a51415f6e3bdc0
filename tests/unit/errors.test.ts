import { toAppError } from '../../core/temporal';
import { unexpected } from '../../core/errors';

/** An error as node-postgres raises it. */
const pgError = (code: string, extra: Record<string, string> = {}) => Object.assign(new Error('refused'), { code, ...extra });

describe('unexpected: what a failure becomes at the edge', () => {
  it('answers input Postgres refuses (data exceptions, CHECK) with a 400 naming the field', () => {
    expect(unexpected(pgError('22P02')).toBody()).toMatchObject({ code: 'invalid_argument', details: { reason: '22P02' } });
    expect(unexpected(pgError('22003')).status).toBe(400);
    expect(unexpected(pgError('22007', { column: 'billing_period_end' })).toBody()).toMatchObject({
      code: 'invalid_argument',
      details: { field: 'billing_period_end', reason: '22007' },
    });
    expect(unexpected(pgError('23514', { constraint: 'line_items_amount_check' })).toBody()).toMatchObject({
      code: 'invalid_argument',
      details: { field: 'amount' },
    });
  });

  it('answers a total past the exact range as a failed precondition of the bill', () => {
    expect(unexpected(pgError('23514', { constraint: 'bill_totals_exact_check' })).toBody()).toMatchObject({
      code: 'failed_precondition',
      details: { field: 'amount' },
    });
  });

  it('keeps outages a 503 and anything else a 500 (a NOT NULL violation is our bug)', () => {
    expect(unexpected(pgError('57P01')).status).toBe(503);
    // A deadlock or serialization failure: the same request goes through when retried.
    expect(unexpected(pgError('40P01')).toBody()).toMatchObject({ code: 'unavailable' });
    expect(unexpected(pgError('40001')).status).toBe(503);
    expect(unexpected(pgError('23502', { column: 'bill_id' })).status).toBe(500);
    expect(unexpected(pgError('23505')).status).toBe(500);
    expect(unexpected(new Error('bug')).status).toBe(500);
  });
});

describe('failures of calls to Temporal', () => {
  const grpc = (code: number) => Object.assign(new Error(`grpc ${code}`), { code, details: 'server said so', metadata: {} });

  it('answers 503 (retry with the same key) when Temporal failed the call on its side', () => {
    // CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, ABORTED, INTERNAL, UNAVAILABLE, and FAILED_PRECONDITION
    // (an update meeting a workflow whose task is failing): the outcome is unknown.
    for (const code of [1, 2, 4, 9, 10, 13, 14]) expect([code, toAppError(grpc(code)).toBody().code]).toEqual([code, 'unavailable']);
    expect(toAppError(grpc(8)).status).toBe(429);
  });

  it('keeps a request Temporal calls malformed a 500: that is a bug of ours', () => {
    for (const code of [3, 7, 12]) expect([code, toAppError(grpc(code)).status]).toEqual([code, 500]);
  });
});
