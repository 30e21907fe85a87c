import type { Log } from '../../../native-free-storage/index.js';
import { DEFAULT_EVENT_PRIORITY } from '../event.js';
import { readEventSchedule } from '../event-codec.js';
import type { PriorityLanes } from './priority-lanes.js';
import { eventBodyOf, RecordKind, recordKind } from './record-kind.js';
import type { AppendedEvents } from './appended-events.js';
import { UNFOLLOWED_SCAN, type ScanProgress } from './work-reporter.js';

/** Entries handed to the lanes per call while rebuilding (they bound what they queue). */
const REBUILD_CHUNK = 10_000;

/**
 * Put appended records of other than the default priority in their lanes: published events and
 * fired copies (scheduled originals and defer markers are not delivered in place).
 */
export function indexLanes(lanes: PriorityLanes, appended: AppendedEvents): void {
  const { base, count, attributes, priorities, streams } = appended;
  let entries: Array<{ mainOffset: number; priority: number; stream: number }> | null = null;
  for (let i = 0; i < count; i++) {
    const priority = priorities[i]!;
    if (priority === DEFAULT_EVENT_PRIORITY) continue;
    if (attributes[i] !== RecordKind.EVENT && attributes[i] !== RecordKind.FIRED) continue;
    (entries ??= []).push({ mainOffset: base + i, priority, stream: streams[i]! });
  }
  if (entries) lanes.add(entries);
  lanes.markSeen(base + count);
}

/** Index what the log holds past the lanes' checkpoint (lanes are not fsynced: rebuilt after a crash). */
export async function rebuildLanes(lanes: PriorityLanes, log: Log, scanStarted: ScanProgress = UNFOLLOWED_SCAN): Promise<void> {
  const entries: Array<{ mainOffset: number; priority: number; stream: number }> = [];
  const from = Math.max(lanes.indexedTo, log.startOffset);
  const seen = scanStarted(from, log.durableOffset);
  for (const record of log.records(from)) {
    seen(record.offset);
    const kind = recordKind(record.attributes);
    if (kind !== RecordKind.EVENT && kind !== RecordKind.FIRED) continue;
    const { priority } = readEventSchedule(eventBodyOf(record.attributes, record.body)!.body);
    if (priority === DEFAULT_EVENT_PRIORITY) continue;
    entries.push({ mainOffset: record.offset, priority, stream: record.stream });
    if (entries.length >= REBUILD_CHUNK) {
      lanes.add(entries.splice(0));
      await lanes.settled();
    }
  }
  if (entries.length > 0) lanes.add(entries);
  lanes.markSeen(log.durableOffset);
  await lanes.settled();
}
