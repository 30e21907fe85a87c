import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Log } from '../../native-free-storage/index.js';
import { attributesForOffset, bodyForOffset, streamForOffset } from '../fixtures/deterministic-body.mjs';
import { Prng } from '../helpers/prng.js';
import { copyDir } from '../helpers/segment-files.js';
import { TempDirs } from '../helpers/temp-dirs.js';

const CHILD = fileURLToPath(new URL('../fixtures/append-child.mjs', import.meta.url));
const BUILT_LOG = fileURLToPath(new URL('../../dist/native-free-storage/index.js', import.meta.url));
const ROUNDS = 15;
const READY_TIMEOUT_MS = 15_000;
/** Small segments and a fast checkpoint so kills land around rolls and checkpoint rewrites. */
const OPTIONS = { fsync: 'always', segmentBytes: 32 * 1024, indexIntervalBytes: 512, checkpointIntervalMs: 30 } as const;

type ChildMessage =
  | { type: 'ready'; nextOffset: number; clean: boolean }
  | { type: 'appended'; lastOffset: number }
  | { type: 'error'; message: string };

const temps = new TempDirs();
const children = new Set<ChildProcess>();
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  await temps.cleanup();
});

interface RoundOutcome {
  readyNextOffset: number;
  readyClean: boolean;
  highestConfirmed: number;
}

/** Runs one child on `dir`, SIGKILLs it `delayMs` after it reports ready, returns what it confirmed. */
async function runChildUntilKilled(dir: string, seed: number, delayMs: number): Promise<RoundOutcome> {
  const child = fork(CHILD, [dir, JSON.stringify(OPTIONS), String(seed)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  let readyNextOffset = -1;
  let readyClean = false;
  let highestConfirmed = -1;
  let childError: string | null = null;
  let killedByUs = false;

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('child did not become ready')), READY_TIMEOUT_MS);
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') {
        readyNextOffset = message.nextOffset;
        readyClean = message.clean;
        clearTimeout(timer);
        resolve();
      } else if (message.type === 'appended') {
        highestConfirmed = Math.max(highestConfirmed, message.lastOffset);
      } else {
        childError = message.message;
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      if (readyNextOffset < 0) reject(new Error(`child exited before ready: ${childError ?? 'no message'}`));
    });
  });

  await ready;
  await new Promise((resolve) => setTimeout(resolve, delayMs));
  killedByUs = child.kill('SIGKILL');
  const { signal } = await exited;
  children.delete(child);
  expect(childError, 'child reported an error').toBeNull();
  expect(killedByUs && signal === 'SIGKILL', 'child was still appending when killed').toBe(true);
  return { readyNextOffset, readyClean, highestConfirmed };
}

/** Opens `dir` in this process and checks every record against its offset-derived contents. */
async function verifyLog(dir: string, highestConfirmed: number, round: number): Promise<number> {
  const log = await Log.open(dir, OPTIONS);
  try {
    expect(log.recovery.clean, `round ${round}: a killed writer leaves an unclean log`).toBe(false);
    expect(log.startOffset).toBe(0);
    expect(log.nextOffset, `round ${round}: every confirmed offset survived`).toBeGreaterThan(highestConfirmed);
    expect(log.durableOffset).toBe(log.nextOffset);
    let expectedOffset = 0;
    for (const record of log.records(0)) {
      expect(record.offset, `round ${round}: offsets are consecutive`).toBe(expectedOffset);
      if (!record.body.equals(bodyForOffset(record.offset))) {
        throw new Error(`round ${round}: body of offset ${record.offset} differs (${record.body.length} bytes stored)`);
      }
      expect(record.stream).toBe(streamForOffset(record.offset));
      expect(record.attributes).toBe(attributesForOffset(record.offset));
      expectedOffset++;
    }
    expect(expectedOffset, `round ${round}: records() reaches nextOffset`).toBe(log.nextOffset);
    return log.nextOffset;
  } finally {
    await log.close();
  }
}

describe('crash recovery with a SIGKILLed writer', () => {
  it(`keeps every confirmed record across ${ROUNDS} kills`, async () => {
    expect(existsSync(BUILT_LOG), `${BUILT_LOG} missing: run \`npx tsc -b\` (npm test does it)`).toBe(true);
    const dir = await temps.make('nfs-crash-');
    const scratch = await temps.make('nfs-crash-copy-');
    const rng = new Prng(51);
    let highestConfirmed = -1;
    let recovered = 0;

    for (let round = 0; round < ROUNDS; round++) {
      const outcome = await runChildUntilKilled(dir, rng.int(1, 2 ** 31), rng.int(20, 300));
      expect(outcome.readyNextOffset, `round ${round}: child reopened with everything confirmed so far`).toBeGreaterThan(
        highestConfirmed,
      );
      // The child recovered either the directory this process just closed cleanly (even rounds) or
      // the crashed original of a copy this process recovered (odd rounds): same bytes, same answer.
      expect(outcome.readyNextOffset, `round ${round}: recovery is deterministic`).toBe(recovered);
      if (round > 0) {
        expect(outcome.readyClean, `round ${round}: child saw a clean log iff we closed it`).toBe((round - 1) % 2 === 0);
      }
      highestConfirmed = Math.max(highestConfirmed, outcome.highestConfirmed);

      // Odd rounds verify a copy and leave the crashed directory for the next child to recover;
      // even rounds verify (and thereby recover and cleanly close) the directory itself.
      if (round % 2 === 1) {
        const copy = `${scratch}/round-${round}`;
        await copyDir(dir, copy);
        recovered = await verifyLog(copy, highestConfirmed, round);
      } else {
        recovered = await verifyLog(dir, highestConfirmed, round);
      }
    }
    expect(highestConfirmed, 'children confirmed a meaningful number of records').toBeGreaterThan(100);
  });
});
