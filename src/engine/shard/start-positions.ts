import type { Log } from '../../../native-free-storage/index.js';
import type { StartPosition } from '../subscription-spec.js';
import type { PriorityLanes } from './priority-lanes.js';

/** The log offset a start position (new, all, a time, an offset) resolves to in this shard. */
export function resolvePosition(log: Log, position: StartPosition): number {
  switch (position.from) {
    case 'new':
      return log.nextOffset;
    case 'all':
      return log.startOffset;
    case 'time':
      return log.offsetForTime(position.timestamp) ?? log.nextOffset;
    case 'offset':
      return Math.min(Math.max(position.offset, log.startOffset), log.nextOffset);
  }
}

/** Where each lane's entries for log offsets from `offset` on begin. */
export function lanePositions(lanes: PriorityLanes, offset: number): Record<number, number> {
  const positions: Record<number, number> = {};
  for (const priority of lanes.priorities) positions[priority] = lanes.positionFor(priority, offset);
  return positions;
}
