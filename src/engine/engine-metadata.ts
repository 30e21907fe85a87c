import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../native-free-storage/index.js';
import { EngineError } from './errors.js';

/**
 * What must not change over the life of a data directory: the number of shards event types are
 * hashed over (changing it would move types away from their history). Written once, atomically.
 */
export interface EngineMetadata {
  version: 1;
  shards: number;
}

const FILE = 'engine.json';

export function loadOrCreateMetadata(dataDir: string, shards: number): EngineMetadata {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, FILE);
  if (fs.existsSync(file)) {
    const stored = JSON.parse(fs.readFileSync(file, 'utf8')) as EngineMetadata;
    if (stored.version !== 1 || !Number.isInteger(stored.shards) || stored.shards < 1) {
      throw new EngineError('INTERNAL', `${file} is not a valid engine metadata file`);
    }
    return stored;
  }
  if (!Number.isInteger(shards) || shards < 1 || shards > 1024) {
    throw new EngineError('INVALID_ARGUMENT', 'shards must be an integer from 1 to 1024', { field: 'shards' });
  }
  const metadata: EngineMetadata = { version: 1, shards };
  writeFileAtomic(file, JSON.stringify(metadata) + '\n');
  return metadata;
}
