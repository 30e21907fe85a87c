import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import { publicKeyFromRaw, signEvent, verifyEventSignature } from '../../src/engine/signing.js';
import { ClientPermissions } from '../../src/registry/client-permissions.js';
import { ClientStore } from '../../src/registry/client-store.js';
import { DEV_CREDENTIALS_FILE, ensureDevClient, readDevCredentials } from '../../src/registry/dev-credentials.js';
import { TempDirs } from '../helpers/temp-dirs.js';
import { recordFor } from './registry-fixtures.js';

const temps = new TempDirs();
afterEach(() => temps.cleanup());

const event = { type: 'orders/created', id: 'e1', key: null, headers: undefined, payload: new Uint8Array([1, 2, 3]) };

function storageFailed(fn: () => unknown): EngineError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).code).toBe('STORAGE_FAILED');
    return error as EngineError;
  }
  throw new Error('expected STORAGE_FAILED');
}

describe('ensureDevClient', () => {
  it('adds a dev client allowed everything and writes its working credentials, mode 0600', async () => {
    const dir = path.join(await temps.make('ensync-dev-'), 'data');
    const store = ClientStore.open(dir);
    const result = ensureDevClient(dir, store, 42);
    expect(result).toEqual({ created: true, file: path.join(dir, DEV_CREDENTIALS_FILE) });
    expect(fs.statSync(result.file).mode & 0o777).toBe(0o600);

    const credentials = readDevCredentials(dir)!;
    expect(Object.keys(credentials).sort()).toEqual(['adminToken', 'clientId', 'publicKey', 'secretKey']);
    expect(credentials.clientId).toBe('dev');
    expect(Buffer.from(credentials.adminToken, 'base64url')).toHaveLength(32);
    expect(Buffer.from(credentials.secretKey, 'base64')).toHaveLength(32);

    const record = ClientStore.open(dir).get('dev')!;
    expect(record).toEqual({
      id: 'dev',
      publicKey: credentials.publicKey,
      publish: ['**'],
      subscribe: ['**'],
      requireSignatures: false,
      addedAt: 42,
    });
    const permissions = new ClientPermissions(record);
    expect(permissions.canPublish('any/type/at/all')).toBe(true);
    expect(permissions.canSubscribe('**')).toBe(true);

    const signature = signEvent(Buffer.from(credentials.secretKey, 'base64'), event);
    expect(verifyEventSignature(publicKeyFromRaw(Buffer.from(record.publicKey, 'base64')), event, signature)).toBe(true);
  });

  it('does nothing when the registry already has clients', async () => {
    const dir = await temps.make('ensync-dev-');
    const store = ClientStore.open(dir);
    store.add(recordFor('billing'));
    expect(ensureDevClient(dir, store)).toEqual({ created: false, file: path.join(dir, DEV_CREDENTIALS_FILE) });
    expect(readDevCredentials(dir)).toBeNull();
    expect(store.list().map((c) => c.id)).toEqual(['billing']);
  });

  it('is idempotent, and a re-created dev client gets a new key but keeps the admin token', async () => {
    const dir = await temps.make('ensync-dev-');
    const store = ClientStore.open(dir);
    ensureDevClient(dir, store);
    const first = readDevCredentials(dir)!;
    expect(ensureDevClient(dir, ClientStore.open(dir)).created).toBe(false);
    expect(readDevCredentials(dir)).toEqual(first);

    ClientStore.open(dir).remove('dev');
    // `store` has not seen the removal yet: ensureDevClient must look at the file.
    expect(ensureDevClient(dir, store).created).toBe(true);
    const second = readDevCredentials(dir)!;
    expect(second.adminToken).toBe(first.adminToken);
    expect(second.publicKey).not.toBe(first.publicKey);
    expect(ClientStore.open(dir).get('dev')!.publicKey).toBe(second.publicKey);
  });
});

describe('readDevCredentials', () => {
  it('returns null when there is no file', async () => {
    expect(readDevCredentials(await temps.make('ensync-dev-'))).toBeNull();
  });

  it('reports a malformed file as STORAGE_FAILED naming the file', async () => {
    const dir = await temps.make('ensync-dev-');
    ensureDevClient(dir, ClientStore.open(dir));
    const file = path.join(dir, DEV_CREDENTIALS_FILE);
    const good = readDevCredentials(dir)!;
    const other = ClientStore.open(await temps.make('ensync-dev-other-'));
    const otherDir = path.dirname(other.file);
    ensureDevClient(otherDir, other);
    const foreign = readDevCredentials(otherDir)!;

    const cases: Array<[string, string]> = [
      ['{"clientId":', 'JSON'],
      [JSON.stringify({ ...good, clientId: 'no spaces allowed' }), 'client id'],
      [JSON.stringify({ ...good, publicKey: 'AAAA' }), 'publicKey'],
      [JSON.stringify({ ...good, secretKey: 'AAAA' }), 'secretKey must be'],
      [JSON.stringify({ ...good, secretKey: foreign.secretKey }), 'secretKey does not belong to publicKey'],
      [JSON.stringify({ ...good, adminToken: '' }), 'adminToken'],
    ];
    for (const [text, reason] of cases) {
      fs.writeFileSync(file, text);
      const error = storageFailed(() => readDevCredentials(dir));
      expect(error.message).toContain(file);
      expect(error.message).toContain(reason);
    }
    // A corrupt file is not replaced (its admin token may be in use): ensureDevClient fails instead.
    ClientStore.open(dir).remove('dev');
    storageFailed(() => ensureDevClient(dir, ClientStore.open(dir)));
    expect(ClientStore.open(dir).list()).toEqual([]);
  });
});
