import { proposeMerges, type CompactionResult, type CompactionTask, type InstallResult, type Log, type SealedSegmentInfo } from '../../../native-free-storage/index.js';
import type { CompactionSettings } from '../compaction/compaction-settings.js';
import type { CompactionContext } from '../compaction/removal-rules.js';
import { DEFAULT_EVENT_PRIORITY } from '../event.js';
import type { DeadLetterStore } from './dead-letter-store.js';
import type { PriorityLanes } from './priority-lanes.js';
import type { Scheduler } from './scheduler.js';
import type { SubscriptionState } from './subscription-state.js';
import type { TailCache } from './tail-cache.js';

/** A compaction the shard prepared: the storage task, and the engine's rules for the worker. */
export interface PreparedCompaction {
  task: CompactionTask;
  /** Null when no policy removes anything (a merge only keeps every record). */
  context: CompactionContext | null;
  /** Why these segments: `merge` (small neighbours), `clean` (settled records may go). */
  reason: 'merge' | 'clean';
}

/** What the shard remembers of a segment's last compaction, to tell when another is worth it. */
interface Cleaned {
  floor: number;
  logEnd: number;
}

const PRIORITIES = 10;

/**
 * Compaction of a shard's events log, on the shard's thread: chooses which sealed segments to
 * rewrite, takes what the engine's removal rules need to know (subscription floors, dead letters
 * kept, the scheduler's last fire), and installs the rewritten segment. The rewrite itself runs in the
 * compaction worker. Which segments were compacted, and at what floor, is kept in memory: after a
 * restart each segment is looked at once more.
 */
export class ShardCompaction {
  private readonly cleaned = new Map<number, Cleaned>();
  /** The context of the compaction prepared and not yet installed or aborted (one at a time). */
  private preparedContext: CompactionContext | null = null;

  constructor(
    private readonly log: Log,
    private readonly lanes: PriorityLanes,
    private readonly subscriptions: ReadonlyMap<string, SubscriptionState>,
    private readonly deadLetters: DeadLetterStore,
    private readonly scheduler: Scheduler,
    private readonly tail: TailCache,
  ) {}

  /**
   * The next compaction worth running, or null. `skip` are base offsets already compacted in this
   * round (so a round ends); `force` ignores whether anything changed since a segment's last compaction.
   */
  prepare(settings: CompactionSettings, skip: ReadonlySet<number>, force: boolean, now = Date.now()): PreparedCompaction | null {
    const sealed = this.log.sealedSegments().filter((s) => s.compactable && !skip.has(s.baseOffset));
    // Without policies nothing is removed: the rules' inputs (lane reads, dead letters) are not gathered.
    const context = settings.policies.length > 0 ? this.context(settings, now) : null;
    if (settings.mergeBelowBytes > 0) {
      const merge = proposeMerges(sealed, { smallBytes: settings.mergeBelowBytes, maxBytes: this.log.options.segmentBytes })[0];
      if (merge) return this.prepared(merge, settings, context, 'merge');
    }
    if (!context) return null;
    const floor = lowestFloor(context);
    const keyed = settings.policies.some((p) => p.compaction === 'key');
    const oldestAge = Math.min(...settings.policies.map((p) => p.removeAckedAfterMs ?? Infinity));
    for (const segment of sealed) {
      if (segment.baseOffset >= floor) break; // nothing at or past the floor is settled for everyone
      // Without key compaction only age removes: a segment whose oldest record is too young holds nothing.
      if (!keyed && segment.firstTimestamp > now - oldestAge) continue;
      if (!force && !this.changedSince(segment, floor, settings, keyed)) continue;
      return this.prepared([segment.baseOffset], settings, context, 'clean');
    }
    return null;
  }

  /** Swap the rewritten segment in, and remember at what floor it was cleaned. */
  async install(result: CompactionResult): Promise<InstallResult> {
    const context = this.preparedContext;
    this.preparedContext = null;
    const installed = await this.log.installCompaction(result);
    // Subscriptions reading from the in-memory tail must not see what was just removed from disk.
    if (installed.installed) this.tail.dropBelow(result.group[result.group.length - 1]!.endOffset);
    const base = result.group[0]!.baseOffset;
    for (const segment of result.group) this.cleaned.delete(segment.baseOffset);
    if (context) this.cleaned.set(base, { floor: lowestFloor(context), logEnd: this.log.durableOffset });
    return installed;
  }

  abort(taskId: string): void {
    this.preparedContext = null;
    this.log.abortCompaction(taskId);
  }

  private prepared(segments: number[], settings: CompactionSettings, context: CompactionContext | null, reason: PreparedCompaction['reason']): PreparedCompaction {
    const keyPolicies = settings.policies.filter((p) => p.compaction === 'key');
    const task = this.log.prepareCompaction({
      segments,
      ...(context && keyPolicies.length > 0 && reason === 'clean'
        ? { keyCompaction: { tombstoneBeforeTimestamp: context.now - Math.min(...keyPolicies.map((p) => p.tombstoneRetentionMs)) } }
        : {}),
    });
    this.preparedContext = context;
    return { task, context, reason };
  }

  /** Whether the segment may hold more to remove than at its last compaction. */
  private changedSince(segment: SealedSegmentInfo, floor: number, settings: CompactionSettings, keyed: boolean): boolean {
    const last = this.cleaned.get(segment.baseOffset);
    if (!last) return true;
    const end = segment.nextOffset;
    if (Math.min(floor, end) > Math.min(last.floor, end)) return true;
    // Newer records may supersede keys in it: worth another look once the log grew enough.
    return keyed && this.log.durableOffset - last.logEnd >= settings.minCleanableRatio * Math.max(1, end - segment.baseOffset);
  }

  private context(settings: CompactionSettings, now: number): CompactionContext {
    const subscriptions = [...this.subscriptions.values()].map((state) => ({ pattern: state.spec.pattern, commitOffset: this.floorOf(state) }));
    const keepSince = settings.deadLetterRetentionMs === null ? null : now - settings.deadLetterRetentionMs;
    const lastFired = this.scheduler.lastFired;
    return {
      now,
      policies: settings.policies,
      subscriptions,
      keepOffsets: this.deadLetters.keptOffsets(keepSince),
      lastFired: lastFired ? { dueAt: lastFired.dueAt, source: lastFired.source } : null,
    };
  }

  /**
   * The lowest offset a subscription may still need: its commit point in the main log, or the first
   * event it has not settled in a priority lane (lanes are read apart from the main log).
   */
  private floorOf(state: SubscriptionState): number {
    let floor = state.commitOffset;
    for (let priority = 0; priority < PRIORITIES; priority++) {
      if (priority === DEFAULT_EVENT_PRIORITY) continue;
      const position = state.laneCommit(priority) ?? this.lanes.positionFor(priority, state.startOffset);
      const [next] = this.lanes.read(priority, position, 1);
      if (next && next.mainOffset < floor) floor = next.mainOffset;
    }
    return floor;
  }
}

function lowestFloor(context: CompactionContext): number {
  let floor = Infinity;
  for (const s of context.subscriptions) floor = Math.min(floor, s.commitOffset);
  return floor;
}
