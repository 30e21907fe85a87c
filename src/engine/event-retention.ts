import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../native-free-storage/index.js';
import { EngineError } from './errors.js';

/**
 * How long each shard keeps its events: by age (ms, by the newest record of a segment) and by size
 * (bytes per shard). null keeps everything. Whole oldest segments go; subscriptions that had not
 * read them skip ahead, and lookups of those events answer NOT_FOUND.
 */
export interface EventRetention {
  retentionMs: number | null;
  retentionBytes: number | null;
}

const FILE = 'retention.json';

export function validateRetention(input: unknown): EventRetention {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new EngineError('INVALID_ARGUMENT', 'retention must be an object { retentionMs, retentionBytes }', { field: 'retention' });
  }
  const source = input as Record<string, unknown>;
  for (const key of Object.keys(source)) {
    if (key !== 'retentionMs' && key !== 'retentionBytes') throw new EngineError('INVALID_ARGUMENT', `unknown retention setting ${JSON.stringify(key)}`, { field: key });
  }
  const value = (field: 'retentionMs' | 'retentionBytes'): number | null => {
    const v = source[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
      throw new EngineError('INVALID_ARGUMENT', `${field} must be a positive integer or null, got ${JSON.stringify(v)}`, { field });
    }
    return v;
  };
  return { retentionMs: value('retentionMs'), retentionBytes: value('retentionBytes') };
}

/** The retention last set on this data directory (it outlives restarts), else `fallback`. */
export function loadRetention(dataDir: string, fallback: EventRetention): EventRetention {
  const file = path.join(dataDir, FILE);
  if (!fs.existsSync(file)) return fallback;
  try {
    return validateRetention(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch (error) {
    throw new EngineError('STORAGE_FAILED', `${file} is unreadable: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

export function saveRetention(dataDir: string, retention: EventRetention): void {
  writeFileAtomic(path.join(dataDir, FILE), JSON.stringify(retention));
}
