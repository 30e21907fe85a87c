import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EngineError } from '../../src/engine/errors.js';
import { ClientRegistry } from '../../src/engine/client-registry.js';
import { clientIdentityOf, validateClientRecord } from '../../src/registry/client-record.js';
import { CLIENTS_FILE, ClientStore } from '../../src/registry/client-store.js';
import { TempDirs } from '../helpers/temp-dirs.js';
import { newPublicKey, recordFor, waitUntil } from './registry-fixtures.js';

const temps = new TempDirs();
const stops: Array<() => void> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await temps.cleanup();
});

function caught(fn: () => unknown): EngineError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(EngineError);
    return error as EngineError;
  }
  throw new Error('expected an EngineError');
}

describe('ClientStore', () => {
  it('opens a missing file as an empty registry without creating anything', async () => {
    const dir = path.join(await temps.make('ensync-registry-'), 'data');
    const store = ClientStore.open(dir);
    expect(store.list()).toEqual([]);
    expect(store.get('a')).toBeUndefined();
    expect(store.file).toBe(path.join(dir, CLIENTS_FILE));
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('stores records durably: another instance reads them, the file is {v:1,clients}, mode 0600, no temp left', async () => {
    const dir = path.join(await temps.make('ensync-registry-'), 'data');
    const store = ClientStore.open(dir);
    const a = recordFor('billing');
    const b = recordFor('shipping@eu', { publish: [], subscribe: ['orders/*', 'payments/**'], requireSignatures: true });
    expect(store.add(a)).toEqual(a);
    store.add(b);
    expect(store.list()).toEqual([a, b]);
    expect(store.get('shipping@eu')).toEqual(b);

    const again = ClientStore.open(dir);
    expect(again.list()).toEqual([a, b]);
    const onDisk = JSON.parse(fs.readFileSync(path.join(dir, CLIENTS_FILE), 'utf8')) as unknown;
    expect(onDisk).toEqual({ v: 1, clients: [a, b] });
    expect(fs.statSync(path.join(dir, CLIENTS_FILE)).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual([CLIENTS_FILE]);
  });

  it('returns copies: changing a returned record does not change the store', async () => {
    const store = ClientStore.open(await temps.make('ensync-registry-'));
    store.add(recordFor('a'));
    store.get('a')!.publish.push('**');
    store.list()[0]!.subscribe.push('**');
    expect(store.get('a')).toMatchObject({ publish: ['orders/*'], subscribe: ['orders/**'] });
  });

  it('refuses a duplicate id unless replace is set', async () => {
    const dir = await temps.make('ensync-registry-');
    const store = ClientStore.open(dir);
    const first = recordFor('billing');
    store.add(first);
    const error = caught(() => store.add(recordFor('billing')));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('id');
    expect(error.message).toContain('client "billing" already exists');
    expect(ClientStore.open(dir).get('billing')).toEqual(first);

    const rotated = recordFor('billing', { publicKey: newPublicKey() });
    store.add(rotated, { replace: true });
    expect(ClientStore.open(dir).list()).toEqual([rotated]);
  });

  it('removes a client, and NOT_FOUND for an unknown one', async () => {
    const dir = await temps.make('ensync-registry-');
    const store = ClientStore.open(dir);
    store.add(recordFor('a'));
    store.add(recordFor('b'));
    store.remove('a');
    expect(ClientStore.open(dir).list().map((c) => c.id)).toEqual(['b']);
    const error = caught(() => store.remove('a'));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toContain('"a"');
  });

  it('rejects invalid records with the offending field named, and stores nothing', async () => {
    const dir = await temps.make('ensync-registry-');
    const store = ClientStore.open(dir);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ id: 'has space' }, 'id'],
      [{ id: 'x'.repeat(129) }, 'id'],
      [{ publicKey: Buffer.alloc(16).toString('base64') }, 'publicKey'],
      [{ publicKey: Buffer.alloc(33).toString('base64') }, 'publicKey'],
      [{ publicKey: 'not base64!' + newPublicKey() }, 'publicKey'],
      [{ publish: ['orders/*x'] }, 'publish'],
      [{ subscribe: ['**/orders'] }, 'subscribe'],
      [{ subscribe: 'orders/*' }, 'subscribe'],
      [{ requireSignatures: 'yes' }, 'requireSignatures'],
      [{ addedAt: -1 }, 'addedAt'],
      [{ extra: 1 }, 'extra'],
    ];
    for (const [override, field] of cases) {
      const error = caught(() => store.add({ ...recordFor('ok'), ...override } as never));
      expect(error.code, JSON.stringify(override)).toBe('INVALID_ARGUMENT');
      expect(error.field, JSON.stringify(override)).toBe(field);
    }
    expect(fs.existsSync(path.join(dir, CLIENTS_FILE))).toBe(false);
  });

  it('drops duplicate patterns and gives the engine registry an identity it accepts', () => {
    const record = validateClientRecord(recordFor('a', { publish: ['x/*', 'x/*', 'y'], requireSignatures: true }));
    expect(record.publish).toEqual(['x/*', 'y']);
    const identity = clientIdentityOf(record);
    expect(Buffer.from(identity.publicKey!).toString('base64')).toBe(record.publicKey);
    const registry = new ClientRegistry();
    registry.register(identity);
    expect(registry.get('a')).toMatchObject({ id: 'a', requireSignatures: true });
  });

  it('reports a corrupt file as STORAGE_FAILED naming the file, never as an empty registry', async () => {
    const dir = await temps.make('ensync-registry-');
    const file = path.join(dir, CLIENTS_FILE);
    const valid = recordFor('a');
    const cases: Array<[string, string]> = [
      ['{"v":1,"clients":[', 'not valid JSON'],
      ['[]', 'expected an object'],
      [JSON.stringify({ v: 2, clients: [] }), 'format version 2'],
      [JSON.stringify({ v: 1 }), '"clients" is not an array'],
      [JSON.stringify({ v: 1, clients: [{ ...valid, publicKey: 'AAAA' }] }), 'client #1: publicKey must decode to 32 bytes'],
      [JSON.stringify({ v: 1, clients: [valid, valid] }), 'appears twice'],
    ];
    for (const [text, reason] of cases) {
      fs.writeFileSync(file, text);
      const error = caught(() => ClientStore.open(dir));
      expect(error.code).toBe('STORAGE_FAILED');
      expect(error.message).toContain(file);
      expect(error.message).toContain(reason);
    }
  });

  it('will not overwrite a file that became corrupt, and keeps the last good clients', async () => {
    const dir = await temps.make('ensync-registry-');
    const file = path.join(dir, CLIENTS_FILE);
    const store = ClientStore.open(dir);
    store.add(recordFor('a'));
    fs.writeFileSync(file, 'garbage');
    expect(caught(() => store.add(recordFor('b'))).code).toBe('STORAGE_FAILED');
    expect(caught(() => store.reload()).code).toBe('STORAGE_FAILED');
    expect(fs.readFileSync(file, 'utf8')).toBe('garbage');
    expect(store.list().map((c) => c.id)).toEqual(['a']);
  });

  it('reload() re-reads only a changed file and says whether the clients changed', async () => {
    const dir = await temps.make('ensync-registry-');
    const reader = ClientStore.open(dir);
    const writer = ClientStore.open(dir);
    expect(reader.reload()).toBe(false);
    const a = recordFor('a');
    writer.add(a);
    expect(reader.reload()).toBe(true);
    expect(reader.list()).toEqual([a]);
    expect(reader.reload()).toBe(false);
    writer.add(a, { replace: true }); // the file is replaced, but with the same clients
    expect(reader.reload()).toBe(false);
    fs.rmSync(path.join(dir, CLIENTS_FILE));
    expect(reader.reload()).toBe(true);
    expect(reader.list()).toEqual([]);
  });

  it('keeps changes another instance made when adding from a stale instance', async () => {
    const dir = await temps.make('ensync-registry-');
    const first = ClientStore.open(dir);
    const second = ClientStore.open(dir);
    first.add(recordFor('a'));
    second.add(recordFor('b'));
    expect(ClientStore.open(dir).list().map((c) => c.id)).toEqual(['a', 'b']);
    expect(caught(() => second.add(recordFor('a'))).message).toContain('already exists');
  });

  it('watch() sees a change made by another instance within a second, and stops when asked', async () => {
    const dir = await temps.make('ensync-registry-');
    const watched = ClientStore.open(dir);
    let changes = 0;
    const stop = watched.watch(() => changes++);
    stops.push(stop);

    ClientStore.open(dir).add(recordFor('a'));
    const took = await waitUntil(() => changes === 1, 2_000);
    expect(took).toBeLessThan(1_000);
    expect(watched.get('a')).toBeDefined();

    stop();
    ClientStore.open(dir).remove('a');
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(changes).toBe(1);
    expect(watched.get('a')).toBeDefined();
  });

  it('watch() reports a corrupt file once, keeps the last good clients, and recovers when it is fixed', async () => {
    const dir = await temps.make('ensync-registry-');
    const file = path.join(dir, CLIENTS_FILE);
    const watched = ClientStore.open(dir);
    watched.add(recordFor('a'));
    const errors: EngineError[] = [];
    let changes = 0;
    stops.push(watched.watch(() => changes++, 20, (error) => errors.push(error)));

    fs.writeFileSync(file, '{"v":1,');
    await waitUntil(() => errors.length === 1, 2_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('STORAGE_FAILED');
    expect(errors[0]!.message).toContain(file);
    expect(watched.list().map((c) => c.id)).toEqual(['a']);

    const b = recordFor('b');
    fs.writeFileSync(file, JSON.stringify({ v: 1, clients: [b] }));
    await waitUntil(() => changes === 1, 2_000);
    expect(watched.list()).toEqual([b]);
  });

  it('rejects a watch interval that is not a positive integer', async () => {
    const store = ClientStore.open(await temps.make('ensync-registry-'));
    expect(caught(() => store.watch(() => {}, 0)).field).toBe('intervalMs');
  });
});
