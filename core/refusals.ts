/**
 * Refusals crossing Temporal: a rule refuses with an AppError; the workflow and its activities
 * carry it as a non-retryable ApplicationFailure whose type is the API error code; the client
 * finds it again in the failure's cause chain. One module, so the three sides cannot drift.
 * Safe in workflow code: it imports only @temporalio/common and our own errors.
 */
import { ApplicationFailure } from '@temporalio/common';
import { AppError, isErrCode, type ErrCode, type ErrDetails } from './errors';

/** Why one write or request was refused, as data: an API error code and what to tell the caller. */
export interface Refusal {
  code: ErrCode;
  message: string;
  details: ErrDetails | null;
}

/** The failure that carries a refusal through Temporal; never retried, it would be refused again. */
export function failureOf(refusal: Refusal): ApplicationFailure {
  const { code, message, details } = refusal;
  return ApplicationFailure.create({ type: code, message, nonRetryable: true, details: details ? [details] : [] });
}

/** A rule's refusal as data, or null when the rule passes. Anything but an AppError is thrown on. */
export function refusalOf(check: () => void): Refusal | null {
  try {
    check();
    return null;
  } catch (err) {
    if (err instanceof AppError) return { code: err.code, message: err.message, details: err.details };
    throw err;
  }
}

/** An AppError as the failure that carries it; anything else as it is. */
const asFailure = (err: unknown) => (err instanceof AppError ? failureOf(err) : err);

/** Runs `fn`; an AppError it throws leaves as its failure (for validators and activities). */
export function refuseAsFailure<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw asFailure(err);
  }
}

/** Async `refuseAsFailure`: a domain refusal fails the activity without a retry. */
export function refuseAsFailureAsync<T>(fn: () => Promise<T>): Promise<T> {
  return fn().catch((err: unknown) => {
    throw asFailure(err);
  });
}

/**
 * The refusal behind a failed workflow call, wherever it was raised: by a validator directly, or
 * by an activity (then wrapped in an ActivityFailure). Undefined when none of our codes is there.
 */
export function refusalIn(err: unknown): Refusal | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure && isErrCode(e.type)) {
      return { code: e.type, message: e.message, details: (e.details?.[0] as ErrDetails | null | undefined) ?? null };
    }
  }
  return undefined;
}
