import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { COMPACTION_INTENT_FILE, compactionTempPaths, segmentPaths } from './file-names.js';
import { fsyncDirectory, fsyncDirectoryAsync, writeFileAtomicAsync } from './file-io.js';

/**
 * The swap that installs a compacted segment, and its intent record. The rewritten segment is first
 * complete and fsynced under temporary names; then:
 *
 *   1. the intent is written atomically (temp, fsync, rename, fsync dir): from here on the swap is
 *      finished, by this process or by recovery on the next open, never undone;
 *   2. the temporary offset index, time index, then .log are renamed over the first segment's files;
 *   3. the other segments merged into it are deleted (.log first, then its indexes);
 *   4. the directory is fsynced, the intent removed, the directory fsynced again.
 *
 * Readers of the log never see a mix: the log swaps its in-memory segment list in one step after 2
 * and 3, and until then reads the old files through descriptors opened before the renames. Each step
 * is idempotent, so recovery can run the remaining ones after a crash anywhere.
 */
export interface CompactionIntent {
  taskId: string;
  /** Base offset of the segment the rewrite replaces (named like it). */
  baseOffset: number;
  /** Base offsets of the further segments merged into it, deleted by step 3. */
  mergedBases: number[];
  /** Size and CRC-32 of the new .log: tell whether the rename of step 2 happened. */
  logBytes: number;
  logCrc: number;
}

/** The steps of a swap, in order; a hook sees each one just after it is done (fault injection). */
export type SwapStep =
  | 'intent-written'
  | 'offset-index-renamed'
  | 'time-index-renamed'
  | 'log-renamed'
  | 'segment-removed'
  | 'directory-synced'
  | 'intent-removed';

export type SwapHook = (step: SwapStep) => void;

const INTENT_VERSION = 1;

function serialize(intent: CompactionIntent): string {
  const body = JSON.stringify({ v: INTENT_VERSION, ...intent });
  return `${body.slice(0, -1)},"crc":${zlib.crc32(body)}}\n`;
}

/** The intent on disk: null when there is none, 'unreadable' when it fails its checksum. */
export function readIntent(dir: string): CompactionIntent | null | 'unreadable' {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, COMPACTION_INTENT_FILE), 'utf8').trim();
  } catch {
    return null;
  }
  const match = /^(.*),"crc":(\d+)\}$/.exec(text);
  if (!match || zlib.crc32(`${match[1]}}`) !== Number(match[2])) return 'unreadable';
  try {
    const { v, ...intent } = JSON.parse(`${match[1]}}`) as CompactionIntent & { v: number };
    return v === INTENT_VERSION ? intent : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

export function writeIntentAsync(dir: string, intent: CompactionIntent): Promise<void> {
  return writeFileAtomicAsync(path.join(dir, COMPACTION_INTENT_FILE), serialize(intent));
}

export function removeIntent(dir: string): void {
  fs.rmSync(path.join(dir, COMPACTION_INTENT_FILE), { force: true });
  fsyncDirectory(dir);
}

export async function removeIntentAsync(dir: string): Promise<void> {
  await fs.promises.rm(path.join(dir, COMPACTION_INTENT_FILE), { force: true });
  await fsyncDirectoryAsync(dir);
}

/** Step 2: rename whichever temporary files are still there over the segment's files. */
export function renameIntoPlace(dir: string, intent: CompactionIntent, hook: SwapHook): void {
  const temp = compactionTempPaths(dir, intent.baseOffset, intent.taskId);
  const final = segmentPaths(dir, intent.baseOffset);
  renameIfPresent(temp.offsetIndex, final.offsetIndex);
  hook('offset-index-renamed');
  renameIfPresent(temp.timeIndex, final.timeIndex);
  hook('time-index-renamed');
  renameIfPresent(temp.log, final.log);
  hook('log-renamed');
}

/** Step 3: delete the merged segments' files. */
export function removeMergedSegments(dir: string, intent: CompactionIntent, hook: SwapHook): void {
  for (const base of intent.mergedBases) {
    const files = segmentPaths(dir, base);
    // The .log first: an index without its .log is cleaned up on open, a .log without index is reindexed.
    for (const file of [files.log, files.offsetIndex, files.timeIndex]) fs.rmSync(file, { force: true });
    hook('segment-removed');
  }
}

/** Remove a task's temporary files (a compaction that is not installed). */
export function removeTempFiles(dir: string, baseOffset: number, taskId: string): void {
  const temp = compactionTempPaths(dir, baseOffset, taskId);
  for (const file of [temp.log, temp.offsetIndex, temp.timeIndex]) fs.rmSync(file, { force: true });
}

/** Whether `file` has exactly `bytes` bytes with CRC-32 `crc` (read in bounded chunks). */
export function fileMatches(file: string, bytes: number, crc: number): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return false;
  }
  try {
    if (fs.fstatSync(fd).size !== bytes) return false;
    const chunk = Buffer.allocUnsafe(Math.min(bytes, 1 << 20) || 1);
    let value = 0;
    for (let position = 0; position < bytes; ) {
      const n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, bytes - position), position);
      if (n <= 0) return false;
      value = zlib.crc32(chunk.subarray(0, n), value);
      position += n;
    }
    return value === crc;
  } finally {
    fs.closeSync(fd);
  }
}

function renameIfPresent(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (error) {
    if ((error as { code?: string }).code !== 'ENOENT') throw error;
  }
}
