import path from 'node:path';

/**
 * File naming of a log directory. Segment files are named by their base offset, zero-padded to 20
 * digits (the width of the largest u64) so that a plain directory listing sorts them by offset.
 */
export const LOG_SUFFIX = '.log';
export const OFFSET_INDEX_SUFFIX = '.index';
export const TIME_INDEX_SUFFIX = '.timeindex';
export const CHECKPOINT_FILE = 'checkpoint';
export const CHECKPOINT_TEMP_FILE = 'checkpoint.tmp';
/** The intent of a compaction swap in progress (see compaction-swap.ts). */
export const COMPACTION_INTENT_FILE = 'compaction-intent';
export const COMPACTION_INTENT_TEMP_FILE = 'compaction-intent.tmp';

const BASE_OFFSET_DIGITS = 20;
const SEGMENT_NAME = /^(\d{20})\.(log|index|timeindex)$/;
const COMPACTION_TEMP_NAME = /^(\d{20})\.(log|index|timeindex)\.compacting-([0-9a-f]{16})$/;
const TASK_ID = /^[0-9a-f]{16}$/;

export function segmentFileStem(baseOffset: number): string {
  return String(baseOffset).padStart(BASE_OFFSET_DIGITS, '0');
}

export function segmentPaths(dir: string, baseOffset: number) {
  const stem = path.join(dir, segmentFileStem(baseOffset));
  return {
    log: stem + LOG_SUFFIX,
    offsetIndex: stem + OFFSET_INDEX_SUFFIX,
    timeIndex: stem + TIME_INDEX_SUFFIX,
  };
}

/** Parse a segment file name; null for files that are not segment files. */
export function parseSegmentFileName(name: string): { baseOffset: number; kind: 'log' | 'index' | 'timeindex' } | null {
  const match = SEGMENT_NAME.exec(name);
  if (!match) return null;
  return { baseOffset: Number(match[1]), kind: match[2] as 'log' | 'index' | 'timeindex' };
}

/**
 * The files a compaction writes before it is installed: the segment's own names with a
 * `.compacting-<task id>` suffix, so a directory listing never takes them for segment files and
 * recovery on open can find (and finish or remove) them.
 */
export function compactionTempPaths(dir: string, baseOffset: number, taskId: string) {
  if (!TASK_ID.test(taskId)) throw new Error(`compaction task id must be 16 hex digits, got ${JSON.stringify(taskId)}`);
  const final = segmentPaths(dir, baseOffset);
  const suffix = `.compacting-${taskId}`;
  return { log: final.log + suffix, offsetIndex: final.offsetIndex + suffix, timeIndex: final.timeIndex + suffix };
}

/** Parse the name of a compaction's temporary file; null for anything else. */
export function parseCompactionTempName(name: string): { baseOffset: number; kind: 'log' | 'index' | 'timeindex'; taskId: string } | null {
  const match = COMPACTION_TEMP_NAME.exec(name);
  if (!match) return null;
  return { baseOffset: Number(match[1]), kind: match[2] as 'log' | 'index' | 'timeindex', taskId: match[3]! };
}
