import type { LogRecord } from '../../../native-free-storage/index.js';
import { decodeEventBody, readEventSchedule, readEventType } from '../event-codec.js';
import { decodeScheduleHeader, eventBodyOf, RecordKind, recordKind } from '../shard/record-kind.js';
import { TypePattern } from '../type-pattern.js';
import type { StreamCompactionPolicy } from './compaction-settings.js';

/**
 * What a shard knows that decides which of its records compaction may remove, as plain data: it is
 * taken on the shard's thread when a compaction is planned and used in the compaction worker.
 */
export interface CompactionContext {
  /** When the plan was made (ms): ages are measured from here. */
  now: number;
  policies: StreamCompactionPolicy[];
  /** Every subscription of the shard: everything below its commit offset is settled for it. */
  subscriptions: Array<{ pattern: string; commitOffset: number }>;
  /** Offsets that stay whatever else holds (dead letters within their retention), ascending. */
  keepOffsets: number[];
  /**
   * The last schedule entry fired (due time, source offset): a scheduled event or defer marker at
   * or before it in that order has had its copy appended, so it is no longer needed to fire.
   */
  lastFired: { dueAt: number; source: number } | null;
}

/** The key a record is compacted by (type and key), and whether it deletes the key (empty payload). */
export interface RecordCompactionKey {
  key: string;
  tombstone: boolean;
}

interface TypeRules {
  policy: StreamCompactionPolicy | null;
  /** Lowest commit offset of the subscriptions matching the type: records below it are settled by all. */
  floor: number;
}

/** Types looked up are cached; past this many the cache starts over (it only saves work). */
const MAX_CACHED_TYPES = 10_000;

/**
 * The engine's rules for removing records of a shard's events log. A record may go only when it is
 * *settled*: below the commit offset of every subscription matching its type, not a dead letter kept
 * for its retention, and (a scheduled event or defer marker) already fired. A settled record then
 * goes when its type's policy says so: older than `removeAckedAfterMs`, or superseded by a newer
 * event with the same key (`compaction: 'key'`), or a tombstone past `tombstoneRetentionMs`.
 */
export class RemovalRules {
  private readonly policies: Array<{ pattern: TypePattern; policy: StreamCompactionPolicy }>;
  private readonly subscriptions: Array<{ pattern: TypePattern; commitOffset: number }>;
  private readonly keep: Float64Array;
  private readonly byType = new Map<string, TypeRules>();

  constructor(private readonly context: CompactionContext) {
    this.policies = context.policies.map((policy) => ({ pattern: new TypePattern(policy.pattern), policy }));
    this.subscriptions = context.subscriptions.map((s) => ({ pattern: new TypePattern(s.pattern), commitOffset: s.commitOffset }));
    this.keep = Float64Array.from(context.keepOffsets).sort();
  }

  /** Whether any policy asks for key compaction (else the key scan can be skipped). */
  get compactsKeys(): boolean {
    return this.context.policies.some((p) => p.compaction === 'key');
  }

  /** Whether the record goes for its age alone (settled and older than its policy's removeAckedAfterMs). */
  removableByAge(record: LogRecord): boolean {
    const type = this.typeOf(record);
    if (type === null) return false;
    const rules = this.rulesFor(type);
    const after = rules.policy?.removeAckedAfterMs ?? null;
    return after !== null && record.timestamp <= this.context.now - after && this.settled(record, rules.floor);
  }

  /** Whether the record may go if key compaction finds it superseded (or an expired tombstone). */
  removableByKey(record: LogRecord): boolean {
    const type = this.typeOf(record);
    return type !== null && this.settled(record, this.rulesFor(type).floor);
  }

  /**
   * The key of a published event whose type is key-compacted; null for anything else (no key, another
   * policy, scheduled events and copies, which keep their own lifecycle).
   */
  compactionKey(record: LogRecord): RecordCompactionKey | null {
    if (recordKind(record.attributes) !== RecordKind.EVENT) return null;
    const type = readEventType(record.body);
    if (this.rulesFor(type).policy?.compaction !== 'key') return null;
    const event = decodeEventBody(record.body);
    if (event.key === null) return null;
    return { key: `${type}\u0000${event.key}`, tombstone: event.payload.byteLength === 0 };
  }

  /** A tombstone older than this (ms since the epoch) may go; per the record's policy. */
  tombstoneExpiredBefore(record: LogRecord): number {
    const type = this.typeOf(record);
    const policy = type === null ? null : this.rulesFor(type).policy;
    return policy ? this.context.now - policy.tombstoneRetentionMs : -Infinity;
  }

  private settled(record: LogRecord, floor: number): boolean {
    if (record.offset >= floor || this.kept(record.offset)) return false;
    const kind = recordKind(record.attributes);
    if (kind === RecordKind.SCHEDULED || kind === RecordKind.DEFER) return this.fired(record, kind);
    return true;
  }

  private fired(record: LogRecord, kind: RecordKind): boolean {
    const last = this.context.lastFired;
    if (!last) return false;
    const dueAt = kind === RecordKind.DEFER ? decodeScheduleHeader(record.body).dueAt : deliverAtOf(record);
    return dueAt < last.dueAt || (dueAt === last.dueAt && record.offset <= last.source);
  }

  private kept(offset: number): boolean {
    const keep = this.keep;
    let low = 0;
    let high = keep.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const value = keep[mid]!;
      if (value === offset) return true;
      if (value < offset) low = mid + 1;
      else high = mid - 1;
    }
    return false;
  }

  /** The event type a record is about; null for a defer marker that does not carry its event. */
  private typeOf(record: LogRecord): string | null {
    const kind = recordKind(record.attributes);
    if (kind === RecordKind.DEFER) {
      const header = decodeScheduleHeader(record.body);
      return header.bodyStart < record.body.byteLength ? readEventType(record.body.subarray(header.bodyStart)) : null;
    }
    return readEventType(eventBodyOf(record.attributes, record.body)!.body);
  }

  private rulesFor(type: string): TypeRules {
    let rules = this.byType.get(type);
    if (rules) return rules;
    if (this.byType.size >= MAX_CACHED_TYPES) this.byType.clear();
    let floor = Infinity;
    for (const s of this.subscriptions) if (s.commitOffset < floor && s.pattern.matches(type)) floor = s.commitOffset;
    const policy = this.policies.find((p) => p.pattern.matches(type))?.policy ?? null;
    rules = { policy, floor };
    this.byType.set(type, rules);
    return rules;
  }
}

function deliverAtOf(record: LogRecord): number {
  return readEventSchedule(record.body).deliverAt;
}
