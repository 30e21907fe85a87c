import { StorageError, type Log } from '../../../native-free-storage/index.js';
import { EngineError } from '../errors.js';
import { readEventId, readEventType } from '../event-codec.js';
import { PublishFlag, type EncodedPublishBatch, type PublishResult, type ShardConfig } from '../shard-messages.js';
import type { AppendedEvents } from './appended-events.js';
import type { SignatureVerdicts } from './signature-checks.js';
import { DedupIndex } from './dedup-index.js';
import { RecordKind, recordKind } from './record-kind.js';
import type { TailCache } from './tail-cache.js';
import { UNFOLLOWED_SCAN, type ScanProgress } from './work-reporter.js';

/**
 * The publish path of one shard: dedup by (type, id), signature verification, the append, and the
 * receipts. Stored events also go to the shard's tail cache for subscribers at the head.
 */
export class ShardPublisher {
  private readonly dedup: DedupIndex;

  constructor(
    private readonly id: number,
    private readonly log: Log,
    private readonly tail: TailCache,
    private readonly config: ShardConfig,
    /** Called after events became durable (deliveries can go out), with their records. */
    private readonly onStored: (appended: AppendedEvents) => void,
  ) {
    this.dedup = new DedupIndex(config.dedupWindowMs, config.maxDedupEntries);
  }

  /** The offset of a recently published (type, id), from the dedup window; null if not known. */
  recentOffset(type: string, id: string, nowMs: number): number | null {
    const entry = this.dedup.get(type, id, nowMs);
    return entry && entry.receipt.offset >= 0 && entry.receipt.offset < this.log.durableOffset ? entry.receipt.offset : null;
  }

  /** Forget ids older than the dedup window. */
  expire(nowMs: number): void {
    this.dedup.expire(nowMs);
  }

  /** Re-learn the ids published within the dedup window from the log, so dedup survives restarts. */
  rebuildDedup(nowMs: number, scanStarted: ScanProgress = UNFOLLOWED_SCAN): void {
    const config = this.config;
    const fromTime = this.log.offsetForTime(nowMs - config.dedupWindowMs);
    if (fromTime === null) return;
    const from = Math.max(fromTime, this.log.durableOffset - config.maxDedupEntries, this.log.startOffset);
    const seen = scanStarted(from, this.log.durableOffset);
    for (const record of this.log.records(from)) {
      seen(record.offset);
      const kind = recordKind(record.attributes);
      if (kind !== RecordKind.EVENT && kind !== RecordKind.SCHEDULED) continue;
      // Only type and id are needed; a record's timestamp is its event's publishedAt.
      const receipt = { id: readEventId(record.body), type: readEventType(record.body), offset: record.offset, shard: this.id, duplicate: true };
      this.dedup.add(receipt, record.timestamp, null);
    }
  }

  /**
   * Store and confirm a batch encoded by the engine, whose signatures `verdicts` judged (null: it
   * has none to check; see SignatureChecks). Each event gets its own outcome; refused ones store
   * nothing. Settles once the stored ones are durable.
   */
  async publish(batch: EncodedPublishBatch, verdicts: SignatureVerdicts | null): Promise<PublishResult> {
    const now = Date.now();
    const count = batch.typeOf.length;
    const result: PublishResult = { offsets: new Float64Array(count).fill(Number.NaN), duplicate: new Uint8Array(count), errors: [], bodies: null };
    const waits: Array<Promise<void>> = [];
    // Accepted events, in append order: `accepted[j]` is the batch index of the j-th.
    const accepted = new Uint32Array(count);
    const starts = new Uint32Array(count);
    const attributes = new Uint16Array(count);
    let stored = 0;
    // Offsets are known before the append settles (appends are sequential), so a repeat of an id
    // inside this batch, or in the next one while this one waits for its fsync, is caught too.
    const base = this.log.nextOffset;
    let settleDurable!: (durable: boolean) => void;
    const durable = new Promise<boolean>((resolve) => (settleDurable = resolve));
    const { ends, flags, types, typeOf, producerIds } = batch;
    /** Batch index -> the id its producer chose (dedup, and undoing it). */
    const chosenIds = producerIds.length > 0 ? new Map<number, string>() : null;
    let nextChosen = 0;
    for (let i = 0; i < count; i++) {
      const start = i === 0 ? 0 : ends[i - 1]!;
      starts[i] = start;
      const flag = flags[i]!;
      const type = types[typeOf[i]!]!;
      if (flag & PublishFlag.PRODUCER_ID) {
        const id = producerIds[nextChosen++]!;
        chosenIds!.set(i, id);
        const original = this.dedup.get(type, id, now);
        if (original) {
          waits.push(this.settleDuplicate(result, i, original.receipt.offset, original.durable));
          continue;
        }
      }
      const refusal = verdicts?.[i] ?? null;
      if (refusal) {
        result.errors.push([i, refusal.toJSON()]);
        continue;
      }
      // Engine-assigned ids are new by construction: only producer ids need remembering.
      if (flag & PublishFlag.PRODUCER_ID) this.dedup.add({ id: chosenIds!.get(i)!, type, offset: base + stored, shard: this.id, duplicate: true }, now, durable);
      attributes[stored] = batch.deliverAts[i]! > 0 ? RecordKind.SCHEDULED : RecordKind.EVENT;
      accepted[stored++] = i;
    }
    let appended = true;
    if (stored > 0) {
      // The batch's own columns when every event was accepted (the usual case), else the accepted ones.
      const all = stored === count;
      const pick = <T extends Uint32Array | Float64Array | Uint8Array>(column: T): T => (all ? column : (column.map((_, j) => (j < stored ? column[accepted[j]!]! : 0)) as T));
      const recordStarts = all ? starts : pick(starts);
      const recordEnds = all ? ends : pick(ends);
      try {
        await this.log.appendPacked({
          count: stored,
          bytes: batch.bodies,
          starts: recordStarts,
          ends: recordEnds,
          timestamps: pick(batch.times),
          attributes,
          streams: pick(batch.streams),
        });
        // The tail cache copies the whole batch at once when it stored all of it (the usual case).
        const run = all ? this.tail.copyRun(base, batch.bodies, 0, ends[count - 1]!) : -1;
        const tail = this.tail;
        for (let j = 0; j < stored; j++) {
          const i = accepted[j]!;
          result.offsets[i] = base + j;
          const type = types[typeOf[i]!]!;
          const sender = batch.producers[batch.producerOf[i]!]!.id;
          const mustParse = (flags[i]! & (PublishFlag.KEY | PublishFlag.RECIPIENTS)) !== 0;
          if (run >= 0) tail.addCopied(base + j, type, sender, run + starts[i]!, run + ends[i]!, attributes[j]!, batch.priorities[i]!, mustParse, batch.expiresAts[i]!);
          else tail.add(base + j, type, sender, batch.bodies, starts[i]!, ends[i]!, attributes[j]!, batch.priorities[i]!, mustParse, batch.expiresAts[i]!);
        }
        this.onStored({ base, count: stored, attributes, priorities: pick(batch.priorities), deliverAts: pick(batch.deliverAts), streams: pick(batch.streams) });
      } catch (cause) {
        appended = false;
        const error = storageRefusal(cause).toJSON();
        for (let j = 0; j < stored; j++) {
          const i = accepted[j]!;
          if (flags[i]! & PublishFlag.PRODUCER_ID) this.dedup.remove(types[typeOf[i]!]!, chosenIds!.get(i)!);
          result.errors.push([i, error]);
        }
      }
    }
    settleDurable(appended);
    await Promise.all(waits);
    // Nothing holds the batch's buffer now (the tail cache copied what it keeps): it goes back.
    if (batch.bodies.byteOffset === 0 && batch.bodies.buffer instanceof ArrayBuffer) result.bodies = batch.bodies.buffer;
    return result;
  }

  /** A repeated id: the original offset once the original is durable; retryable if it failed. */
  private async settleDuplicate(result: PublishResult, index: number, offset: number, durable: Promise<boolean> | null): Promise<void> {
    if (durable && !(await durable)) {
      const error = new EngineError('SHARD_UNAVAILABLE', 'the first publish of this event id failed; publish it again', { retryable: true });
      result.errors.push([index, error.toJSON()]);
      return;
    }
    result.offsets[index] = offset;
    result.duplicate[index] = 1;
  }

}

function storageRefusal(cause: unknown): EngineError {
  if (cause instanceof StorageError && cause.code === 'APPEND_QUEUE_FULL') {
    return new EngineError('OVERLOADED', 'the shard has too many appends waiting for disk; retry', { retryable: true, cause });
  }
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new EngineError('STORAGE_FAILED', `the event could not be stored: ${detail}`, { cause });
}
