/**
 * The Temporal client side: connecting (local dev server, a cluster, or Temporal Cloud), and the
 * one place that turns Temporal failures into API errors.
 */
import { readFileSync } from 'node:fs';
import {
  Client,
  Connection,
  ServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  isGrpcServiceError,
} from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Config } from './config';
import { AppError, unexpected } from './errors';
import { dataConverter } from './payload-codec';
import { refusalIn } from './refusals';

export function connectionOptions(config: Config, address: string) {
  const t = config.temporal;
  const tlsConfig = {
    ...(t.tlsCertPath && t.tlsKeyPath ? { clientCertPair: { crt: readFileSync(t.tlsCertPath), key: readFileSync(t.tlsKeyPath) } } : {}),
    // A self-hosted cluster's own CA, and the name its certificate carries.
    ...(t.tlsServerCaPath ? { serverRootCACertificate: readFileSync(t.tlsServerCaPath) } : {}),
    ...(t.tlsServerName ? { serverNameOverride: t.tlsServerName } : {}),
  };
  const configured = Object.keys(tlsConfig).length > 0;
  return {
    address,
    // Temporal Cloud with an API key always uses TLS.
    tls: configured ? tlsConfig : t.tls || t.apiKey !== undefined ? true : undefined,
    apiKey: t.apiKey,
    metadata: t.apiKey ? { 'temporal-namespace': t.namespace } : undefined,
  };
}

/** Where and how every workflow the service starts runs: its task queue and workflow task timeout. */
export function workflowStartOptions(config: Config) {
  return { taskQueue: config.temporal.taskQueue, workflowTaskTimeout: config.temporal.workflowTaskTimeoutMs };
}

export async function connectClient(config: Config, address: string): Promise<Client> {
  const connection = await Connection.connect(connectionOptions(config, address));
  return new Client({ connection, namespace: config.temporal.namespace, dataConverter: dataConverter(config) });
}

/** Runs a Temporal call with a deadline, so a missing worker yields 503 rather than a hang. */
export function withDeadline<T>(client: Client, ms: number, fn: () => Promise<T>): Promise<T> {
  return client.connection.withDeadline(Date.now() + ms, fn);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Why an update came back without a result. `retry`: the workflow asked for it again (it is
 * draining to continue as new). `refused`: its validator or handler refused it with one of our
 * codes; nothing happened and nothing will. `gone`: the workflow does not exist or has completed.
 * `unknown`: anything else (a deadline, the server's own update failures such as
 * UnprocessedUpdate, AcceptedUpdateCompletedWorkflow or WorkflowNotReady, a lost connection):
 * the update may or may not have been applied.
 */
export type UpdateFailure =
  | { kind: 'retry' }
  | { kind: 'refused'; error: AppError }
  | { kind: 'gone' }
  /** `busy`: the server said it is overloaded (RESOURCE_EXHAUSTED): resend, but not at once. */
  | { kind: 'unknown'; busy?: boolean };

export function classifyUpdateFailure(err: unknown): UpdateFailure {
  if (err instanceof WorkflowUpdateFailedError) {
    const refusal = refusalIn(err);
    if (refusal?.code === 'unavailable') return { kind: 'retry' };
    if (refusal) return { kind: 'refused', error: toAppError(err) };
    return { kind: 'unknown' };
  }
  if (isWorkflowGone(err)) return { kind: 'gone' };
  return { kind: 'unknown', busy: grpcCode(err) === GRPC_RESOURCE_EXHAUSTED };
}

/**
 * Pause before a resend: short, as the workflow's next run or task is usually a moment away; a
 * second when the server says it is overloaded, so resends do not feed the overload.
 */
const resendPause = (attempt: number, failure: UpdateFailure) =>
  sleep(failure.kind === 'unknown' && failure.busy ? 1_000 : Math.min(20 * attempt, 200));

/**
 * Sends an update under a deadline, always with the same update id (`send` sets it), so Temporal
 * takes a resend as the same update. A workflow asking for a retry gets the update again. Any other
 * failure goes to `unanswered`, which either answers (from the database, say) or asks for a resend
 * while time is left; past the deadline it must answer or throw.
 */
export async function sendUpdate<T>(
  client: Client,
  deadline: number,
  send: () => Promise<T>,
  unanswered: (failure: UpdateFailure, timeLeft: boolean, err: unknown) => Promise<{ answer: T } | 'resend'>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let failure: UpdateFailure;
    let error: unknown;
    try {
      return await client.connection.withDeadline(deadline, send);
    } catch (err) {
      failure = classifyUpdateFailure(err);
      error = err;
    }
    const timeLeft = Date.now() + 100 < deadline;
    if (failure.kind !== 'retry' || !timeLeft) {
      const handled = await unanswered(failure, timeLeft, error);
      if (handled !== 'resend') return handled.answer;
      if (!timeLeft) throw unknownOutcome();
    }
    await resendPause(attempt, failure);
  }
}

/** The answer past the deadline when nothing says whether the update was applied. */
export const unknownOutcome = () =>
  new AppError('unavailable', 'the billing workflow did not answer in time; retry with the same idempotency key');

/**
 * Sends an update under a deadline, resending it while the workflow asks for a retry; any other
 * failure is thrown (for updates whose outcome the caller reads back from the bill itself).
 */
export function updateWithDeadline<T>(client: Client, ms: number, send: () => Promise<T>): Promise<T> {
  return sendUpdate(client, Date.now() + ms, send, async (_failure, _timeLeft, err) => {
    throw err;
  });
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

/** True when the workflow does not exist, or has completed and accepts no updates. */
export function isWorkflowGone(err: unknown): boolean {
  if (err instanceof WorkflowNotFoundError) return true;
  if (err instanceof WorkflowUpdateFailedError) return false;
  const code = grpcCode(err);
  return code === GRPC_NOT_FOUND || /workflow execution already completed/i.test(String((err as Error)?.message));
}

/** Maps a failure from a workflow call to the API error a client should see. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const refusal = err instanceof WorkflowUpdateFailedError ? refusalIn(err) : undefined;
  if (refusal) return new AppError(refusal.code, refusal.message, refusal.details);
  // The server's own update failures (not our codes) leave the outcome unknown: retry, never a 500.
  if (err instanceof WorkflowUpdateFailedError) return unknownOutcome();
  if (err instanceof WorkflowExecutionAlreadyStartedError) return new AppError('already_exists', 'the bill already exists');
  const code = grpcCode(err);
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || code === GRPC_DEADLINE_EXCEEDED || code === GRPC_UNAVAILABLE) {
    return unknownOutcome();
  }
  if (code === GRPC_RESOURCE_EXHAUSTED) {
    return new AppError('resource_exhausted', 'the billing workflow is busy; retry with the same idempotency key');
  }
  // The call reached Temporal, which failed it on its side (cancelled under load, an internal or
  // unknown error): whether an update was applied is unknown, and a retry with the same key is
  // safe. Only answers that mean the request itself was wrong stay a 500 (a bug of ours).
  // The original rides along as the cause, so the request's log line says what Temporal answered.
  if (code !== undefined && TEMPORAL_SIDE_FAILURES.has(code)) return Object.assign(unknownOutcome(), { cause: err });
  return unexpected(err);
}

// CANCELLED, UNKNOWN, ABORTED, INTERNAL (DEADLINE_EXCEEDED and UNAVAILABLE are mapped above).
// 9 (FAILED_PRECONDITION) is what an update meets while its workflow's task is failing: whether
// an earlier attempt's change committed is unknown, and the same key is safe to send again.
const TEMPORAL_SIDE_FAILURES = new Set([1, 2, 9, 10, 13]);

/** Whether a Temporal frontend answers at `address` within about three seconds (one of ours, or one left by a killed run). */
export async function temporalAnswers(address: string): Promise<boolean> {
  try {
    const connection = await Connection.connect({ address, connectTimeout: 1000 });
    try {
      await connection.withDeadline(Date.now() + 2000, () => connection.workflowService.getSystemInfo({}));
      return true;
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}
