/**
 * Settlements (ack, nack, defer, discard) made in the same tick travel together: one frame per
 * subscription, kind and argument, each carrying a request id so the caller learns the outcome.
 * A batcher belongs to one connection: deliveries are settled on the connection that brought them.
 */
import type { DeliveryRef } from '../protocol/index.js';
import { EnSyncError } from './errors.js';
import type { RequestFrame } from './request-frames.js';

export type SettlementKind = 'ack' | 'nack' | 'defer' | 'discard';

export interface Settlement {
  kind: SettlementKind;
  subscription: string;
  ref: DeliveryRef;
  /** nack (optional) and defer (required). */
  delayMs?: number;
  /** discard. */
  reason?: string;
}

/** Deliveries per frame at most: keeps every frame far below any sensible maxFrameBytes. */
export const MAX_REFS_PER_FRAME = 4096;

interface Batch {
  settlement: Omit<Settlement, 'ref'>;
  refs: DeliveryRef[];
  waiters: Array<{ resolve: () => void; reject: (error: EnSyncError) => void }>;
}

export class SettlementBatcher {
  /** Bounded by what is settled in one tick, itself bounded by the deliveries held (credits). */
  private batches = new Map<string, Batch>();
  private scheduled = false;

  constructor(
    private readonly request: (frame: RequestFrame) => Promise<unknown>,
    /** Whether the connection is still open: settlements that fail with it are dropped quietly. */
    private readonly isOpen: () => boolean,
  ) {}

  add(settlement: Settlement): Promise<void> {
    const key = `${settlement.kind}\0${settlement.subscription}\0${settlement.delayMs ?? ''}\0${settlement.reason ?? ''}`;
    let batch = this.batches.get(key);
    if (batch === undefined) {
      const { ref: _ref, ...rest } = settlement;
      batch = { settlement: rest, refs: [], waiters: [] };
      this.batches.set(key, batch);
    }
    batch.refs.push(settlement.ref);
    const promise = new Promise<void>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.flush());
    }
    return promise;
  }

  private flush(): void {
    this.scheduled = false;
    const batches = [...this.batches.values()];
    this.batches = new Map();
    for (const batch of batches) {
      for (let start = 0; start < batch.refs.length; start += MAX_REFS_PER_FRAME) {
        const refs = batch.refs.slice(start, start + MAX_REFS_PER_FRAME);
        const waiters = batch.waiters.slice(start, start + MAX_REFS_PER_FRAME);
        this.request(frameOf(batch.settlement, refs)).then(
          () => waiters.forEach((w) => w.resolve()),
          (error: unknown) => {
            // Deliveries of a connection that is gone come back on another one: nothing to settle.
            if (!this.isOpen()) {
              waiters.forEach((w) => w.resolve());
              return;
            }
            const failure = error instanceof EnSyncError ? error : new EnSyncError('INTERNAL', String(error));
            waiters.forEach((w) => w.reject(failure));
          },
        );
      }
    }
  }
}

function frameOf(settlement: Omit<Settlement, 'ref'>, deliveries: DeliveryRef[]): RequestFrame {
  const { kind, subscription } = settlement;
  switch (kind) {
    case 'ack':
      return { t: 'ack', subscription, deliveries };
    case 'nack':
      return settlement.delayMs === undefined ? { t: 'nack', subscription, deliveries } : { t: 'nack', subscription, deliveries, delayMs: settlement.delayMs };
    case 'defer':
      return { t: 'defer', subscription, deliveries, delayMs: settlement.delayMs ?? 0 };
    case 'discard':
      return { t: 'discard', subscription, deliveries, reason: settlement.reason ?? '' };
  }
}
