import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/observability/logger.js';
import { WorkBoard, type WorkProgress } from '../../src/observability/work-progress.js';

/** A logger keeping its lines, and a clock the test moves. */
function setup(options: ConstructorParameters<typeof WorkBoard>[1] = {}) {
  const lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
  const logger: Logger = {
    debug: (msg, fields = {}) => lines.push({ level: 'debug', msg, fields: { ...fields } }),
    info: (msg, fields = {}) => lines.push({ level: 'info', msg, fields: { ...fields } }),
    warn: (msg, fields = {}) => lines.push({ level: 'warn', msg, fields: { ...fields } }),
    error: (msg, fields = {}) => lines.push({ level: 'error', msg, fields: { ...fields } }),
    child: () => logger,
  };
  let now = 1_000_000;
  const board = new WorkBoard(logger, { now: () => now, ...options });
  return { board, lines, advance: (ms: number) => (now += ms), now: () => now };
}

const work = (startedAt: number, extra: Partial<WorkProgress> = {}): WorkProgress => ({
  id: 'recovery:shard-0',
  kind: 'recovery',
  shard: 0,
  detail: 'indexing priority lanes',
  done: 0,
  total: 1000,
  unit: 'offsets',
  startedAt,
  ...extra,
});

describe('WorkBoard', () => {
  it('keeps quick work out of the log but shows it in the view', () => {
    const { board, lines, advance, now } = setup({ quietMs: 1000 });
    const start = now();
    board.update(work(start));
    expect(board.view().active).toHaveLength(1);
    advance(200);
    board.update(work(start, { done: 1000, finishedAt: now() }));
    expect(lines).toEqual([]);
    expect(board.view()).toEqual({ active: [], finished: [work(start, { done: 1000, finishedAt: start + 200 })] });
  });

  it('logs slow work when it passes the quiet time, then at most every logEveryMs, then its end', () => {
    const { board, lines, advance, now } = setup({ quietMs: 1000, logEveryMs: 5000 });
    const start = now();
    board.update(work(start));
    advance(1500);
    board.update(work(start, { done: 100 }));
    expect(lines.map((l) => l.msg)).toEqual(['long work running']);
    expect(lines[0]!.fields).toMatchObject({ work: 'recovery:shard-0', done: 100, total: 1000, percent: 10, elapsedMs: 1500 });
    advance(1000);
    board.update(work(start, { done: 200 }));
    expect(lines).toHaveLength(1);
    advance(5000);
    board.update(work(start, { done: 900 }));
    expect(lines.map((l) => l.msg)).toEqual(['long work running', 'long work progress']);
    board.update(work(start, { done: 1000, finishedAt: now() }));
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'long work finished', fields: { done: 1000, percent: 100, elapsedMs: 7500 } });
  });

  it('ignores reports of work already finished (its reports may come by two routes)', () => {
    const { board, now } = setup();
    const start = now();
    board.update(work(start, { done: 1000, finishedAt: start }));
    board.update(work(start, { done: 500 }));
    board.update(work(start, { done: 1000, finishedAt: start }));
    expect(board.view()).toEqual({ active: [], finished: [work(start, { done: 1000, finishedAt: start })] });
    board.update(work(start + 1)); // the same id started again is new work
    expect(board.view().active).toHaveLength(1);
  });

  it('logs failed work as a warning, even when quick', () => {
    const { board, lines, now } = setup();
    board.update(work(now(), { finishedAt: now(), error: 'disk full' }));
    expect(lines).toEqual([{ level: 'warn', msg: 'long work failed', fields: expect.objectContaining({ error: 'disk full' }) }]);
  });

  it('ends the work of a shard whose thread is gone', () => {
    const { board, now } = setup();
    board.update(work(now()));
    board.update(work(now(), { id: 'replay:a/b:1', kind: 'replay', shard: 1 }));
    board.abandonShard(0, 'the shard is opened again');
    expect(board.view().active.map((w) => w.id)).toEqual(['replay:a/b:1']);
    expect(board.view().finished[0]).toMatchObject({ id: 'recovery:shard-0', error: 'the shard is opened again' });
    expect(board.running('recovery')).toBe(false);
    expect(board.running('replay')).toBe(true);
  });

  it('bounds what it follows and what it keeps', () => {
    const { board, now } = setup({ maxActive: 3, keepFinished: 2 });
    for (let i = 0; i < 5; i++) board.update(work(now(), { id: `w${i}` }));
    expect(board.view().active.map((w) => w.id)).toEqual(['w2', 'w3', 'w4']);
    for (let i = 2; i < 5; i++) board.update(work(now(), { id: `w${i}`, finishedAt: now() }));
    expect(board.view().finished.map((w) => w.id)).toEqual(['w4', 'w3']);
  });
});
