import { cp, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** A segment as it appears on disk: `<20-digit base offset>.log|.index|.timeindex`. */
export interface SegmentFiles {
  baseOffset: number;
  logPath: string;
  indexPath: string;
  timeIndexPath: string;
  logBytes: number;
}

const SEGMENT_FILE = /^(\d{20})\.(log|index|timeindex)$/;

export function segmentFileName(baseOffset: number, kind: 'log' | 'index' | 'timeindex'): string {
  return `${String(baseOffset).padStart(20, '0')}.${kind}`;
}

/** Segments of a log directory ordered by base offset, derived from the `.log` files. */
export async function listSegments(dir: string): Promise<SegmentFiles[]> {
  const names = await readdir(dir);
  const bases = names
    .map((name) => SEGMENT_FILE.exec(name))
    .filter((match): match is RegExpExecArray => match !== null && match[2] === 'log')
    .map((match) => Number(match[1]))
    .sort((a, b) => a - b);
  return Promise.all(
    bases.map(async (baseOffset) => {
      const logPath = join(dir, segmentFileName(baseOffset, 'log'));
      return {
        baseOffset,
        logPath,
        indexPath: join(dir, segmentFileName(baseOffset, 'index')),
        timeIndexPath: join(dir, segmentFileName(baseOffset, 'timeindex')),
        logBytes: (await stat(logPath)).size,
      };
    }),
  );
}

/** Every file name in the directory that looks like segment data, for exact-set comparisons. */
export async function segmentFileNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => SEGMENT_FILE.test(name)).sort();
}

export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

export async function copyDir(from: string, to: string): Promise<void> {
  await cp(from, to, { recursive: true });
}
