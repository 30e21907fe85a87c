import { afterEach, describe, expect, it } from 'vitest';
import { type Log, StorageError } from '../../native-free-storage/index.js';
import { ExpectedLog, expectSameRecords } from '../helpers/expected-log.js';
import { FaultyFileIO } from '../helpers/faulty-file-io.js';
import type { AppendOutcome, AppendRecordInput } from '../helpers/log-types.js';
import { OpenLogs } from '../helpers/open-logs.js';
import { Prng } from '../helpers/prng.js';
import { causeCode, expectStorageError } from '../helpers/storage-errors.js';
import { TempDirs } from '../helpers/temp-dirs.js';

const temps = new TempDirs();
const logs = new OpenLogs();
afterEach(async () => {
  await logs.closeAll();
  await temps.cleanup();
});

const TOTAL_APPENDS = 60;
const ARM_AT = 30;

type Outcome = { ok: true; result: AppendOutcome } | { ok: false; error: unknown };

/** Body = append index + record index (so any surviving record can be identified) + random filler. */
function makeBatch(rng: Prng, appendIndex: number, timestamp: number): AppendRecordInput[] {
  return Array.from({ length: rng.int(1, 5) }, (_, recordIndex) => {
    const body = Buffer.concat([Buffer.alloc(8), rng.bytes(rng.int(0, 400))]);
    body.writeUInt32BE(appendIndex, 0);
    body.writeUInt32BE(recordIndex, 4);
    return { body, timestamp, stream: appendIndex % 3 };
  });
}

/**
 * Issues TOTAL_APPENDS appends with at most `window` in flight and calls `arm` just before
 * issuing append ARM_AT. Returns every append's batch and how it settled.
 */
async function runStream(log: Log, window: number, arm: () => void): Promise<Array<{ batch: AppendRecordInput[]; outcome: Outcome }>> {
  const rng = new Prng(61);
  const t0 = Date.now();
  const settled: Array<{ batch: AppendRecordInput[]; outcome: Outcome }> = [];
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < TOTAL_APPENDS; i++) {
    if (i === ARM_AT) arm();
    const batch = makeBatch(rng, i, t0 + i);
    const entry: { batch: AppendRecordInput[]; outcome: Outcome } = { batch, outcome: { ok: false, error: null } };
    settled.push(entry);
    let promise: Promise<AppendOutcome>;
    try {
      promise = log.append(batch);
    } catch (error) {
      promise = Promise.reject(error);
    }
    const tracked: Promise<void> = promise.then(
      (result) => {
        entry.outcome = { ok: true, result };
      },
      (error: unknown) => {
        entry.outcome = { ok: false, error };
      },
    ).finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    if (inFlight.size >= window) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return settled;
}

interface Scenario {
  fault: 'write' | 'partial write' | 'fsync';
  errno: string;
  failCode: 'WRITE_FAILED' | 'FSYNC_FAILED';
}

const scenarios: Scenario[] = [
  { fault: 'write', errno: 'ENOSPC', failCode: 'WRITE_FAILED' },
  { fault: 'partial write', errno: 'ENOSPC', failCode: 'WRITE_FAILED' },
  { fault: 'fsync', errno: 'EIO', failCode: 'FSYNC_FAILED' },
];

const modes = [
  { fsync: 'always', window: 1 },
  { fsync: 'interval', window: 8 },
] as const;

describe.each(modes)('fault injection, fsync $fsync (window $window)', ({ fsync, window }) => {
  it.each(scenarios)('$fault error $errno fails the log without losing confirmed records', async (scenario) => {
    const dir = await temps.make('nfs-fault-');
    const io = new FaultyFileIO();
    // Long checkpoint interval: the armed fault must hit log data, not a background checkpoint.
    const options = { fsync, fsyncIntervalMs: 5, checkpointIntervalMs: 600_000 } as const;
    const log = await logs.open(dir, { ...options, io });

    const settled = await runStream(log, window, () => {
      if (scenario.fault === 'fsync') io.failNextFsync(scenario.errno);
      else io.failNextWrite(scenario.errno, scenario.fault === 'partial write');
    });
    expect(scenario.fault === 'fsync' ? io.fsyncFaultsFired : io.writeFaultsFired, 'the fault fired').toBe(1);

    // Outcomes: confirmed appends are an offset prefix; failures carry the right codes.
    const confirmed = new ExpectedLog();
    const failures: StorageError[] = [];
    settled.forEach(({ batch, outcome }, i) => {
      if (outcome.ok) {
        confirmed.add(batch, outcome.result);
        return;
      }
      expect(outcome.error, `append ${i} rejected with a StorageError`).toBeInstanceOf(StorageError);
      failures.push(outcome.error as StorageError);
    });
    const confirmedRecords = confirmed.records(0);
    for (const error of failures) expect([scenario.failCode, 'LOG_FAILED'], error.message).toContain(error.code);
    const primary = failures.filter((e) => e.code === scenario.failCode);
    expect(primary.length, `at least one append rejected with ${scenario.failCode}`).toBeGreaterThan(0);
    for (const error of primary) expect(causeCode(error), 'cause carries the original error code').toBe(scenario.errno);
    for (const error of failures.filter((e) => e.code === 'LOG_FAILED')) {
      expect(error.message, 'LOG_FAILED names the original cause').toContain(scenario.errno);
    }
    // Everything issued a full window before the fault was confirmed; the fault's own append was not.
    settled.slice(0, ARM_AT - window + 1).forEach(({ outcome }, i) => expect(outcome.ok, `append ${i}`).toBe(true));
    const armed = settled[ARM_AT]?.outcome;
    expect(armed?.ok, 'the append issued right after arming').toBe(false);
    if (window === 1) {
      // One append at a time: exactly the armed one hits the fault, every later one finds the log failed.
      expect(armed && !armed.ok && (armed.error as StorageError).code).toBe(scenario.failCode);
      settled.slice(ARM_AT + 1).forEach(({ outcome }, i) => {
        expect(!outcome.ok && (outcome.error as StorageError).code, `append ${ARM_AT + 1 + i}`).toBe('LOG_FAILED');
      });
    }

    // The failed log refuses appends but still serves everything confirmed.
    expect(log.state).toBe('failed');
    const later = await expectStorageError(() => log.append([{ body: Buffer.from('too late') }]), 'LOG_FAILED');
    expect(later.message).toContain(scenario.errno);
    expect(log.durableOffset, 'durableOffset is exactly the confirmed prefix').toBe(confirmedRecords.length);
    expectSameRecords(log.records(0), confirmedRecords);
    expect(log.read(confirmedRecords.length)).toEqual([]);

    await logs.close(log);
    expect(log.state).toBe('closed');
    await expectStorageError(() => log.append([{ body: Buffer.from('closed') }]), 'LOG_CLOSED');

    // Reopen with the real IO: confirmed records intact; anything beyond them is an attempted record, in order.
    const reopened = await logs.open(dir, options);
    expect(reopened.state).toBe('open');
    expect(reopened.nextOffset).toBeGreaterThanOrEqual(confirmedRecords.length);
    const stored = [...reopened.records(0)];
    expectSameRecords(stored.slice(0, confirmedRecords.length), confirmedRecords);
    const attempted = new Map<string, Buffer>();
    for (const { batch } of settled) {
      for (const record of batch) {
        const body = Buffer.from(record.body);
        attempted.set(`${body.readUInt32BE(0)}:${body.readUInt32BE(4)}`, body);
      }
    }
    let previousKey = -1;
    for (const record of stored.slice(confirmedRecords.length)) {
      expect(record.body.length, `surviving unconfirmed record ${record.offset} has an id`).toBeGreaterThanOrEqual(8);
      const id = `${record.body.readUInt32BE(0)}:${record.body.readUInt32BE(4)}`;
      expect(attempted.get(id)?.equals(record.body), `surviving unconfirmed record ${record.offset} is an attempted one`).toBe(
        true,
      );
      const key = record.body.readUInt32BE(0) * 1_000 + record.body.readUInt32BE(4);
      expect(key, 'surviving unconfirmed records keep append order').toBeGreaterThan(previousKey);
      previousKey = key;
    }

    const base = reopened.nextOffset;
    const result = await reopened.append([{ body: Buffer.from('works again') }, { body: Buffer.from('and again') }]);
    expect(result).toEqual({ baseOffset: base, lastOffset: base + 1 });
    expect(reopened.read(base).map((r) => r.body.toString())).toEqual(['works again', 'and again']);
    expectSameRecords(reopened.records(0, {}), [...stored, ...reopened.read(base)]);
  });
});
