import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Log, StorageError } from '../../native-free-storage/index.js';

const holder = new URL('../fixtures/lock-holder.mjs', import.meta.url);

describe('one writer per log directory', () => {
  let dir = '';
  let child: ChildProcess | null = null;
  afterEach(() => {
    child?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a second process, and takes over the lock of one that died', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ensync-lock-'));
    child = fork(holder, [dir], { stdio: 'ignore' });
    const [ready] = await once(child, 'message');
    expect(ready).toBe('open');

    const refused = await Log.open(dir).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(StorageError);
    expect((refused as StorageError).code).toBe('LOG_LOCKED');
    expect((refused as StorageError).message).toContain(String(child.pid));

    child.kill('SIGKILL');
    await once(child, 'exit');
    const log = await Log.open(dir);
    expect(log.nextOffset).toBe(1);
    await log.close();
    expect(fs.existsSync(path.join(dir, '.lock'))).toBe(false);
  });
});
