import type { Log } from '../../native-free-storage/index.js';
import type { AppendOutcome, AppendRecordInput } from './log-types.js';
import { ExpectedLog } from './expected-log.js';
import type { Prng } from './prng.js';

/**
 * Appends `batches` keeping at most `window` appends in flight (a bounded pipeline, like a
 * real producer), and returns the model of what was confirmed. Awaiting each append one by
 * one would make every batch pay a full group-commit wait and the bulk tests would crawl.
 * Any rejection stops issuing new appends and is rethrown once the in-flight ones settled.
 */
export async function appendAll(
  log: Log,
  batches: readonly AppendRecordInput[][],
  window: number,
  model = new ExpectedLog(),
): Promise<ExpectedLog> {
  const inFlight = new Set<Promise<void>>();
  let firstError: unknown = null;
  for (const batch of batches) {
    if (firstError !== null) break;
    const pending: Promise<void> = log
      .append(batch)
      .then((result: AppendOutcome) => model.add(batch, result))
      .catch((error: unknown) => {
        firstError ??= error;
      })
      .finally(() => inFlight.delete(pending));
    inFlight.add(pending);
    if (inFlight.size >= window) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  if (firstError !== null) throw firstError;
  return model;
}

/**
 * Batches of 1 to `maxBatch` records, `count` in all, with random bodies (0 to 600 bytes),
 * attributes and streams (0 to 3), timestamps one ms apart from `start`.
 */
export function randomBatches(rng: Prng, count: number, maxBatch: number, start: number): AppendRecordInput[][] {
  const batches: AppendRecordInput[][] = [];
  for (let offset = 0; offset < count; ) {
    const size = Math.min(rng.int(1, maxBatch), count - offset);
    batches.push(
      Array.from({ length: size }, (_, i) => ({
        body: rng.bytes(rng.int(0, 600)),
        timestamp: start + offset + i,
        attributes: rng.int(0, 0xffff),
        stream: rng.int(0, 3),
      })),
    );
    offset += size;
  }
  return batches;
}
