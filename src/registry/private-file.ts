/** Owner-only files of the registry (clients, credentials, admin token), written atomically. */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../native-free-storage/file-io.js';
import { EngineError } from '../engine/errors.js';

export const PRIVATE_FILE_MODE = 0o600;

/**
 * Atomically replace an owner-only file (mode 0600 from the start, so a secret is never readable by
 * others, not even for a moment) that the CLI and the running engine may both write.
 */
export function writePrivateFileAtomic(file: string, text: string): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeFileAtomic(file, text, { mode: PRIVATE_FILE_MODE, uniqueTemp: true });
  } catch (error) {
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
