import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { CHECKPOINT_FILE } from './file-names.js';
import { writeFileAtomic, writeFileAtomicAsync } from './file-io.js';

/**
 * The recovery checkpoint of a log: the last position known durable, so that recovery after a crash
 * scans only the records written after it. After a clean close it also says so (`clean`), and opening
 * then scans nothing at all.
 *
 * Format: one line of JSON, `{"v":1,...,"crc":N}`, where crc is the CRC32 of the JSON text written
 * without the crc field. It is replaced atomically (write temp, fsync, rename, fsync directory), so a
 * crash leaves either the old or the new checkpoint; a checkpoint failing its CRC is ignored and the
 * whole log is scanned.
 */
export interface Checkpoint {
  /** True only when written by a clean close: the files were complete and indexes written through. */
  clean: boolean;
  /** Base offset of the segment holding the durable end. */
  segmentBaseOffset: number;
  /** Bytes of that segment known durable. */
  position: number;
  /** Offset after the last durable record. */
  nextOffset: number;
  /** Timestamps of that segment's first and last durable records (-1 when it has none). */
  firstTimestamp: number;
  lastTimestamp: number;
  /** Byte position of that segment's last durable record (-1 when it has none). */
  lastRecordPosition: number;
}

const CHECKPOINT_VERSION = 1;

function serialize(checkpoint: Checkpoint): string {
  const body = JSON.stringify({ v: CHECKPOINT_VERSION, ...checkpoint });
  const crc = zlib.crc32(body);
  return `${body.slice(0, -1)},"crc":${crc}}\n`;
}

export function readCheckpoint(dir: string): Checkpoint | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dir, CHECKPOINT_FILE), 'utf8').trim();
  } catch {
    return null;
  }
  const match = /^(.*),"crc":(\d+)\}$/.exec(text);
  if (!match) return null;
  const body = `${match[1]}}`;
  if (zlib.crc32(body) !== Number(match[2])) return null;
  try {
    const parsed = JSON.parse(body) as Checkpoint & { v: number };
    if (parsed.v !== CHECKPOINT_VERSION) return null;
    const { v: _version, ...checkpoint } = parsed;
    return checkpoint;
  } catch {
    return null;
  }
}

export function writeCheckpoint(dir: string, checkpoint: Checkpoint): void {
  writeFileAtomic(path.join(dir, CHECKPOINT_FILE), serialize(checkpoint));
}

export function writeCheckpointAsync(dir: string, checkpoint: Checkpoint): Promise<void> {
  return writeFileAtomicAsync(path.join(dir, CHECKPOINT_FILE), serialize(checkpoint));
}
