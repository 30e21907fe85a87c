/**
 * Atomic replacement of a small owner-only file (mode 0600). Like native-free-storage's
 * writeFileAtomic (temp file, fsync, rename, fsync the directory), but the temp file is created
 * 0600 from the start, so a secret is never readable by others, not even for a moment, and the
 * temp name is unique, so two processes writing the same file cannot interleave into one temp.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDirectory } from '../../native-free-storage/file-io.js';
import { EngineError } from '../engine/errors.js';

export const PRIVATE_FILE_MODE = 0o600;

export function writePrivateFileAtomic(file: string, text: string): void {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(temp, 'wx', PRIVATE_FILE_MODE);
    try {
      // The umask may have narrowed the mode further; set it exactly.
      fs.fchmodSync(fd, PRIVATE_FILE_MODE);
      fs.writeFileSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
    fsyncDirectory(path.dirname(file));
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw new EngineError('STORAGE_FAILED', `could not write ${file}: ${describeError(error)}`, { cause: error });
  }
}

/** An error's message, led by its errno code (ENOSPC, EACCES…) when the message lacks it. */
export function describeError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const errno = typeof code === 'string' && /^E[A-Z0-9]+$/.test(code);
  return errno && !message.includes(code) ? `${code}: ${message}` : message;
}
