import type { Log } from '../../native-free-storage/index.js';
import type { AppendOutcome, AppendRecordInput } from './log-types.js';
import { ExpectedLog } from './expected-log.js';

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
