/**
 * One HTTP attempt of a delivery: a signed POST with a deadline, whose answer is read only up to
 * a limit. Redirects are not followed (a 3xx is a failed attempt, as with Stripe and Svix): the
 * registered URL is the one that was checked.
 */
import http from 'node:http';
import https from 'node:https';
import { checkHost, publicOnlyLookup } from './addresses';

/** How long the body of an answer is read for, once its status is in. */
const BODY_GRACE_MS = 1_000;

export interface SendResult {
  /** The HTTP status; null when no answer came. */
  status: number | null;
  /** The start of the answer's body. */
  body: string | null;
  /** Why it failed, when no answer came. */
  error: string | null;
  /** `timeout`, `refused` (a non-public address), `network` or null when an answer came. */
  failure: 'timeout' | 'refused' | 'network' | null;
  durationMs: number;
}

export interface SendOptions {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  bodyLimit: number;
  allowPrivate: boolean;
}

export async function send(o: SendOptions): Promise<SendResult> {
  const started = performance.now();
  const done = (r: Omit<SendResult, 'durationMs'>): SendResult => ({ ...r, durationMs: Math.round(performance.now() - started) });
  const url = new URL(o.url);
  try {
    // A literal IP in the URL is connected to without a lookup: checked here instead.
    if (!o.allowPrivate) checkHost(url.hostname);
  } catch (err) {
    return done({ status: null, body: null, error: (err as Error).message, failure: 'refused' });
  }
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<SendResult>((resolve) => {
    let settled = false;
    const finish = (r: Omit<SendResult, 'durationMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(done(r));
    };
    const req = transport.request(
      url,
      {
        method: 'POST',
        headers: { ...o.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(o.body) },
        agent: false,
        ...(o.allowPrivate ? {} : { lookup: publicOnlyLookup }),
      },
      (res) => {
        // The status decides the attempt: once it is in, the body gets a short while more (what
        // has come by then is kept), so a slow body never turns an answered 2xx into a timeout.
        clearTimeout(timer);
        setTimeout(() => res.destroy(), BODY_GRACE_MS).unref();
        const chunks: Buffer[] = [];
        let kept = 0;
        res.on('data', (chunk: Buffer) => {
          if (kept < o.bodyLimit) {
            chunks.push(chunk.subarray(0, o.bodyLimit - kept));
            kept += Math.min(chunk.length, o.bodyLimit - kept);
          }
          // Enough kept: the rest is not waited for.
          if (kept >= o.bodyLimit) res.destroy();
        });
        const answered = () =>
          finish({
            status: res.statusCode ?? null,
            body: kept ? Buffer.concat(chunks).toString('utf8').replaceAll('\u0000', '') : null,
            error: null,
            failure: null,
          });
        res.on('end', answered);
        res.on('close', answered);
        res.on('error', answered);
      },
    );
    // Connecting, sending and the answer's status, within the deadline.
    const timer = setTimeout(() => {
      req.destroy();
      finish({ status: null, body: null, error: `no answer within ${o.timeoutMs} ms`, failure: 'timeout' });
    }, o.timeoutMs);
    req.on('error', (err: Error & { code?: string }) =>
      finish({
        status: null,
        body: null,
        error: err.code === 'EWEBHOOKADDRESS' ? err.message : `${err.code ?? 'error'}: ${err.message}`,
        failure: err.code === 'EWEBHOOKADDRESS' ? 'refused' : 'network',
      }),
    );
    req.end(o.body);
  });
}
