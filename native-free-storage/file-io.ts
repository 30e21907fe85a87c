import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The writes and fsyncs of log data go through this interface so that tests can inject the faults a
 * real disk produces (ENOSPC, EIO) without native code or a special filesystem.
 */
export interface FileIO {
  /** Positional write; returns the number of bytes written (may be short, like pwrite(2)). */
  writeSync(fd: number, data: Uint8Array, position: number): number;
  /** Flush the file's data and metadata to stable storage. */
  fsync(fd: number): Promise<void>;
}

export const defaultFileIO: FileIO = {
  writeSync(fd, data, position) {
    return fs.writeSync(fd, data, 0, data.length, position);
  },
  fsync(fd) {
    return new Promise((resolve, reject) => {
      fs.fsync(fd, (error) => (error ? reject(error) : resolve()));
    });
  },
};

/** Write all of `data` at `position`, looping over short writes. */
export function writeFully(io: FileIO, fd: number, data: Uint8Array, position: number): void {
  let done = 0;
  while (done < data.length) {
    const written = io.writeSync(fd, data.subarray(done), position + done);
    if (written <= 0) throw Object.assign(new Error(`short write of ${data.length - done} bytes`), { code: 'EIO' });
    done += written;
  }
}

/**
 * Read exactly `length` bytes at `position` (fewer only at end of file), into a new buffer or into
 * the start of `into` when it is large enough.
 */
export function readAt(fd: number, position: number, length: number, into?: Buffer): Buffer {
  const buffer = into !== undefined && into.length >= length ? into : Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done === buffer.length ? buffer : buffer.subarray(0, done);
}

/** fsync a directory so that file creations, renames and deletions in it survive a crash. */
export function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** `fsyncDirectory` without blocking the calling thread. */
export async function fsyncDirectoryAsync(dir: string): Promise<void> {
  const handle = await fs.promises.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** How `writeFileAtomic` creates the file. */
export interface AtomicWriteOptions {
  /** File mode (default 0o644); set exactly, whatever the umask (0o600 keeps a secret owner-only). */
  mode?: number;
  /**
   * A temp name of its own per write (default: `<file>.tmp`): for files that two processes may
   * write at once (a CLI and the running engine), so their writes never share one temp file.
   */
  uniqueTemp?: boolean;
}

/**
 * Replace `file` with `data` so that a crash leaves the old content or the new, never a mix: write a
 * temp file beside it (created with its final mode, so the content is never more readable than
 * that), fsync it, rename it over, fsync the directory. A failed write removes its temp file.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const mode = options.mode ?? 0o644;
  const temp = options.uniqueTemp ? `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp` : `${file}.tmp`;
  try {
    const fd = fs.openSync(temp, options.uniqueTemp ? 'wx' : 'w', mode);
    try {
      fs.fchmodSync(fd, mode);
      fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
  fsyncDirectory(path.dirname(file));
}

/** `writeFileAtomic` off the calling thread's critical path (for periodic writes such as checkpoints). */
export async function writeFileAtomicAsync(file: string, data: string | Uint8Array): Promise<void> {
  const temp = `${file}.tmp`;
  const handle = await fs.promises.open(temp, 'w', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(temp, file);
  const dir = await fs.promises.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
