import fs from 'node:fs';
import path from 'node:path';
import { fileMatches, readIntent, removeIntent, removeMergedSegments, removeTempFiles, renameIntoPlace, type CompactionIntent } from './compaction-swap.js';
import { COMPACTION_INTENT_TEMP_FILE, compactionTempPaths, parseCompactionTempName, segmentPaths } from './file-names.js';
import { fsyncDirectory } from './file-io.js';

/** What recovery did about compactions, for the recovery report. */
export interface CompactionRecovery {
  /** Swaps found half-done and finished (their intent was durable). */
  finished: number;
  /** Swaps found before their point of no return and undone. */
  rolledBack: number;
  /** Temporary files of compactions that never got to their swap, removed. */
  leftoversRemoved: number;
  repairs: string[];
}

/**
 * Run on open, before the segments are listed: finish or undo a compaction swap a crash interrupted
 * (see compaction-swap.ts), then remove every temporary file of a compaction that was not installed.
 *
 * - An intent whose new .log is still under its temporary name: roll forward (rename, delete the merged
 *   segments), unless the segment it replaces is gone (nothing to replace: undo).
 * - An intent whose temporary .log is gone: if the segment's .log is the new file (size and CRC match)
 *   the rename happened, so finish the deletions; otherwise undo (only the intent and any leftovers go;
 *   a renamed index beside the old .log fails the loader's index check and is rebuilt).
 * - No intent: a crash before the swap began; the old segments are whole, temporary files go.
 */
export function recoverCompaction(dir: string): CompactionRecovery {
  const result: CompactionRecovery = { finished: 0, rolledBack: 0, leftoversRemoved: 0, repairs: [] };
  fs.rmSync(path.join(dir, COMPACTION_INTENT_TEMP_FILE), { force: true });
  const intent = readIntent(dir);
  if (intent === 'unreadable') {
    // Written atomically, so only damage after the fact gets here; its temporary files (if any) go below.
    removeIntent(dir);
    result.repairs.push('removed an unreadable compaction intent');
  } else if (intent) {
    if (rollForward(dir, intent)) {
      result.finished++;
      result.repairs.push(`finished an interrupted compaction of segment ${intent.baseOffset}${mergedText(intent)}`);
    } else {
      removeIntent(dir);
      removeTempFiles(dir, intent.baseOffset, intent.taskId);
      result.rolledBack++;
      result.repairs.push(`undid an interrupted compaction of segment ${intent.baseOffset}${mergedText(intent)}: the old segments stay`);
    }
  }
  let removed = 0;
  for (const name of fs.readdirSync(dir)) {
    const temp = parseCompactionTempName(name);
    if (!temp) continue;
    fs.rmSync(path.join(dir, name), { force: true });
    result.repairs.push(`removed compaction leftover ${name}`);
    removed++;
  }
  if (removed > 0) fsyncDirectory(dir);
  result.leftoversRemoved = removed;
  return result;
}

/** Finish the swap if it is past its point of no return; false when it must be undone instead. */
function rollForward(dir: string, intent: CompactionIntent): boolean {
  const temp = compactionTempPaths(dir, intent.baseOffset, intent.taskId);
  const final = segmentPaths(dir, intent.baseOffset);
  const noHook = () => {};
  if (fs.existsSync(temp.log)) {
    if (!fs.existsSync(final.log) || !fileMatches(temp.log, intent.logBytes, intent.logCrc)) return false;
    renameIntoPlace(dir, intent, noHook);
  } else if (!fileMatches(final.log, intent.logBytes, intent.logCrc)) {
    return false;
  }
  removeMergedSegments(dir, intent, noHook);
  fsyncDirectory(dir);
  removeIntent(dir);
  return true;
}

function mergedText(intent: CompactionIntent): string {
  return intent.mergedBases.length > 0 ? ` (merged with ${intent.mergedBases.join(', ')})` : '';
}
