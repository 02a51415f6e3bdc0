/**
 * The Temporal client side: connecting (local dev server, a cluster, or Temporal Cloud), and the
 * one place that turns Temporal failures into API errors.
 */
import { readFileSync } from 'node:fs';
import { Client, Connection, ServiceError, WorkflowNotFoundError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, isGrpcServiceError } from '@temporalio/client';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Config } from '../core/config';
import { AppError, isErrCode, unexpected, type ErrDetails } from '../core/errors';

export function connectionOptions(config: Config, address: string) {
  const t = config.temporal;
  const mtls = t.tlsCertPath && t.tlsKeyPath
    ? { clientCertPair: { crt: readFileSync(t.tlsCertPath), key: readFileSync(t.tlsKeyPath) } }
    : undefined;
  return {
    address,
    // Temporal Cloud with an API key always uses TLS.
    tls: mtls ?? (t.tls || t.apiKey !== undefined ? true : undefined),
    apiKey: t.apiKey,
    metadata: t.apiKey ? { 'temporal-namespace': t.namespace } : undefined,
  };
}

export async function connectClient(config: Config, address: string): Promise<Client> {
  const connection = await Connection.connect(connectionOptions(config, address));
  return new Client({ connection, namespace: config.temporal.namespace });
}

/** Runs a Temporal call with a deadline, so a missing worker yields 503 rather than a hang. */
export function withDeadline<T>(client: Client, ms: number, fn: () => Promise<T>): Promise<T> {
  return client.connection.withDeadline(Date.now() + ms, fn);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends an update under a deadline, and resends it (same update id) while the workflow asks for a
 * retry (it is draining to continue as new): callers see one slower answer, not an error.
 */
export async function updateWithDeadline<T>(client: Client, ms: number, send: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + ms;
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.connection.withDeadline(deadline, send);
    } catch (err) {
      const askedToRetry = err instanceof WorkflowUpdateFailedError && rejectionOf(err)?.type === 'unavailable';
      if (!askedToRetry || Date.now() + 100 > deadline) throw err;
      await sleep(Math.min(20 * attempt, 200));
    }
  }
}

const GRPC_NOT_FOUND = 5;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_UNAVAILABLE = 14;

function grpcCode(err: unknown): number | undefined {
  if (isGrpcServiceError(err)) return err.code;
  if (err instanceof ServiceError) return grpcCode(err.cause);
  return undefined;
}

/**
 * True when the workflow answered the update with a failure that stands: refused by its validator
 * or failed by its handler, not asked to retry. Its effects did not happen and never will.
 */
export function isUpdateRefused(err: unknown): boolean {
  return err instanceof WorkflowUpdateFailedError && rejectionOf(err)?.type !== 'unavailable';
}

/** True when the workflow does not exist, or has completed and accepts no updates. */
export function isWorkflowGone(err: unknown): boolean {
  if (err instanceof WorkflowNotFoundError) return true;
  if (err instanceof WorkflowUpdateFailedError) return false;
  const code = grpcCode(err);
  return code === GRPC_NOT_FOUND || /workflow execution already completed/i.test(String((err as Error)?.message));
}

/**
 * The typed rejection behind a failed update: raised by a validator directly, or by an activity
 * (then wrapped in an ActivityFailure).
 */
function rejectionOf(err: WorkflowUpdateFailedError): ApplicationFailure | undefined {
  for (let e: unknown = err.cause; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure && isErrCode(e.type)) return e;
  }
  return undefined;
}

/** Maps a failure from a workflow call to the API error a client should see. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const rejection = err instanceof WorkflowUpdateFailedError ? rejectionOf(err) : undefined;
  if (rejection && isErrCode(rejection.type)) {
    return new AppError(rejection.type, rejection.message, (rejection.details?.[0] as ErrDetails | null | undefined) ?? null);
  }
  if (err instanceof WorkflowExecutionAlreadyStartedError) return new AppError('already_exists', 'the bill already exists');
  const code = grpcCode(err);
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || code === GRPC_DEADLINE_EXCEEDED || code === GRPC_UNAVAILABLE) {
    return new AppError('unavailable', 'the billing workflow did not answer in time; retry with the same idempotency key');
  }
  if (code === GRPC_RESOURCE_EXHAUSTED) {
    return new AppError('resource_exhausted', 'the billing workflow is busy; retry with the same idempotency key');
  }
  return unexpected(err);
}
