import { fstatSync } from 'node:fs';
import { defaultFileIO } from '../../native-free-storage/index.js';
import type { FileIOImpl } from './log-types.js';

/**
 * The real file IO on a "slow disk": every fsync starts `delayMs` after it was requested, as when
 * the fsync waits in the thread pool behind other IO. It checks that the descriptor still names
 * the same file when the fsync actually runs: a log that closes (and so frees for reuse) a file
 * descriptor while an fsync of it is pending either gets EBADF or silently syncs another file.
 */
export class SlowFileIO implements FileIOImpl {
  fsyncCalls = 0;
  readonly mismatches: string[] = [];

  constructor(private readonly delayMs: number) {}

  readonly writeSync = (fd: number, data: Uint8Array, position: number): number =>
    defaultFileIO.writeSync(fd, data, position);

  readonly fsync = async (fd: number): Promise<void> => {
    this.fsyncCalls++;
    const requested = fstatSync(fd).ino;
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    let running: string;
    try {
      running = String(fstatSync(fd).ino);
    } catch (error) {
      running = (error as NodeJS.ErrnoException).code ?? String(error);
    }
    if (running !== String(requested)) this.mismatches.push(`fd ${fd}: fsync requested for inode ${requested} ran against ${running}`);
    return defaultFileIO.fsync(fd);
  };
}
