import { MAX_SEGMENT_OFFSET_SPAN } from './compaction-plan.js';
import type { SealedSegmentInfo } from './compaction-install.js';

export interface MergeProposalOptions {
  /** Only segments of at most this many bytes are merged (e.g. a quarter of segmentBytes). */
  smallBytes: number;
  /** A merged segment holds at most this many bytes before compaction: the log's segmentBytes or less. */
  maxBytes: number;
  /** At most this many segments in one merge (default 64). */
  maxSegments?: number;
}

/**
 * Propose merges of small adjacent sealed segments (left small by compaction, or by time-based rolls):
 * runs of two or more consecutive compactable segments, each at most `smallBytes`, together at most
 * `maxBytes`. Returns the `segments` of one compaction plan per run, oldest first; the caller decides
 * which to run (one at a time per log) and what else each plan drops.
 */
export function proposeMerges(segments: readonly SealedSegmentInfo[], options: MergeProposalOptions): number[][] {
  const maxSegments = options.maxSegments ?? 64;
  const proposals: number[][] = [];
  let run: SealedSegmentInfo[] = [];
  let runBytes = 0;
  const close = () => {
    if (run.length >= 2) proposals.push(run.map((s) => s.baseOffset));
    run = [];
    runBytes = 0;
  };
  for (const segment of segments) {
    const fits = segment.compactable && segment.sizeBytes <= options.smallBytes;
    if (!fits) {
      close();
      continue;
    }
    const spanOk = run.length === 0 || segment.nextOffset - run[0]!.baseOffset - 1 <= MAX_SEGMENT_OFFSET_SPAN;
    if (run.length >= maxSegments || runBytes + segment.sizeBytes > options.maxBytes || !spanOk) close();
    run.push(segment);
    runBytes += segment.sizeBytes;
  }
  close();
  return proposals;
}
