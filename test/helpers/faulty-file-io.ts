import { defaultFileIO } from '../../native-free-storage/index.js';
import type { FileIOImpl } from './log-types.js';

/** An errno-style error like the ones fs raises (code 'ENOSPC', 'EIO', ...). */
export function errnoError(code: string, syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected fault, ${syscall}`), { code, syscall });
}

/**
 * The real file IO with faults that can be armed at a chosen moment. Each armed fault fires
 * once, on the next call of its kind, and then the real IO is used again. Counts calls so
 * tests can see how many fsyncs group commit actually issued.
 */
export class FaultyFileIO implements FileIOImpl {
  writeCalls = 0;
  fsyncCalls = 0;
  writeFaultsFired = 0;
  fsyncFaultsFired = 0;
  private writeFault: { code: string; partial: boolean } | null = null;
  private fsyncFault: { code: string } | null = null;

  /** The next writeSync throws `code`; with `partial` it first writes half of the data (a short write). */
  failNextWrite(code: string, partial = false): void {
    this.writeFault = { code, partial };
  }

  failNextFsync(code: string): void {
    this.fsyncFault = { code };
  }

  // Arrow properties: the log may call these detached from the object.
  readonly writeSync = (fd: number, data: Uint8Array, position: number): number => {
    this.writeCalls++;
    const fault = this.writeFault;
    if (fault) {
      this.writeFault = null;
      this.writeFaultsFired++;
      if (fault.partial && data.length > 1) {
        defaultFileIO.writeSync(fd, data.subarray(0, data.length >> 1), position);
      }
      throw errnoError(fault.code, 'write');
    }
    return defaultFileIO.writeSync(fd, data, position);
  };

  readonly fsync = async (fd: number): Promise<void> => {
    this.fsyncCalls++;
    const fault = this.fsyncFault;
    if (fault) {
      this.fsyncFault = null;
      this.fsyncFaultsFired++;
      throw errnoError(fault.code, 'fsync');
    }
    return defaultFileIO.fsync(fd);
  };
}
