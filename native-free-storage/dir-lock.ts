import fs from 'node:fs';
import path from 'node:path';
import { StorageError } from './errors.js';

export const LOCK_FILE = '.lock';

/**
 * One writer per log directory across processes: `<dir>/.lock` holds the owner's pid. A lock left
 * by a process that no longer runs (a crash) is taken over. Threads of one process share its pid,
 * so within a process the caller guarantees a single owner (the engine gives each shard to one
 * worker at a time, and a replacement worker takes over a dead one's logs).
 */
export function acquireDirLock(dir: string): () => void {
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o644);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return () => fs.rmSync(file, { force: true });
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw error;
    }
    const owner = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    if (Number.isInteger(owner) && owner !== process.pid && isRunning(owner)) {
      throw new StorageError('LOG_LOCKED', `log ${dir} is in use by process ${owner} (remove ${file} if that process is not an engine)`);
    }
    fs.rmSync(file, { force: true }); // stale: its process is gone, or it is ours
  }
  throw new StorageError('LOG_LOCKED', `could not lock log ${dir}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}
