/**
 * Errors every layer speaks: domain code throws AppError with an Encore error code; each HTTP
 * host turns it into Encore's `{ code, message, details }` body with Encore's status mapping.
 */
export type ErrCode =
  | 'invalid_argument'
  | 'failed_precondition'
  | 'not_found'
  | 'already_exists'
  | 'aborted'
  | 'unauthenticated'
  | 'permission_denied'
  | 'resource_exhausted'
  | 'unavailable'
  | 'deadline_exceeded'
  | 'internal';

export const HTTP_STATUS: Record<ErrCode, number> = {
  invalid_argument: 400,
  failed_precondition: 400,
  not_found: 404,
  already_exists: 409,
  aborted: 409,
  unauthenticated: 401,
  permission_denied: 403,
  resource_exhausted: 429,
  unavailable: 503,
  deadline_exceeded: 504,
  internal: 500,
};

export type ErrDetails = Record<string, unknown>;

export interface ErrorBody {
  code: ErrCode;
  message: string;
  details: ErrDetails | null;
}

export class AppError extends Error {
  constructor(
    readonly code: ErrCode,
    message: string,
    readonly details: ErrDetails | null = null,
  ) {
    super(message);
    this.name = 'AppError';
  }

  get status(): number {
    return HTTP_STATUS[this.code];
  }

  toBody(): ErrorBody {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isErrCode(value: unknown): value is ErrCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(HTTP_STATUS, value);
}

export const invalidArgument = (message: string, details: ErrDetails | null = null) => new AppError('invalid_argument', message, details);
export const failedPrecondition = (message: string, details: ErrDetails | null = null) =>
  new AppError('failed_precondition', message, details);
export const notFound = (message: string, details: ErrDetails | null = null) => new AppError('not_found', message, details);
/** The 404 of every endpoint that names a bill that does not exist. */
export const billNotFound = (billId: string) => notFound(`bill ${billId} not found`, { bill_id: billId });

// Postgres or network failures that say "try again", not "this request is wrong" (a deadlock or a
// serialization failure among them: the same request succeeds when retried).
const TRANSIENT = /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|57P0[123]|08...|53300|40001|40P01)$/;

/**
 * Postgres refusing the input itself: a data exception (class 22: a number out of range, text it
 * cannot store) or a CHECK violation. The same request would be refused every time, so it is the
 * caller's to fix: a 400 naming the field where the column or constraint says which. A NOT NULL
 * violation is ours (every required field is checked first), and unique and foreign-key
 * violations are left to the domain code, which knows what they mean.
 */
export function databaseRefusal(err: unknown): AppError | null {
  const e = err as { code?: unknown; column?: unknown; constraint?: unknown };
  if (typeof e?.code !== 'string') return null;
  if (e.constraint === 'bill_totals_exact_check') {
    return failedPrecondition('a total of this bill would exceed the largest exact amount', { field: 'amount' });
  }
  if (!e.code.startsWith('22') && e.code !== '23514') return null;
  // Postgres names a column's own check `<table>_<column>_check`.
  const field =
    typeof e.column === 'string'
      ? e.column
      : typeof e.constraint === 'string'
        ? /^(?:bills|line_items|bill_totals|line_item_batches|idempotency_keys|api_keys|invoices)_(.+)_check$/.exec(e.constraint)?.[1]
        : undefined;
  return invalidArgument('the database refused this input', field ? { field, reason: e.code } : { reason: e.code });
}

/** Any error that is not an AppError: refused input is a 400, a transient outage a 503, anything else a 500. */
export function unexpected(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const refused = databaseRefusal(err);
  if (refused) return refused;
  const code = (err as { code?: unknown })?.code;
  const message = String((err as Error)?.message ?? '');
  if ((typeof code === 'string' && TRANSIENT.test(code)) || /Connection terminated|timeout exceeded when trying to connect/.test(message)) {
    return new AppError('unavailable', 'a backing service is unavailable; retry');
  }
  return new AppError('internal', 'internal error');
}
