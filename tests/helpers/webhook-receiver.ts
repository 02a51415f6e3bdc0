/**
 * A webhook receiver on loopback that checks every delivery the way a customer would: with the
 * Standard Webhooks reference library (`standardwebhooks`), not with our own signing code.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Received {
  path: string;
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  event: { id: string; type: string; created_at: string; data: any };
  /** The secrets (of those registered for the path) whose signature verified. */
  verifiedWith: string[];
  /** What the receiver answered. */
  answered: number;
}

/** How a path answers its n-th request (1-based): a status, or `hang` (never answers). */
export type Behaviour = (n: number, r: Received) => number | 'hang' | Promise<number | 'hang'>;

export interface Receiver {
  url: (path: string) => string;
  received: Received[];
  /** Registers the secrets a path's deliveries are verified with, and how it answers. */
  route: (path: string, secrets: string[], behaviour?: Behaviour, body?: (n: number) => string) => void;
  at: (path: string) => Received[];
  stop: () => Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const routes = new Map<string, { secrets: string[]; behaviour: Behaviour; body?: (n: number) => string; n: number }>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const path = req.url ?? '/';
        const route = routes.get(path) ?? { secrets: [], behaviour: () => 200, n: 0 };
        const headers = {
          'webhook-id': String(req.headers['webhook-id'] ?? ''),
          'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
          'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
        };
        const verifiedWith = route.secrets.filter((secret) => {
          try {
            new Webhook(secret).verify(body, headers);
            return true;
          } catch {
            return false;
          }
        });
        const r: Received = {
          path,
          id: headers['webhook-id'],
          timestamp: headers['webhook-timestamp'],
          signature: headers['webhook-signature'],
          body,
          event: JSON.parse(body),
          verifiedWith,
          answered: 0,
        };
        received.push(r);
        route.n += 1;
        const answer = await route.behaviour(route.n, r);
        if (answer === 'hang') return;
        r.answered = answer;
        res.writeHead(answer, { 'content-type': 'text/plain' });
        res.end(route.body?.(route.n) ?? (answer < 300 ? 'ok' : 'not now'));
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    route: (path, secrets, behaviour = () => 200, body) => routes.set(path, { secrets, behaviour, body, n: 0 }),
    at: (path) => received.filter((r) => r.path === path),
    stop: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
