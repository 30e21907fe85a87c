/** The body of GET /admin/latency: latency per stage over the current interval, in microseconds. */
import type { LatencySnapshot, LatencyStage, StageLatency } from '../observability/latency-recorder.js';

export interface LatencyBody {
  /** When the interval began (ISO 8601): the engine's start or the last reset. */
  intervalStartedAt: string;
  /** When these figures were taken (ISO 8601). */
  takenAt: string;
  unit: 'microseconds';
  /** Per stage: count, min, mean, percentiles, max and the HDR histogram (`encoded`, to merge). */
  stages: Record<LatencyStage, StageLatency>;
}

/** A snapshot as JSON (taken with `reset`, periodic readers get disjoint intervals). */
export function renderLatency(snapshot: LatencySnapshot): LatencyBody {
  return {
    intervalStartedAt: new Date(snapshot.intervalStartedAt).toISOString(),
    takenAt: new Date(snapshot.takenAt).toISOString(),
    unit: 'microseconds',
    stages: snapshot.stages,
  };
}
