import fs from 'node:fs';
import path from 'node:path';
import { Log, writeFileAtomicAsync, type AppendRecord, type LogOptions } from '../../../native-free-storage/index.js';
import { EngineError } from '../errors.js';
import { DEFAULT_EVENT_PRIORITY, MAX_EVENT_PRIORITY } from '../event.js';

/** One indexed event of a lane. */
export interface LaneEntry {
  /** Offset of this entry in the lane log. */
  position: number;
  /** Offset of the event in the shard's main log. */
  mainOffset: number;
  /** The event's stream tag (its type), copied from the main record. */
  stream: number;
}

/** Events of the default priority get no lane: they are read by scanning the main log. */
const DEFAULT_PRIORITY = DEFAULT_EVENT_PRIORITY;
const MIN_PRIORITY = 0;
const MAX_PRIORITY = MAX_EVENT_PRIORITY;
/** Segment size of a lane log (lane records are 32 bytes: a header and an empty body). */
export const LANE_SEGMENT_BYTES = 8 * 1024 * 1024;

const CHECKPOINT_FILE = 'lanes.json';
const LANE_DIR_PATTERN = /^lane-([0-9])$/;
/** A lane directory being deleted is renamed to this first, so a crash never leaves half a lane. */
const DISCARDED_SUFFIX = '.discarded';
/** Lanes are derived from the main log: no fsync per append; `checkpoint` flushes before vouching. */
const LANE_LOG_OPTIONS: Partial<LogOptions> = { fsync: 'never', segmentBytes: LANE_SEGMENT_BYTES };
/** `add` calls whose lane appends have not settled yet, at most (they settle within microtasks). */
const MAX_UNSETTLED_ADDS = 8192;
/** Entries waiting for a new lane's log to be created, at most. */
const MAX_QUEUED_ENTRIES = 1 << 20;
const VERIFY_READ = { maxRecords: 65_536, maxBytes: 4 << 20 };
const MAX_U32 = 0xffff_ffff;
const EMPTY_BODY = new Uint8Array(0);

/** One `add` call: visible once every lane append it made has settled. */
interface AddBatch {
  firstMainOffset: number;
  outstanding: number;
}

interface Lane {
  readonly priority: number;
  /** Null while the lane's log is being created. */
  log: Log | null;
  /** Records waiting for `log` (bounded by MAX_QUEUED_ENTRIES over all lanes). */
  queued: AppendRecord[];
  queuedFor: AddBatch[];
  /** Highest main offset appended or queued to this lane, -1 for none: re-adds at or below are skipped. */
  lastMainOffset: number;
}

/**
 * Per-priority indexes of a shard's main log, so that subscriptions can deliver the highest priority
 * first across a large backlog. Every main-log record whose priority is not DEFAULT_PRIORITY is also
 * appended to the lane of its priority (`<dir>/lane-<p>/`, created on first use), as a record whose
 * timestamp is the main offset (monotonic, so `offsetForTime` finds positions by main offset) and
 * whose stream is the main record's stream (so readers filter by type).
 *
 * Lanes are written without fsync and rebuilt from the main log after a crash: `lanes.json` says up to
 * which main offset they are known complete and durable (`indexedTo`); the owner re-adds main-log
 * records from there, and entries a lane already holds are skipped. Lane entries must only be added
 * for main-log records that are confirmed (durable), so no lane entry outlives its main record.
 * Nothing per entry is kept in memory beyond the lane logs' own indexes.
 */
export class PriorityLanes {
  private readonly batches = new Set<AddBatch>();
  /** Lane opens and appends in flight; they never reject (failures go to `failure`). */
  private readonly operations = new Set<Promise<void>>();
  private queuedEntries = 0;
  private seenTo: number;
  private failure: EngineError | null = null;
  private closed = false;
  /** The checkpoint write in progress (they are made one at a time). */
  private checkpointWrite: Promise<void> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private readonly lanes: Map<number, Lane>,
    private indexedToValue: number,
  ) {
    this.seenTo = indexedToValue;
  }

  /**
   * Open the lanes in `dir`: every existing `lane-<p>/` log, and the `lanes.json` checkpoint
   * `{v:1, indexedTo}` if present (otherwise indexedTo is 0). The part of each lane past the
   * checkpoint is checked for holes (a power loss can drop unsynced pages of a sealed segment while
   * a later one survives); a lane with a hole cannot be refilled in place, so it is deleted and
   * indexedTo reset to 0, and the owner's rebuild indexes everything again.
   */
  static async open(dir: string): Promise<PriorityLanes> {
    fs.mkdirSync(dir, { recursive: true });
    for (const name of fs.readdirSync(dir)) {
      if (name.endsWith(DISCARDED_SUFFIX)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    }
    let indexedTo = readIndexedTo(dir);
    const lanes = new Map<number, Lane>();
    try {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const match = entry.isDirectory() ? LANE_DIR_PATTERN.exec(entry.name) : null;
        const priority = Number(match?.[1]);
        if (!match || priority === DEFAULT_PRIORITY) continue;
        const log = await Log.open(path.join(dir, entry.name), LANE_LOG_OPTIONS);
        lanes.set(priority, { priority, log, queued: [], queuedFor: [], lastMainOffset: lastMainOffsetOf(log) });
      }
      const damaged = [...lanes.values()].filter((lane) => hasHoleAfter(lane.log!, indexedTo));
      if (damaged.length > 0) {
        // Reset the checkpoint first: a crash while deleting then still rebuilds from the start.
        indexedTo = 0;
        await writeIndexedTo(dir, 0);
        for (const lane of damaged) {
          await lane.log!.close();
          lanes.delete(lane.priority);
          const trash = path.join(dir, laneName(lane.priority) + DISCARDED_SUFFIX);
          fs.renameSync(path.join(dir, laneName(lane.priority)), trash);
          fsyncDirectory(dir);
          fs.rmSync(trash, { recursive: true, force: true });
        }
      }
    } catch (error) {
      await Promise.allSettled([...lanes.values()].map((lane) => lane.log!.close()));
      throw error;
    }
    return new PriorityLanes(dir, lanes, indexedTo);
  }

  /** Every main-log record below this offset is indexed (rebuild scans the main log from here). */
  get indexedTo(): number {
    return this.indexedToValue;
  }

  /** Priorities with a lane, highest first. */
  get priorities(): number[] {
    return [...this.lanes.keys()].sort((a, b) => b - a);
  }

  /**
   * Main offset below which every indexed entry is readable from its lane: the offset passed to
   * `markSeen`, held back by any `add` whose lane appends have not settled. A subscription that merges
   * lanes with a scan of the main log must not scan at or past it, or it could pass an event whose
   * lane entry is not readable yet. Frozen after a lane failure.
   */
  get visibleTo(): number {
    let visible = this.seenTo;
    for (const batch of this.batches) if (batch.firstMainOffset < visible) visible = batch.firstMainOffset;
    return visible;
  }

  /**
   * Index main-log records, given in increasing main-offset order. Records of DEFAULT_PRIORITY are
   * skipped (they have no lane), as are entries at or below their lane's last main offset, so a
   * rebuild can re-add a range. Synchronous in effect: each lane's entries are appended (or queued
   * while a new lane's log is created) before this returns; they are readable once that append
   * settles (see `visibleTo`, `settled`). Throws INTERNAL for malformed entries (nothing is added
   * then), OVERLOADED when too many appends are unsettled, STORAGE_FAILED after a lane failed.
   */
  add(entries: ReadonlyArray<{ mainOffset: number; priority: number; stream: number }>): void {
    this.assertWritable();
    const groups = new Map<number, AppendRecord[]>();
    let previous = -1;
    let first = -1;
    let queuing = 0;
    for (let i = 0; i < entries.length; i++) {
      const { mainOffset, priority, stream } = entries[i]!;
      if (!Number.isSafeInteger(mainOffset) || mainOffset <= previous) {
        throw bug(`lane entry ${i}: main offset ${mainOffset} must be an integer above the previous entry's (${previous})`);
      }
      checkPriority(priority);
      if (!Number.isInteger(stream) || stream < 0 || stream > MAX_U32) throw bug(`lane entry ${i}: stream ${stream} must be a u32`);
      previous = mainOffset;
      const lane = this.lanes.get(priority);
      if (priority === DEFAULT_PRIORITY || mainOffset <= (lane?.lastMainOffset ?? -1)) continue;
      let group = groups.get(priority);
      if (!group) groups.set(priority, (group = []));
      group.push({ body: EMPTY_BODY, timestamp: mainOffset, stream });
      if (first < 0) first = mainOffset;
      if (!lane?.log) queuing++;
    }
    if (groups.size === 0) return;
    // (A single add may exceed the queue bound: its entries are in memory already, in `entries`.)
    if (this.batches.size >= MAX_UNSETTLED_ADDS || (this.queuedEntries > 0 && this.queuedEntries + queuing > MAX_QUEUED_ENTRIES)) {
      throw new EngineError('OVERLOADED', `priority lanes of ${this.dir}: ${this.batches.size} adds (${this.queuedEntries} entries waiting for a new lane) are unsettled; await settled()`);
    }
    const batch: AddBatch = { firstMainOffset: first, outstanding: groups.size };
    this.batches.add(batch);
    for (const [priority, records] of groups) {
      const lane = this.lanes.get(priority) ?? this.createLane(priority);
      lane.lastMainOffset = records[records.length - 1]!.timestamp!;
      if (lane.log) {
        this.appendTo(lane, records, [batch]);
      } else {
        for (const record of records) lane.queued.push(record);
        lane.queuedFor.push(batch);
        this.queuedEntries += records.length;
      }
    }
  }

  /** Every main-log record below `offset` has been passed to add (for the checkpoint and `visibleTo`). */
  markSeen(offset: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0) throw bug(`markSeen offset ${offset} must be a non-negative integer`);
    if (offset > this.seenTo) this.seenTo = offset;
  }

  /**
   * Lane entries of `priority` from `position`, at most `max`, optionally only those of `stream`;
   * [] when there are none at or after `position`, or the lane does not exist. Only entries already
   * appended (visible in the lane log) are returned. A stream-filtered read keeps scanning past
   * non-matching entries until it finds one or reaches the end, so [] always means "none yet".
   */
  read(priority: number, position: number, max: number, stream?: number): LaneEntry[] {
    this.assertOpen();
    checkPriority(priority);
    if (!Number.isSafeInteger(position) || position < 0) throw bug(`lane position ${position} must be a non-negative integer`);
    if (!Number.isSafeInteger(max) || max <= 0) throw bug(`lane read max ${max} must be a positive integer`);
    const log = this.lanes.get(priority)?.log;
    if (!log) return [];
    const entries: LaneEntry[] = [];
    let from = position;
    while (entries.length === 0 && from < log.durableOffset) {
      const batch = log.readBatch(from, stream === undefined ? { maxRecords: max } : { maxRecords: max, stream });
      for (const record of batch.records) entries.push({ position: record.offset, mainOffset: record.timestamp, stream: record.stream });
      if (batch.nextOffset <= from) break;
      from = batch.nextOffset;
    }
    return entries;
  }

  /** First lane position whose mainOffset >= `mainOffset` (the lane's end position if none; 0 if the lane is missing). */
  positionFor(priority: number, mainOffset: number): number {
    this.assertOpen();
    checkPriority(priority);
    if (!Number.isSafeInteger(mainOffset) || mainOffset < 0) throw bug(`main offset ${mainOffset} must be a non-negative integer`);
    const log = this.lanes.get(priority)?.log;
    if (!log) return 0;
    return log.offsetForTime(mainOffset) ?? log.durableOffset;
  }

  /** Next position of the lane (its visible end); 0 if the lane is missing or still being created. */
  end(priority: number): number {
    this.assertOpen();
    checkPriority(priority);
    return this.lanes.get(priority)?.log?.durableOffset ?? 0;
  }

  /** Wait until every lane append started so far has settled; throws STORAGE_FAILED if one failed. */
  async settled(): Promise<void> {
    while (this.operations.size > 0) await Promise.all([...this.operations]);
    if (this.failure) throw this.failure;
  }

  /**
   * Write lanes.json atomically with indexedTo = the offset passed to markSeen, once the lane appends
   * of everything below it have settled and been fsynced (lanes are written without fsync, so the
   * checkpoint must not vouch for records still only in the page cache). Never moves indexedTo back.
   */
  async checkpoint(): Promise<void> {
    this.assertWritable();
    const target = this.seenTo;
    await this.settled();
    for (const lane of this.lanes.values()) {
      try {
        await lane.log?.flush();
      } catch (error) {
        this.fail(lane.priority, error);
        throw this.failure;
      }
    }
    const indexedTo = Math.min(target, this.visibleTo);
    if (indexedTo <= this.indexedToValue) return;
    // One write at a time (they share a temporary name), and off the shard's thread.
    const run = () => writeIndexedTo(this.dir, indexedTo);
    const write = (this.checkpointWrite = this.checkpointWrite.then(run, run));
    await write;
    this.indexedToValue = Math.max(this.indexedToValue, indexedTo);
  }

  /** Let pending appends settle, then flush and close every lane log. Does not write lanes.json. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.operations.size > 0) await Promise.all([...this.operations]);
    const results = await Promise.allSettled([...this.lanes.values()].map((lane) => lane.log?.close()));
    const rejected = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (rejected) throw rejected.reason;
  }

  private createLane(priority: number): Lane {
    const lane: Lane = { priority, log: null, queued: [], queuedFor: [], lastMainOffset: -1 };
    this.lanes.set(priority, lane);
    this.track(this.openLane(lane));
    return lane;
  }

  private async openLane(lane: Lane): Promise<void> {
    try {
      lane.log = await Log.open(path.join(this.dir, laneName(lane.priority)), LANE_LOG_OPTIONS);
      // The new directory must survive a crash before a checkpoint vouches for its records.
      fsyncDirectory(this.dir);
    } catch (error) {
      this.fail(lane.priority, error);
      return;
    }
    const records = lane.queued;
    const batches = lane.queuedFor;
    lane.queued = [];
    lane.queuedFor = [];
    this.queuedEntries -= records.length;
    if (records.length > 0) this.appendTo(lane, records, batches);
  }

  private appendTo(lane: Lane, records: AppendRecord[], batches: AddBatch[]): void {
    const appended = lane.log!.append(records).then(
      () => {
        for (const batch of batches) if (--batch.outstanding === 0) this.batches.delete(batch);
      },
      (error: unknown) => this.fail(lane.priority, error),
    );
    this.track(appended);
  }

  /** Keep `work` (which never rejects) in `operations` until it settles. */
  private track(work: Promise<void>): void {
    const operation: Promise<void> = work.finally(() => this.operations.delete(operation));
    this.operations.add(operation);
  }

  /** A failed lane misses entries: its unsettled batches stay, so `visibleTo` stops before them. */
  private fail(priority: number, cause: unknown): void {
    const reason = cause instanceof Error ? cause.message : String(cause);
    this.failure ??= new EngineError('STORAGE_FAILED', `priority lane ${priority} of ${this.dir} failed: ${reason}; reopen the lanes to rebuild them`, { cause });
  }

  private assertOpen(): void {
    if (this.closed) throw bug(`priority lanes of ${this.dir} are closed`);
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.failure) throw this.failure;
  }
}

const laneName = (priority: number): string => `lane-${priority}`;

function checkPriority(priority: number): void {
  if (!Number.isInteger(priority) || priority < MIN_PRIORITY || priority > MAX_PRIORITY) {
    throw new EngineError('INTERNAL', `priority must be an integer ${MIN_PRIORITY}-${MAX_PRIORITY}, got ${priority}`, { field: 'priority' });
  }
}

/** Callers pass these values from the engine's own state: a bad one is a bug, not a client error. */
const bug = (message: string): EngineError => new EngineError('INTERNAL', message);

function lastMainOffsetOf(log: Log): number {
  const end = log.durableOffset;
  if (end <= log.startOffset) return -1;
  return log.read(end - 1, { maxRecords: 1 })[0]?.timestamp ?? -1;
}

/**
 * Whether the lane's positions are not contiguous after its last entry below main offset `from`
 * (everything below was fsynced before the checkpoint that set `from`). A lost stretch of a sealed
 * segment shows as a jump in positions, because later segments keep their base offsets.
 */
function hasHoleAfter(log: Log, from: number): boolean {
  const end = log.durableOffset;
  const firstUnchecked = log.offsetForTime(from) ?? end;
  let expected = Math.max(log.startOffset, firstUnchecked - 1);
  while (expected < end) {
    const batch = log.readBatch(expected, VERIFY_READ);
    if (batch.records.length === 0) return true;
    for (const record of batch.records) {
      if (record.offset !== expected) return true;
      expected++;
    }
  }
  return false;
}

function readIndexedTo(dir: string): number {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, CHECKPOINT_FILE), 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return 0;
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as { v?: unknown; indexedTo?: unknown };
    if (parsed.v === 1 && Number.isSafeInteger(parsed.indexedTo) && (parsed.indexedTo as number) >= 0) return parsed.indexedTo as number;
  } catch {
    // Fall through: lanes are derived, so indexing everything again (deduplicated) is always correct.
  }
  return 0;
}

function writeIndexedTo(dir: string, indexedTo: number): Promise<void> {
  return writeFileAtomicAsync(path.join(dir, CHECKPOINT_FILE), JSON.stringify({ v: 1, indexedTo }) + '\n');
}

/** fsync a directory so that entries created, renamed or deleted in it survive a crash. */
function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
