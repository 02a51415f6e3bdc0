/**
 * A fault-injecting HTTP proxy in front of a stack: each request takes the next injected fault
 * (or passes), so a test can lose an answer after the service acted on the request, delay it,
 * or answer in the service's place.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  /** Forwarded and answered normally. */
  | 'pass'
  /** Forwarded; the service acts on it, but its answer is dropped (the connection is cut). */
  | 'drop-response'
  /** Not forwarded: the connection is cut at once. */
  | 'reset'
  /** Forwarded; the answer is held this long first. */
  | { delayMs: number }
  /** Not forwarded: answered with this status and body instead. */
  | { status: number; body?: unknown; headers?: Record<string, string> };

export interface SeenRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  fault: Fault;
}

export interface FaultProxy {
  url: string;
  /** Faults for the next requests, in order. */
  inject: (...faults: Fault[]) => void;
  seen: SeenRequest[];
  /** Forgets injected faults not used yet, and the requests seen. */
  reset: () => void;
  close: () => Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const queue: Fault[] = [];
  const seen: SeenRequest[] = [];
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const fault = queue.shift() ?? 'pass';
    const key = req.headers['idempotency-key'];
    seen.push({ method: req.method!, path: req.url!, idempotencyKey: Array.isArray(key) ? key[0] : key, fault });
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (typeof fault === 'object' && 'status' in fault) {
      req.resume();
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(fault.body === undefined ? undefined : JSON.stringify(fault.body));
      return;
    }
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (c) => chunks.push(c));
        answer.on('end', () => {
          if (fault === 'drop-response') {
            res.socket?.destroy();
            return;
          }
          const send = () => {
            res.writeHead(answer.statusCode!, answer.headers);
            res.end(Buffer.concat(chunks));
          };
          if (typeof fault === 'object' && 'delayMs' in fault) setTimeout(send, fault.delayMs);
          else send();
        });
      },
    );
    forward.on('error', () => res.socket?.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    inject: (...faults) => queue.push(...faults),
    seen,
    reset: () => {
      queue.length = 0;
      seen.length = 0;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
