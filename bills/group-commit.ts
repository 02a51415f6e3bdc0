/**
 * Group commit on the API side: adds to the same bill that reach this process together travel as
 * one update. While a bill's update is in flight, its next adds wait and then go together, so a
 * busy bill sends fewer, larger updates the busier it gets (Temporal takes only about 20 updates a
 * second into one workflow here) and an idle one sends each add at once: nothing waits on a timer.
 *
 * Hand-written rather than DataLoader (which batches per tick, not per key with one call in flight,
 * and caches by key): the policy is the point, and it is these few lines.
 */

export interface GroupEntry<I, A> {
  item: I;
  /** When this caller's answer is due (its update deadline). */
  deadline: number;
  resolve: (answer: A) => void;
  reject: (err: unknown) => void;
}

export interface GroupLimits {
  /** Items in one update. */
  maxItems: number;
  /** Their JSON size in one update (Temporal refuses payloads past 2 MB). */
  maxBytes: number;
}

interface BillQueue<I, A> {
  waiting: { entry: GroupEntry<I, A>; bytes: number }[];
}

export class GroupCommitter<I, A> {
  private readonly bills = new Map<string, BillQueue<I, A>>();

  /** `send` answers every entry of a group (resolve or reject); it must not throw. */
  constructor(
    private readonly send: (billId: string, entries: GroupEntry<I, A>[]) => Promise<void>,
    private readonly limits: GroupLimits,
    private readonly sizeOf: (item: I) => number,
  ) {}

  add(billId: string, item: I, deadline: number): Promise<A> {
    return new Promise<A>((resolve, reject) => {
      const entry = { entry: { item, deadline, resolve, reject }, bytes: this.sizeOf(item) };
      const queue = this.bills.get(billId);
      if (queue) {
        queue.waiting.push(entry);
        return;
      }
      const started: BillQueue<I, A> = { waiting: [entry] };
      this.bills.set(billId, started);
      // After this turn's other requests are read, so those arriving together leave together.
      setImmediate(() => void this.drain(billId, started));
    });
  }

  /** Sends the bill's waiting adds, one update at a time, until none wait. */
  private async drain(billId: string, queue: BillQueue<I, A>): Promise<void> {
    while (queue.waiting.length > 0) {
      let bytes = 0;
      let n = 0;
      while (n < queue.waiting.length && n < this.limits.maxItems && (n === 0 || bytes + queue.waiting[n].bytes <= this.limits.maxBytes)) {
        bytes += queue.waiting[n].bytes;
        n++;
      }
      const group = queue.waiting.splice(0, n).map((w) => w.entry);
      await this.send(billId, group).catch((err) => group.forEach((e) => e.reject(err)));
    }
    this.bills.delete(billId);
  }
}
