/**
 * Where a delivery may connect, on the real stack: its worker and relay refuse private addresses
 * (WEBHOOK_ALLOW_PRIVATE=false, as in production), so this file has a stack of its own; the
 * other webhook tests deliver to a receiver on loopback.
 */
import { call, withApiHost, eventually, inSeconds, startStack, uid, type Stack } from '../helpers/stack';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver';

let stack: Stack;
let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
  stack = await startStack({
    WEBHOOK_ALLOW_PRIVATE: 'false',
    // Fast retries, so a second refused attempt comes within a second.
    WEBHOOK_RETRY_INITIAL_MS: '100',
    WEBHOOK_RETRY_MAX_INTERVAL_MS: '400',
  });
});
afterAll(async () => {
  await stack.stop();
  await receiver.stop();
});

/** Registers `path` through an API host that still allowed private addresses. */
function registerWhilePrivateAllowed(path: string, events: string[]): Promise<{ webhook_id: string; secret: string }> {
  return withApiHost(stack, { WEBHOOK_ALLOW_PRIVATE: 'true' }, async (host) => {
    const created = await call(host, 'POST', '/webhooks', { url: receiver.url(path), events });
    expect(created.status).toBe(200);
    receiver.route(path, [created.body.secret]);
    return created.body;
  });
}

describe('delivery', () => {
  it('refuses to connect to a private address at delivery, though it was allowed at registration (a name can be re-pointed after)', async () => {
    // The stack's own API refuses the receiver now, as its worker will.
    const refused = await call(stack, 'POST', '/webhooks', { url: receiver.url('/private'), events: ['bill.created'] });
    expect([refused.status, refused.body.details]).toEqual([400, { field: 'url', reason: 'address_not_public' }]);
    const hook = await registerWhilePrivateAllowed('/private', ['bill.created']);
    const billId = uid();
    try {
      expect((await call(stack, 'POST', '/bills', { bill_id: billId, billing_period_end: inSeconds(3600) })).status).toBe(200);

      // Two attempts recorded (or the delivery ended): each one was refused before connecting,
      // and an attempt that had connected would have reached the receiver by then.
      const delivery = await eventually(async () => {
        const [d] = (await call(stack, 'GET', `/webhooks/${hook.webhook_id}/deliveries`)).body.deliveries;
        return d && (d.status !== 'pending' || (d.attempts >= 2 && d.last_error)) && d;
      });
      expect(delivery).toMatchObject({ status: 'pending', last_status_code: null, last_response_body: null });
      expect(delivery.last_error).toMatch(/^127\.0\.0\.1 resolves to 127\.0\.0\.1, a loopback address; receivers must be public/);
      expect(receiver.at('/private')).toEqual([]);
    } finally {
      await call(stack, 'DELETE', `/webhooks/${hook.webhook_id}`);
      await call(stack, 'POST', `/bills/${billId}/close`);
    }
  });
});
