import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EngineError } from '../engine/errors.js';
import { ADMIN_TOKEN_BYTES, readDevCredentials } from './dev-credentials.js';
import { writePrivateFileAtomic } from './private-file.js';

/** Where the token lives when there is no development client to keep it with. */
export const ADMIN_TOKEN_FILE = 'admin-token';

export interface AdminTokenSource {
  token: string;
  /** 'config' (flag or env var), the dev credentials file, or the admin-token file (created now or before). */
  from: 'config' | 'dev-credentials' | 'admin-token-file';
  file?: string;
  created: boolean;
}

/**
 * The management interface's bearer token: the configured one; else the `adminToken` kept with
 * the development client in dev-credentials.json; else one created now in `<data-dir>/admin-token`
 * (mode 0600), so a fresh engine is never left with an unauthenticated management interface.
 */
export function resolveAdminToken(dataDir: string, configured: string | undefined): AdminTokenSource {
  if (configured !== undefined) {
    if (configured.length < 16) throw new EngineError('INVALID_ARGUMENT', 'the admin token must be at least 16 characters', { field: 'adminToken' });
    return { token: configured, from: 'config', created: false };
  }
  const dev = readDevCredentials(dataDir);
  if (dev) return { token: dev.adminToken, from: 'dev-credentials', file: path.join(dataDir, 'dev-credentials.json'), created: false };
  const file = path.join(dataDir, ADMIN_TOKEN_FILE);
  try {
    const token = fs.readFileSync(file, 'utf8').trim();
    if (token.length >= 16) return { token, from: 'admin-token-file', file, created: false };
  } catch (error) {
    if ((error as { code?: string }).code !== 'ENOENT') throw new EngineError('STORAGE_FAILED', `could not read ${file}`, { cause: error });
  }
  const token = crypto.randomBytes(ADMIN_TOKEN_BYTES).toString('base64url');
  writePrivateFileAtomic(file, `${token}\n`);
  return { token, from: 'admin-token-file', file, created: true };
}
