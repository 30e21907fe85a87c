import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Log } from '../../native-free-storage/index.js';
import { attributesForOffset, bodyForOffset, streamForOffset } from '../fixtures/deterministic-body.mjs';
import { Prng } from '../helpers/prng.js';
import { copyDir, listSegments } from '../helpers/segment-files.js';
import { TempDirs } from '../helpers/temp-dirs.js';

const CHILD = fileURLToPath(new URL('../fixtures/compaction-child.mjs', import.meta.url));
const BUILT_LOG = fileURLToPath(new URL('../../dist/native-free-storage/index.js', import.meta.url));
/** Small segments and a fast checkpoint so there is always something sealed to compact. */
const OPTIONS = { fsync: 'interval', fsyncIntervalMs: 2, segmentBytes: 8192, indexIntervalBytes: 256, checkpointIntervalMs: 10 } as const;
const EXIT_TIMEOUT_MS = 20_000;

/** Where the child kills itself; before the intent is written the swap must be undone, after it finished. */
const UNDONE_POINTS = ['rewrite', 'rewritten'];
const FINISHED_POINTS = ['intent-written', 'offset-index-renamed', 'time-index-renamed', 'log-renamed', 'segment-removed', 'directory-synced', 'intent-removed'];
const RANDOM_KILLS = 6;

interface PlanFile {
  segments: number[];
  from: number;
  to: number;
  dropRanges: Array<{ from: number; to: number }>;
  pending: number[];
}

type ChildMessage = { type: 'ready'; nextOffset: number } | { type: 'appended'; lastOffset: number } | { type: 'error'; message: string };

const temps = new TempDirs();
const children = new Set<ChildProcess>();
afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  await temps.cleanup();
});

/** Run one child until it is SIGKILLed (by us after `killAfterMs`, or by itself); returns what it confirmed. */
async function runChild(dir: string, planDir: string, seed: number, mode: string, killAfterMs: number | null): Promise<number> {
  const child = fork(CHILD, [dir, planDir, JSON.stringify(OPTIONS), String(seed), mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  let highestConfirmed = -1;
  let childError: string | null = null;
  let ready = false;
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  child.on('message', (message: ChildMessage) => {
    if (message.type === 'ready') ready = true;
    else if (message.type === 'appended') highestConfirmed = Math.max(highestConfirmed, message.lastOffset);
    else childError = message.message;
  });
  if (killAfterMs !== null) {
    while (!ready && child.exitCode === null && child.signalCode === null) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, killAfterMs));
    child.kill('SIGKILL');
  }
  const timeout = setTimeout(() => child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
  const signal = await exited;
  clearTimeout(timeout);
  children.delete(child);
  expect(childError, `${mode}: child reported an error`).toBeNull();
  expect(signal, `${mode}: child died by SIGKILL`).toBe('SIGKILL');
  expect(ready, `${mode}: child opened the log`).toBe(true);
  return highestConfirmed;
}

/** The plans every child wrote, oldest first (named plan-<round>-<n>.json). */
async function readPlans(planDir: string): Promise<Map<string, PlanFile>> {
  const order = (name: string) => name.match(/\d+/g)!.map(Number);
  const names = (await readdir(planDir)).filter((name) => name.endsWith('.json')).sort((a, b) => order(a)[0]! - order(b)[0]! || order(a)[1]! - order(b)[1]!);
  const plans = new Map<string, PlanFile>();
  for (const name of names) plans.set(name, JSON.parse(await readFile(join(planDir, name), 'utf8')) as PlanFile);
  return plans;
}

/**
 * Open `dir` and check: no compaction leftovers; every offset below the end is either present with its
 * exact bytes or inside a drop range some child planned; every confirmed offset is below the end; each
 * plan's pending offsets went all together or not at all. Returns the present offsets.
 */
async function verify(dir: string, plans: Map<string, PlanFile>, highestConfirmed: number, what: string): Promise<{ present: Set<number>; repairs: string[] }> {
  const log = await Log.open(dir, OPTIONS);
  try {
    const names = await readdir(dir);
    expect(names.filter((n) => n.includes('compacting') || n.startsWith('compaction-intent')), `${what}: no leftovers after open`).toEqual([]);
    expect(log.startOffset).toBe(0);
    expect(log.nextOffset, `${what}: every confirmed append survived`).toBeGreaterThan(highestConfirmed);
    const mayDrop = (offset: number) => [...plans.values()].some((p) => offset >= p.from && offset < p.to && p.dropRanges.some((r) => r.from <= offset && offset < r.to));
    const present = new Set<number>();
    let expected = 0;
    for (const record of log.records(0)) {
      for (; expected < record.offset; expected++) {
        if (!mayDrop(expected)) throw new Error(`${what}: offset ${expected} is missing and no plan dropped it`);
      }
      if (!record.body.equals(bodyForOffset(record.offset)) || record.stream !== streamForOffset(record.offset) || record.attributes !== attributesForOffset(record.offset)) {
        throw new Error(`${what}: record ${record.offset} differs from what was appended`);
      }
      present.add(record.offset);
      expected = record.offset + 1;
    }
    for (; expected < log.nextOffset; expected++) if (!mayDrop(expected)) throw new Error(`${what}: offset ${expected} is missing and no plan dropped it`);
    const ordered = [...plans.entries()];
    for (const [i, [name, plan]] of ordered.entries()) {
      // A later plan may have dropped part of this one's range again (this one undone, that one done):
      // the all-or-nothing check covers the offsets no later plan touched.
      const own = plan.pending.filter((offset) => !ordered.slice(i + 1).some(([, later]) => offset >= later.from && offset < later.to));
      const left = own.filter((offset) => present.has(offset)).length;
      if (left !== 0 && left !== own.length) throw new Error(`${what}: ${name} half applied (${left} of ${own.length} droppable records left)`);
      // A lookup by offset lands on the record itself, or on the next one kept when it was dropped.
      for (const offset of plan.pending) {
        const got = log.read(offset, { maxRecords: 1 })[0]?.offset;
        if (present.has(offset) ? got !== offset : got !== undefined && got <= offset) throw new Error(`${what}: read(${offset}) returned ${got}`);
      }
    }
    // On disk, each segment file holds only records of its own range, in order: no segment left over
    // from a merge, none half replaced.
    const files = await listSegments(dir);
    for (const [i, file] of files.entries()) {
      const end = i + 1 < files.length ? files[i + 1]!.baseOffset : log.nextOffset;
      const data = await readFile(file.logPath);
      let previous = file.baseOffset - 1;
      for (let at = 0; at < data.length; at += data.readUInt32LE(at + 4)) {
        const offset = data.readUInt32LE(at + 16);
        if (offset <= previous || offset >= end) throw new Error(`${what}: segment ${file.baseOffset} holds offset ${offset} outside [${previous + 1}, ${end})`);
        previous = offset;
      }
    }
    return { present, repairs: log.recovery.repairs };
  } finally {
    await log.close();
  }
}

describe('compaction crash safety with a SIGKILLed process', () => {
  it('loses nothing and applies each compaction whole, killed at every step of the swap and at random times', async () => {
    expect(existsSync(BUILT_LOG), `${BUILT_LOG} missing: run \`npx tsc -b\` (npm test does it)`).toBe(true);
    const dir = await temps.make('nfs-compaction-crash-');
    const planDir = await temps.make('nfs-compaction-plans-');
    const scratch = await temps.make('nfs-compaction-copy-');
    const rng = new Prng(61);
    const modes = [
      ...[...UNDONE_POINTS, ...FINISHED_POINTS].map((point) => `kill:${point}:merge`),
      ...['rewrite', 'intent-written', 'log-renamed', 'directory-synced'].map((point) => `kill:${point}:single`),
      ...Array.from({ length: RANDOM_KILLS }, () => 'run'),
    ];
    // Random kills between the step kills, so later steps also meet logs compacted and crashed before.
    for (let i = RANDOM_KILLS; i > 0; i--) modes.splice(rng.int(0, modes.length - 1), 0, modes.pop()!);

    let highestConfirmed = -1;
    let round = 0;
    for (const mode of modes) {
      const seed = ++round;
      const killAfter = mode === 'run' ? rng.int(50, 400) : null;
      highestConfirmed = Math.max(highestConfirmed, await runChild(dir, planDir, seed, mode, killAfter));
      const plans = await readPlans(planDir);
      // Verify a copy: the crashed original is left for the next child to recover.
      const copy = join(scratch, `round-${round}`);
      await copyDir(dir, copy);
      const { present, repairs } = await verify(copy, plans, highestConfirmed, `round ${round} (${mode})`);
      if (mode !== 'run') {
        const [, point] = mode.split(':');
        const killed = plans.get(`plan-${seed}-0.json`);
        expect(killed, `round ${round}: the child planned its compaction before dying`).toBeDefined();
        const left = killed!.pending.filter((offset) => present.has(offset)).length;
        if (UNDONE_POINTS.includes(point!)) {
          expect(left, `round ${round}: killed at ${point}, the compaction is undone`).toBe(killed!.pending.length);
          expect(repairs.some((r) => r.startsWith('removed compaction leftover')), `round ${round}: leftovers removed`).toBe(true);
        } else {
          expect(left, `round ${round}: killed at ${point}, the compaction is finished`).toBe(0);
          if (point !== 'intent-removed') expect(repairs.some((r) => r.startsWith('finished an interrupted compaction')), `round ${round}: ${repairs.join('; ')}`).toBe(true);
        }
      }
    }
    // The original, recovered once more after the last crash, holds the same.
    await verify(dir, await readPlans(planDir), highestConfirmed, 'original');
    expect(highestConfirmed, 'children confirmed a meaningful number of records').toBeGreaterThan(200);
  });
});
