import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';

describe('logger', () => {
  it('writes one JSON object per line with ts, level as a word, msg and fields; children add fields; levels filter', () => {
    const lines: string[] = [];
    const logger = createLogger({ sink: (line) => lines.push(line), level: 'info', now: () => new Date('2026-11-28T00:00:00.000Z') });
    logger.debug('hidden');
    logger.info('engine ready', { port: 8080 });
    const child = logger.child({ component: 'ws' });
    const error = Object.assign(new Error('disk gone'), { code: 'EIO' });
    child.error('write failed', { error });
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { ts: '2026-11-28T00:00:00.000Z', level: 'info', msg: 'engine ready', port: 8080 },
      { ts: '2026-11-28T00:00:00.000Z', level: 'error', msg: 'write failed', component: 'ws', error: { name: 'Error', code: 'EIO', message: 'disk gone' } },
    ]);
    expect(lines.every((l) => !l.includes('\n'))).toBe(true);
    const quiet: string[] = [];
    const warnOnly = createLogger({ sink: (line) => quiet.push(line), level: 'warn' });
    warnOnly.info('no');
    warnOnly.warn('yes');
    expect(quiet.map((l) => JSON.parse(l).msg)).toEqual(['yes']);
  });
});
