import { recordAttributes, recordBodyStart, recordStream, StorageError, type Log, type LogRecord, type RecordVisitor } from '../../../native-free-storage/index.js';
import { EngineError } from '../errors.js';
import { DEFAULT_EVENT_PRIORITY } from '../event.js';
import { eventPriorityAt, readEventRoutingAt, TypeNames, type EventRouting } from '../event-decoding.js';
import type { BodySlab } from './body-slab.js';
import type { PriorityLanes } from './priority-lanes.js';
import { decodeScheduleHeader, RecordKind, recordKind } from './record-kind.js';
import { laneKey, MAIN_RANK, type SubscriptionState } from './subscription-state.js';
import type { TailCache } from './tail-cache.js';

/** Records one fill may scan for one subscription before yielding to the others. */
const FILL_BUDGET_RECORDS = 4096;
/** Lane entries one fill reads per lane at most. */
const LANE_READ_MAX = 1000;
/** Lane events this close together in the log are read with one read. */
const RUN_RECORDS = 512;
const RUN_BYTES = 8 * 1024 * 1024;

/**
 * Refills subscriptions' read-ahead: from the tail cache when they are at the head, else from the
 * log, taking only events they want (type, recipients, not done, key not held) and copying their
 * bodies out of the read buffers. Scheduled events and defer markers are passed over in place:
 * their FIRED copies are delivered when due (a copy for one subscription only to that one).
 *
 * Priorities: the lanes above the default are read first, then the main scan (which passes over
 * events of other priorities: their lanes have them), then the lanes below. An ordered
 * subscription reads everything in the main scan.
 */
export class SubscriptionFeeder {
  /** Types of events read from the log, decoded once per type. */
  private readonly typeNames = new TypeNames();
  /** Filled by each event's routing read (reused: one read per event considered). */
  private readonly routing: EventRouting = { orderingKey: '', recipients: null, expiresAt: 0 };

  constructor(
    private readonly log: Log,
    private readonly lanes: PriorityLanes,
    private readonly tail: TailCache,
    private readonly slab: BodySlab,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Read matching events into the subscription's read-ahead. Returns true if it stopped on its budget. */
  fill(state: SubscriptionState): boolean {
    if (!state.usesLanes) return this.fillMain(state);
    const priorities = this.lanes.priorities;
    for (const priority of priorities) if (priority > DEFAULT_EVENT_PRIORITY) this.fillLane(state, priority);
    const more = this.fillMain(state);
    for (const priority of priorities) if (priority < DEFAULT_EVENT_PRIORITY) this.fillLane(state, priority);
    return more;
  }

  /** Read a lane's entries into the read-ahead while it has room for their rank. */
  private fillLane(state: SubscriptionState, priority: number): void {
    const rank = 9 - priority;
    let room = state.roomFor(rank);
    if (room === 0) return;
    let position = state.laneRead[priority] ?? this.lanes.positionFor(priority, state.startOffset);
    const durable = this.log.durableOffset;
    const entries = this.lanes.read(priority, position, Math.min(room, LANE_READ_MAX)).filter((entry) => entry.mainOffset < durable);
    const records = this.readEvents(entries.map((entry) => entry.mainOffset).filter((offset) => this.tail.slotOf(offset) < 0));
    for (const entry of entries) {
      if (room === 0) break;
      position = entry.position + 1;
      const key = laneKey(priority, entry.position);
      if (state.done.has(key)) continue;
      const slot = this.tail.slotOf(entry.mainOffset);
      const taken =
        slot >= 0
          ? this.considerCached(state, entry.mainOffset, slot, rank, entry.position, key)
          : this.considerRecord(state, records.get(entry.mainOffset), rank, entry.position, key);
      if (taken) room--;
    }
    state.laneRead[priority] = position;
  }

  /**
   * The records at `offsets` (increasing), read in runs: a lane's events lie close together in the
   * log, and one read of a run costs about what one read of a record does.
   */
  private readEvents(offsets: readonly number[]): Map<number, LogRecord> {
    const found = new Map<number, LogRecord>();
    for (let i = 0; i < offsets.length; ) {
      const first = offsets[i]!;
      let j = i + 1;
      while (j < offsets.length && offsets[j]! - first < RUN_RECORDS) j++;
      // Retention may have removed older events: they are skipped.
      if (first >= this.log.startOffset) {
        const want = new Set(offsets.slice(i, j));
        for (const record of this.log.read(first, { maxRecords: offsets[j - 1]! - first + 1, maxBytes: RUN_BYTES })) {
          if (want.has(record.offset)) found.set(record.offset, record);
        }
      }
      i = j;
    }
    return found;
  }

  private fillMain(state: SubscriptionState): boolean {
    let budget = FILL_BUDGET_RECORDS;
    this.fillFromTail(state);
    while (state.readRoom > 0 && state.readOffset < this.log.durableOffset) {
      if (budget <= 0) return true;
      let nextOffset: number;
      this.scanning = state;
      this.scanned = 0;
      try {
        nextOffset = this.log.scan(state.readOffset, { maxRecords: Math.min(budget, 1000) }, this.visitRecord);
      } catch (error) {
        if (error instanceof StorageError && error.code === 'OFFSET_OUT_OF_RANGE') {
          // Retention removed events this subscription had not read: continue from the oldest kept.
          this.onError(new EngineError('STORAGE_FAILED', `subscription ${state.spec.key} skipped to offset ${this.log.startOffset}: older events were removed by retention`));
          state.readOffset = this.log.startOffset;
          continue;
        }
        throw error;
      } finally {
        this.scanning = null;
      }
      budget -= this.scanned;
      state.readOffset = nextOffset;
      if (this.scanned === 0) break;
      // Caught up with what the tail cache holds: continue from it.
      if (this.tail.slotOf(nextOffset) >= 0) this.fillFromTail(state);
    }
    return false;
  }

  /** The subscription a log scan reads for, and how many records it took in. */
  private scanning: SubscriptionState | null = null;
  private scanned = 0;

  /** A record of a log scan (its bytes valid only now: what is taken is copied). */
  private readonly visitRecord: RecordVisitor = (chunk, position, length, offset) => {
    const state = this.scanning!;
    if (state.readRoom === 0) return false;
    this.scanned++;
    const start = recordBodyStart(chunk, position);
    this.consider(state, offset, recordAttributes(chunk, position), chunk, start, position + length, recordStream(chunk, position), null, null, true, DEFAULT_EVENT_PRIORITY, 0, MAIN_RANK, -1, offset);
    return true;
  };

  /** Feed a subscription at the head from the tail cache (no read, no checksum). */
  private fillFromTail(state: SubscriptionState): void {
    const end = Math.min(this.tail.endOffset, this.log.durableOffset);
    for (let offset = state.readOffset; offset < end && state.readRoom > 0; offset++) {
      const slot = this.tail.slotOf(offset);
      if (slot < 0) return;
      state.readOffset = offset + 1;
      this.considerCached(state, offset, slot);
    }
  }

  private considerRecord(state: SubscriptionState, record: LogRecord | undefined, rank = MAIN_RANK, lanePos = -1, doneKey = record?.offset ?? -1): boolean {
    if (record === undefined) return false;
    const body = record.body;
    return this.consider(state, record.offset, record.attributes, body, 0, body.length, record.stream, null, null, true, DEFAULT_EVENT_PRIORITY, 0, rank, lanePos, doneKey);
  }

  private considerCached(state: SubscriptionState, offset: number, slot: number, rank = MAIN_RANK, lanePos = -1, doneKey = offset): boolean {
    const tail = this.tail;
    return this.consider(
      state,
      offset,
      tail.attributes(slot),
      tail.buffer(slot),
      tail.start(slot),
      tail.end(slot),
      0,
      tail.type(slot),
      tail.sender(slot),
      tail.mustParse(slot),
      tail.priority(slot),
      tail.expiresAt(slot),
      rank,
      lanePos,
      doneKey,
    );
  }

  /**
   * Offer one record to the subscription if it is an event it wants; `lanePos` >= 0 when it was
   * found through a lane. Its body is bytes [start, end) of `bytes`. What the tail cache knows of
   * it comes along (`type`, `sender`, `priority`, `expiresAt`); a record read from the log has
   * `type` null (looked up by its `stream`) and `mustParse` set: its routing is read from the body.
   * Returns whether it was taken.
   */
  private consider(
    state: SubscriptionState,
    offset: number,
    attributes: number,
    bytes: Uint8Array,
    start: number,
    end: number,
    stream: number,
    type: string | null,
    sender: string | null,
    mustParse: boolean,
    priority: number,
    expiresAt: number,
    rank: number,
    lanePos: number,
    doneKey: number,
  ): boolean {
    let eventType = type;
    let eventStart = start;
    let parse = mustParse;
    if (attributes !== RecordKind.EVENT) {
      const kind = recordKind(attributes);
      if (kind !== RecordKind.FIRED) return false;
      const header = decodeScheduleHeader(bytes.subarray(start, end));
      if (header.subscription !== '' && header.subscription !== state.spec.key) return false;
      eventStart = start + header.bodyStart;
      parse = true;
    }
    eventType ??= this.typeNames.typeAt(bytes, eventStart, end, stream);
    if (!state.matchesType(eventType)) return false;
    if (lanePos < 0 && state.usesLanes && (parse ? eventPriorityAt(bytes, eventStart, end) : priority) !== DEFAULT_EVENT_PRIORITY) return false;
    let orderingKey = eventType;
    let recipients: readonly string[] | null = null;
    let expiry = expiresAt;
    if (parse) {
      const routing = this.routing;
      readEventRoutingAt(bytes, eventStart, end, eventType, routing);
      orderingKey = routing.orderingKey;
      recipients = routing.recipients;
      expiry = routing.expiresAt;
    }
    if (!state.wants(offset, orderingKey, recipients, doneKey)) return false;
    // A copy: a view would pin the whole read buffer (or publish batch) while the event waits.
    const slab = this.slab;
    const at = slab.copy(bytes, eventStart, end);
    state.offer(offset, orderingKey, slab.lastBuffer, at, at + end - eventStart, expiry, rank, lanePos, doneKey, eventType, sender);
    return true;
  }
}
