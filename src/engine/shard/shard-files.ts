import path from 'node:path';
import { Log } from '../../../native-free-storage/index.js';
import type { ShardConfig } from '../shard-messages.js';
import { DeadLetterStore } from './dead-letter-store.js';
import { FsyncLatency } from './fsync-latency.js';
import { rebuildLanes } from './lane-indexing.js';
import { PriorityLanes } from './priority-lanes.js';
import { Scheduler, type FiredCopies } from './scheduler.js';
import { SubscriptionStore, type Cursor, type StoredSubscription } from './subscription-store.js';
import { TrailLog } from './trail-log.js';
import { offsetScanProgress, type WorkHandle } from './work-reporter.js';

/** Everything a shard keeps on disk, opened and recovered. */
export interface ShardFiles {
  log: Log;
  fsyncLatency: FsyncLatency;
  store: SubscriptionStore;
  subscriptions: StoredSubscription[];
  cursors: Map<string, Cursor>;
  deadLetters: DeadLetterStore;
  trail: TrailLog;
  scheduler: Scheduler;
  lanes: PriorityLanes;
}

/**
 * Open a shard's files under `<dataDir>/shards/<id>` in recovery order: the events log (its torn
 * tail cut after a crash), subscription state, dead letters and the trail, then the indexes derived
 * from the log (schedule, priority lanes), each brought up to the log's end; `recovery` is told each
 * step. `onFired` gets the copies of scheduled deliveries that come due from then on.
 */
export async function openShardFiles(
  id: number,
  config: ShardConfig,
  onFired: (fired: FiredCopies) => void,
  onError: (error: unknown) => void,
  recovery: WorkHandle,
): Promise<ShardFiles> {
  const dir = path.join(config.dataDir, 'shards', String(id));
  const fsyncLatency = new FsyncLatency();
  const log = await Log.open(path.join(dir, 'events'), {
    io: fsyncLatency.io,
    fsync: config.fsync,
    fsyncIntervalMs: config.fsyncIntervalMs,
    segmentBytes: config.segmentBytes,
    maxRecordBytes: config.maxPayloadBytes + 64 * 1024,
    retentionMs: config.retentionMs,
    retentionBytes: config.retentionBytes,
  });
  recovery.step('reading subscription cursors, dead letters and the trail', null, 'offsets');
  const { store, subscriptions, cursors } = await SubscriptionStore.open(path.join(dir, 'state'), config.fsync, config.fsyncIntervalMs);
  const deadLetters = await DeadLetterStore.open(path.join(dir, 'state'), config.fsync, config.fsyncIntervalMs, onError);
  const trail = await TrailLog.open(path.join(dir, 'state'), config.trail, config.trailRetentionBytes, config.fsync, config.fsyncIntervalMs, onError);
  const scheduler = await Scheduler.open(path.join(dir, 'state', 'schedule'), log, onFired, onError, offsetScanProgress(recovery, 'scanning the log for scheduled events'));
  const lanes = await PriorityLanes.open(path.join(dir, 'lanes'));
  await rebuildLanes(lanes, log, offsetScanProgress(recovery, 'indexing priority lanes'));
  return { log, fsyncLatency, store, subscriptions, cursors, deadLetters, trail, scheduler, lanes };
}
