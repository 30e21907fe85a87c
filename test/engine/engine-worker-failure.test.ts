import { afterEach, describe, expect, it } from 'vitest';
import type { Receipt } from '../../src/engine/delivery.js';
import { EngineError } from '../../src/engine/errors.js';
import type { Logger } from '../../src/observability/logger.js';
import { DeliveryRecorder, positionOf, waitFor } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, sleep } from '../helpers/engine-harness.js';

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

const CANDIDATE_TYPES = ['orders/created', 'orders/paid', 'users/signup', 'stock/moved', 'users/left', 'stock/counted', 'orders/shipped'];

/** Collects what the engine logs, to explain a failure. */
function recordingLogger(lines: string[]): Logger {
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: (msg, fields) => lines.push(`warn ${msg} ${JSON.stringify(fields ?? {})}`),
    error: (msg, fields) => lines.push(`error ${msg} ${JSON.stringify(fields ?? {}, (_, v) => (v instanceof Error ? v.message : v))}`),
    child: () => logger,
  };
  return logger;
}

interface Attempted {
  id: string;
  type: string;
  startedAt: number;
  confirmedAt: number;
  receipt: Receipt;
}

describe('a shard worker dies', () => {
  it('fails in-flight publishes retryably, loses nothing confirmed, and serves the shard again after it reopens', async () => {
    const logLines: string[] = [];
    const engine = await harness.open({ workers: 2, shards: 4, logger: recordingLogger(logLines) });
    engine.registerClient({ id: 'producer' });
    engine.registerClient({ id: 'reader' });
    const busyType = CANDIDATE_TYPES[0]!;
    const busyShard = engine.shardOf(busyType);
    const victim = engine.shardPool.ownerOf(busyShard);
    expect(victim, 'the busy shard has an owner').toBeDefined();
    // A type whose shard lives on the other worker: it must not notice the death.
    const calmType = CANDIDATE_TYPES.find((t) => engine.shardPool.ownerOf(engine.shardOf(t)) !== victim);
    expect(calmType, 'some candidate type lives on the surviving worker').toBeDefined();

    const reader = new DeliveryRecorder();
    await engine.subscribe('reader', { name: 'everything', pattern: '**' }, reader.handler);

    const rejections: EngineError[] = [];
    const calmRejections: EngineError[] = [];
    const confirmed: Attempted[] = [];
    let killedAt = Number.POSITIVE_INFINITY;

    /** What made a publish lane stop: anything but a retryable SHARD_UNAVAILABLE, or retrying for too long. */
    const laneFailures: string[] = [];
    let stop = false;
    const RETRY_FOR_MS = 8_000;
    /** Publish until confirmed, retrying a retryable failure with the same id. */
    async function publishWithRetry(id: string, type: string): Promise<void> {
      const startedAt = Date.now();
      while (!stop) {
        try {
          const receipt = await engine.publish('producer', { type, id, payload: bytes(id) });
          confirmed.push({ id, type, startedAt, confirmedAt: Date.now(), receipt });
          return;
        } catch (error) {
          if (!(error instanceof EngineError) || error.code !== 'SHARD_UNAVAILABLE' || !error.retryable) {
            laneFailures.push(`${id}: ${String(error)}`);
            return;
          }
          (type === calmType ? calmRejections : rejections).push(error);
          if (Date.now() - startedAt > RETRY_FOR_MS) {
            laneFailures.push(`${id}: still ${error.message} after ${RETRY_FOR_MS} ms of retries`);
            return;
          }
          await sleep(10);
        }
      }
    }

    // A steady stream: WINDOW publishes in flight at all times, three of four to the busy shard.
    const WINDOW = 40;
    let next = 0;
    const lanes = Array.from({ length: WINDOW }, async () => {
      while (!stop && laneFailures.length === 0) {
        const n = next++;
        await publishWithRetry(`evt-${n}`, n % 4 === 3 ? calmType! : busyType);
      }
    });
    const failed = () => laneFailures.length > 0;
    const explain = () => `lane failures: ${laneFailures.slice(0, 3).join('; ')}; engine log: ${logLines.join(' | ')}`;

    try {
      await waitFor(() => failed() || confirmed.length >= 600, 15_000, () => `600 publishes confirmed before the kill (have ${confirmed.length})`);
      expect(laneFailures, 'before the kill').toEqual([]);
      const thread = engine.shardPool.threads.find((t) => t.threadId === victim)!;
      killedAt = Date.now();
      await thread.terminate();
      await waitFor(
        () => failed() || confirmed.filter((c) => c.type === busyType && c.startedAt > killedAt && !c.receipt.duplicate).length >= 300,
        RETRY_FOR_MS + 2_000,
        () => `300 new publishes to the busy shard confirmed after the kill; ${explain()}`,
      );
    } finally {
      stop = true;
      await Promise.all(lanes);
    }
    expect(laneFailures, explain()).toEqual([]);

    expect(rejections.length, 'publishes in flight when the worker died were rejected').toBeGreaterThan(0);
    for (const error of rejections) {
      expect(error.code).toBe('SHARD_UNAVAILABLE');
      expect(error.retryable).toBe(true);
    }
    expect(calmRejections, 'the shard on the surviving worker was not disturbed').toEqual([]);
    expect(engine.shardPool.ownerOf(busyShard)).not.toBe(victim);

    // Each id has one place in the log, whatever the retries did.
    const byId = new Map(confirmed.map((c) => [c.id, c]));
    expect(byId.size, 'every publish confirmed once').toBe(confirmed.length);
    const positions = new Set(confirmed.map((c) => positionOf(c.receipt)));
    expect(positions.size, 'no two ids share an offset').toBe(confirmed.length);
    // Confirmed before the kill: a publish that started before it but was retried after the reopen
    // is stored by the new worker, possibly after publishes that started later.
    const beforeKill = confirmed.filter((c) => c.type === busyType && c.confirmedAt < killedAt && !c.receipt.duplicate);
    const afterKill = confirmed.filter((c) => c.type === busyType && c.startedAt > killedAt && !c.receipt.duplicate);
    const lastBefore = Math.max(...beforeKill.map((c) => c.receipt.offset));
    expect(afterKill.every((c) => c.receipt.offset > lastBefore), 'new publishes are appended after the recovered log').toBe(true);

    // Nothing confirmed is lost: every confirmed event reaches the consumer, at the offset it was confirmed at.
    await reader.waitForIds(byId.keys(), 20_000).catch((error: Error) => {
      throw new Error(`${error.message}; log: ${logLines.join(' | ')}`);
    });
    for (const delivery of reader.deliveries) {
      const source = byId.get(delivery.event.id);
      expect(source, `delivered event ${delivery.event.id} was confirmed`).toBeDefined();
      expect(positionOf(delivery), `${delivery.event.id} is delivered from where it was confirmed`).toBe(positionOf(source!.receipt));
    }
  });
});
