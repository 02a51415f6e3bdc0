/** Line item ids: derived, so that a retry anywhere names the same line item. */
import { hash } from 'node:crypto';
import { parse as uuidParse, stringify as uuidStringify } from 'uuid';

// Fixed namespace for line item ids: uuidv5(bill + key) is the same on every retry, anywhere.
const LINE_ITEM_NAMESPACE = Buffer.from(uuidParse('6f1b2c1e-4a57-4d1e-9a44-5b1f0c2e7d10'));

/**
 * The RFC 9562 UUIDv5 of `bill \n key` in our namespace, as `uuid`'s v5 derives it (a unit test
 * holds the two equal). One-shot `crypto.hash` instead of v5's hash object: a batch derives 1,000
 * of these, and they were 12% of the API's CPU in the batch profile (docs/performance.md).
 */
export function lineItemId(billId: string, idempotencyKey: string): string {
  const sha1 = hash('sha1', Buffer.concat([LINE_ITEM_NAMESPACE, Buffer.from(`${billId}\n${idempotencyKey}`, 'utf8')]), 'buffer');
  sha1[6] = (sha1[6] & 0x0f) | 0x50; // version 5
  sha1[8] = (sha1[8] & 0x3f) | 0x80; // RFC variant
  return uuidStringify(sha1.subarray(0, 16));
}
