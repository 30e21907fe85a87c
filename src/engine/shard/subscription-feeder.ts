import { StorageError, type Log, type LogRecord } from '../../../native-free-storage/index.js';
import { EngineError } from '../errors.js';
import { readEventRouting, readEventType } from '../event-codec.js';
import type { BodySlab } from './body-slab.js';
import type { SubscriptionState } from './subscription-state.js';
import type { TailCache } from './tail-cache.js';

/** Records one fill may scan for one subscription before yielding to the others. */
const FILL_BUDGET_RECORDS = 4096;

/**
 * Refills subscriptions' read-ahead: from the tail cache when they are at the head, else from the
 * log, taking only events they want (type, recipients, not done, key not held) and copying their
 * bodies out of the read buffers.
 */
export class SubscriptionFeeder {
  constructor(
    private readonly log: Log,
    private readonly tail: TailCache,
    private readonly slab: BodySlab,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Read matching events into the subscription's read-ahead. Returns true if it stopped on its budget. */
  fill(state: SubscriptionState): boolean {
    let budget = FILL_BUDGET_RECORDS;
    this.fillFromTail(state);
    while (state.readRoom > 0 && state.readOffset < this.log.durableOffset) {
      if (budget <= 0) return true;
      let records: LogRecord[];
      let nextOffset: number;
      try {
        ({ records, nextOffset } = this.log.readBatch(state.readOffset, { maxRecords: Math.min(budget, 1000) }));
      } catch (error) {
        if (error instanceof StorageError && error.code === 'OFFSET_OUT_OF_RANGE') {
          // Retention removed events this subscription had not read: continue from the oldest kept.
          this.onError(new EngineError('STORAGE_FAILED', `subscription ${state.spec.key} skipped to offset ${this.log.startOffset}: older events were removed by retention`));
          state.readOffset = this.log.startOffset;
          continue;
        }
        throw error;
      }
      for (let i = 0; i < records.length; i++) {
        const record = records[i]!;
        if (state.readRoom === 0) {
          state.readOffset = record.offset;
          return false;
        }
        budget--;
        if (!state.matchesType(readEventType(record.body))) continue;
        const { orderingKey, recipients, expiresAt } = readEventRouting(record.body);
        if (!state.wants(record.offset, orderingKey, recipients)) continue;
        // A copy: a view would pin the whole read buffer while the event waits.
        state.offer(record.offset, orderingKey, this.slab.copy(record.body), expiresAt);
      }
      state.readOffset = nextOffset;
      if (records.length === 0) break;
    }
    return false;
  }

  /** Feed a subscription at the head from the tail cache (no read, no copy, no checksum). */
  private fillFromTail(state: SubscriptionState): void {
    let i = this.tail.indexOf(state.readOffset);
    if (i < 0) return;
    const durable = this.log.durableOffset;
    for (; i < this.tail.end && state.readRoom > 0; i++) {
      const cached = this.tail.at(i)!;
      if (cached.offset >= durable) break;
      state.readOffset = cached.offset + 1;
      if (!state.matchesType(cached.type)) continue;
      const { orderingKey, recipients, expiresAt } = readEventRouting(cached.body);
      if (!state.wants(cached.offset, orderingKey, recipients)) continue;
      state.offer(cached.offset, orderingKey, this.slab.copy(cached.body), expiresAt);
    }
  }
}
