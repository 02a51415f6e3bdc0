/**
 * The codec endpoint of Temporal's "remote codec" protocol: POST /codec/encode and /codec/decode
 * take and answer `{payloads: [{metadata: {name: base64}, data: base64}]}` (the JSON form of
 * Temporal's Payloads message). Temporal's UI (its codec endpoint setting, from the browser: hence
 * CORS for its origin) and CLI (`--codec-endpoint`, `--codec-auth`) call it to show decrypted
 * payloads to whoever holds an `admin` key. Outside the typed API: it is an operator's tool, like
 * /metrics.
 */
import cors from '@fastify/cors';
import type { Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../core/config';
import { AppError } from '../core/errors';
import { payloadCodec, PayloadKeyError } from '../core/payload-codec';

const PayloadMessage = temporal.api.common.v1.Payload;

/** Temporal caps a payload at 2 MB by default; a batch of them may come at once. */
const BODY_LIMIT = 16 * 1024 * 1024;

export interface CodecOptions {
  guard: (req: FastifyRequest, scope: 'admin') => Promise<void>;
}

function payloadsOf(body: unknown): Payload[] {
  // Proto JSON leaves an empty list out: the CLI sends {} when it has nothing to code.
  const payloads = body && typeof body === 'object' && !Array.isArray(body) ? ((body as { payloads?: unknown }).payloads ?? []) : undefined;
  if (!Array.isArray(payloads)) {
    throw new AppError('invalid_argument', 'body must be {"payloads": [...]}', { field: 'payloads' });
  }
  return payloads.map((p: unknown, i) => {
    try {
      return PayloadMessage.fromObject(p as object) as Payload;
    } catch (err) {
      throw new AppError('invalid_argument', `payloads[${i}] is not a payload: ${(err as Error).message}`, { field: `payloads[${i}]` });
    }
  });
}

const toJson = (payloads: Payload[]) => ({
  payloads: payloads.map((p) => PayloadMessage.toObject(PayloadMessage.fromObject(p), { bytes: String })),
});

export function registerCodec(app: FastifyInstance, config: Config, opts: CodecOptions): void {
  const codec = payloadCodec(config);
  // A plugin of its own: CORS applies to these two routes only.
  void app.register(async (scope) => {
    // Preflight answered for the listed origins only; no origin listed, no cross-origin call.
    await scope.register(cors, {
      origin: config.codecCorsOrigins.length > 0 ? config.codecCorsOrigins : false,
      methods: ['POST'],
      allowedHeaders: ['content-type', 'authorization', 'x-namespace'],
      credentials: true,
      maxAge: 600,
    });
    for (const op of ['encode', 'decode'] as const) {
      scope.post(`/codec/${op}`, { bodyLimit: BODY_LIMIT, preValidation: (req) => opts.guard(req, 'admin') }, async (req) => {
        if (!codec) throw new AppError('failed_precondition', 'payload encryption is off (PAYLOAD_ENCRYPTION_KEYS is not set)');
        const payloads = payloadsOf(req.body);
        try {
          return toJson(await codec[op](payloads));
        } catch (err) {
          if (err instanceof PayloadKeyError) throw new AppError('failed_precondition', err.message);
          throw err;
        }
      });
    }
  });
}
