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

const BASE_OFFSET_DIGITS = 20;
const SEGMENT_NAME = /^(\d{20})\.(log|index|timeindex)$/;

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
