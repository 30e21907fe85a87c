import { performance } from 'node:perf_hooks';
import type { LatencyRecorder } from '../observability/latency-recorder.js';
import type { Receipt } from './delivery.js';
import type { EngineError } from './errors.js';
import type { ValidatedPublishInput } from './event.js';
import type { OutcomeSink } from './publish-batcher.js';

/** What the engine remembers of a queued publish until its outcome comes back (filled in when it is queued). */
export interface PendingPublish {
  id: string;
  type: string;
  shard: number;
  /** The producer's unconfirmed-publish count, released when the outcome comes back. */
  window: { pending: number };
}

/** A record to fill in (publishMany: one per event). */
export function newPendingPublish(): PendingPublish {
  return { id: '', type: '', shard: 0, window: NO_WINDOW };
}

const NO_WINDOW = { pending: 0 };

export function receiptOf(pending: PendingPublish, offset: number, duplicate: boolean): Receipt {
  return { id: pending.id, type: pending.type, offset, shard: pending.shard, duplicate };
}

/**
 * The promise side of one `publish`, settled once, and its pending record (one object per publish
 * instead of two).
 */
export class PublishWaiter implements OutcomeSink, PendingPublish {
  id = '';
  type = '';
  shard = 0;
  window = NO_WINDOW;
  private readonly startedAt = performance.now();

  constructor(
    private readonly resolve: (receipt: Receipt) => void,
    private readonly reject: (error: EngineError) => void,
    private readonly latency: LatencyRecorder,
  ) {}

  settle(_index: number, offset: number, duplicate: boolean, error: EngineError | null, now: number): void {
    this.window.pending--;
    if (error) {
      this.reject(error);
    } else {
      this.latency.record('publish_to_durable', (now - this.startedAt) * 1000);
      this.resolve(receiptOf(this, offset, duplicate));
    }
  }
}

/** When a scheduled event is due (0: deliver at once; a deliverAt already past is at once too). */
export function scheduledTime(event: ValidatedPublishInput, now: number): number {
  if (event.delayMs !== undefined) return event.delayMs > 0 ? now + event.delayMs : 0;
  if (event.deliverAt !== undefined) return event.deliverAt > now ? event.deliverAt : 0;
  return 0;
}
