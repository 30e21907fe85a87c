import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { EngineError } from '../../src/engine/errors.js';
import { EngineHarness } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
let child: ChildProcess | null = null;
afterEach(async () => {
  child?.kill('SIGKILL');
  child = null;
  await harness.cleanup();
});

describe('one engine per data directory', () => {
  it('refuses a second engine on the same directory in this process, and allows it after close', async () => {
    const dataDir = await harness.dataDir();
    const first = await harness.open({ dataDir });
    const refused = await Engine.open({ dataDir, workers: 1 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(EngineError);
    expect((refused as EngineError).code).toBe('INVALID_ARGUMENT');
    await harness.close(first);
    const again = await harness.open({ dataDir });
    expect(again.shardRecovery).toHaveLength(4);
  });

  it('refuses a directory another process has open, with a storage error naming the lock', async () => {
    const dataDir = await harness.dataDir();
    child = fork(new URL('../fixtures/engine-holder.mjs', import.meta.url), [dataDir], { stdio: 'ignore' });
    const [ready] = await once(child, 'message');
    expect(ready).toBe('open');
    const refused = await Engine.open({ dataDir, workers: 1 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(EngineError);
    expect((refused as EngineError).code).toBe('STORAGE_FAILED');
    expect((refused as EngineError).message).toContain(`process ${child.pid}`);
    child.send('close');
    await once(child, 'exit');
    child = null;
    const engine = await harness.open({ dataDir });
    expect(engine.shardRecovery.every((shard) => shard.recovery.clean)).toBe(true);
  });
});
