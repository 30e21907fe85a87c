import type { Log, LogRecord } from '../../../native-free-storage/index.js';
import { eventStreamTag, readEventId, readEventType } from '../event-codec.js';
import { eventIdTime } from '../event-id.js';
import type { ShardPublisher } from './shard-publisher.js';
import { RecordKind } from './record-kind.js';

/** A lookup by id scans at most this many of the type's records. */
const MAX_LOOKUP_SCAN_RECORDS = 10_000_000;
/** A producer may choose an id that looks like an engine id; look this far past its time. */
const ID_TIME_SLACK_MS = 60_000;
const ENGINE_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/**
 * Finds a shard's stored events by offset or by (type, id): from the dedup window, by the time an
 * engine-assigned id carries, or else by scanning the type's records (skipped by their stream tag).
 */
export class EventLookup {
  constructor(
    private readonly log: Log,
    private readonly publisher: ShardPublisher,
  ) {}

  /** The record at `offset`, or null when retention removed it. */
  readOne(offset: number): LogRecord | null {
    if (offset < this.log.startOffset) return null;
    const [record] = this.log.read(offset, { maxRecords: 1 });
    return record && record.offset === offset ? record : null;
  }

  find(type: string, id: string): LogRecord | null {
    const recent = this.publisher.recentOffset(type, id, Date.now());
    if (recent !== null) return this.readOne(recent);
    const stream = eventStreamTag(type);
    let from = this.log.startOffset;
    let until = Number.POSITIVE_INFINITY;
    if (ENGINE_ID.test(id)) {
      // Engine-assigned ids carry their publish time, which is also their record's timestamp.
      const time = eventIdTime(id);
      from = this.log.offsetForTime(time) ?? this.log.nextOffset;
      until = time + ID_TIME_SLACK_MS;
    }
    let scanned = 0;
    while (from < this.log.durableOffset && scanned < MAX_LOOKUP_SCAN_RECORDS) {
      const { records, nextOffset } = this.log.readBatch(from, { stream, maxRecords: 1000 });
      for (const record of records) {
        if (record.timestamp > until) return null;
        // Copies of scheduled events share the type's tag; the original is the event.
        if (record.attributes !== RecordKind.EVENT && record.attributes !== RecordKind.SCHEDULED) continue;
        if (readEventId(record.body) === id && readEventType(record.body) === type) return record;
      }
      scanned += records.length;
      if (nextOffset === from) break;
      from = nextOffset;
    }
    return null;
  }
}
