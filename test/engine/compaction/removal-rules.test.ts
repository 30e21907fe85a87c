import { describe, expect, it } from 'vitest';
import type { LogRecord } from '../../../native-free-storage/index.js';
import { validateCompactionSettings } from '../../../src/engine/compaction/compaction-settings.js';
import { RemovalRules, type CompactionContext } from '../../../src/engine/compaction/removal-rules.js';
import { encodeEventBody } from '../../../src/engine/event-codec.js';
import type { StoredEvent } from '../../../src/engine/event.js';
import { encodeScheduleRecord, RecordKind } from '../../../src/engine/shard/record-kind.js';

const NOW = 100 * 3_600_000;
const HOUR = 3_600_000;

function event(fields: Partial<StoredEvent>): StoredEvent {
  return { id: 'id', type: 'orders/created', payload: new Uint8Array([1]), headers: {}, key: null, sender: 'p', publishedAt: NOW - 2 * HOUR, recipients: null, signature: null, priority: 4, deliverAt: 0, expiresAt: 0, ...fields };
}

function record(offset: number, kind: number, body: Uint8Array, timestamp = NOW - 2 * HOUR): LogRecord {
  return { offset, timestamp, attributes: kind, stream: 0, body: Buffer.from(body) };
}

const published = (offset: number, fields: Partial<StoredEvent> = {}, timestamp?: number) => record(offset, RecordKind.EVENT, encodeEventBody(event(fields)), timestamp);

function rules(context: Partial<CompactionContext>): RemovalRules {
  const { policies } = validateCompactionSettings({
    policies: [
      { pattern: 'orders/**', removeAckedAfterMs: HOUR },
      { pattern: 'prices/*', compaction: 'key', tombstoneRetentionMs: HOUR },
    ],
  });
  return new RemovalRules({ now: NOW, policies, subscriptions: [], keepOffsets: [], lastFired: null, ...context });
}

describe('RemovalRules', () => {
  it('removes by age only what every subscription matching the type has settled', () => {
    const r = rules({ subscriptions: [{ pattern: 'orders/**', commitOffset: 10 }, { pattern: 'orders/created', commitOffset: 5 }, { pattern: 'other/**', commitOffset: 0 }] });
    expect(r.removableByAge(published(4))).toBe(true);
    expect(r.removableByAge(published(5)), 'at the lowest matching commit offset').toBe(false);
    expect(r.removableByAge(published(4, {}, NOW - HOUR + 1)), 'younger than removeAckedAfterMs').toBe(false);
    expect(r.removableByAge(published(4, { type: 'orders/eu/created' })), 'only the orders/** subscription matches').toBe(true);
    expect(r.removableByAge(published(9, { type: 'orders/eu/created' }))).toBe(true);
    expect(r.removableByAge(published(1, { type: 'audit/x' })), 'no policy covers the type').toBe(false);
  });

  it('keeps dead letters kept for their retention', () => {
    const r = rules({ subscriptions: [{ pattern: '**', commitOffset: 100 }], keepOffsets: [7, 3] });
    expect([1, 3, 7, 8].map((o) => r.removableByAge(published(o)))).toEqual([true, false, false, true]);
  });

  it('keeps scheduled events and defer markers until they have fired', () => {
    const scheduled = (offset: number, deliverAt: number) => record(offset, RecordKind.SCHEDULED, encodeEventBody(event({ deliverAt })));
    const marker = (offset: number, dueAt: number) =>
      record(offset, RecordKind.DEFER, encodeScheduleRecord({ source: 0, dueAt, eventOffset: 0, subscription: 'c/s' }, encodeEventBody(event({}))));
    const subscriptions = [{ pattern: '**', commitOffset: 100 }];
    expect(rules({ subscriptions }).removableByAge(scheduled(1, NOW - 3 * HOUR)), 'nothing fired yet').toBe(false);
    const r = rules({ subscriptions, lastFired: { dueAt: NOW - 3 * HOUR, source: 5 } });
    expect(r.removableByAge(scheduled(1, NOW - 3 * HOUR))).toBe(true);
    expect(r.removableByAge(scheduled(6, NOW - 3 * HOUR)), 'same due time, later source: not fired').toBe(false);
    expect(r.removableByAge(scheduled(2, NOW - HOUR))).toBe(false);
    expect(r.removableByAge(marker(3, NOW - 4 * HOUR))).toBe(true);
    expect(r.removableByAge(marker(3, NOW))).toBe(false);
    const bare = record(4, RecordKind.DEFER, encodeScheduleRecord({ source: 0, dueAt: NOW - 4 * HOUR, eventOffset: 0, subscription: 'c/s' }, null));
    expect(r.removableByAge(bare), 'a marker without its event is not typed: kept').toBe(false);
  });

  it('gives keys of key-compacted types only, tombstones for empty payloads, and gates removal on settlement', () => {
    const r = rules({ subscriptions: [{ pattern: 'prices/**', commitOffset: 3 }] });
    expect(r.compactsKeys).toBe(true);
    expect(r.compactionKey(published(1, { type: 'prices/eur', key: 'AAPL' }))).toEqual({ key: 'prices/eur\u0000AAPL', tombstone: false });
    expect(r.compactionKey(published(1, { type: 'prices/eur', key: 'AAPL', payload: new Uint8Array() }))).toEqual({ key: 'prices/eur\u0000AAPL', tombstone: true });
    expect(r.compactionKey(published(1, { type: 'prices/eur' })), 'no key').toBeNull();
    expect(r.compactionKey(published(1, { type: 'orders/created', key: 'k' })), 'not key-compacted').toBeNull();
    expect(r.removableByKey(published(2, { type: 'prices/eur', key: 'AAPL' }))).toBe(true);
    expect(r.removableByKey(published(3, { type: 'prices/eur', key: 'AAPL' })), 'not yet settled').toBe(false);
    expect(r.tombstoneExpiredBefore(published(1, { type: 'prices/eur', key: 'AAPL' }))).toBe(NOW - HOUR);
  });
});

describe('compaction settings', () => {
  it('refuses bad settings with the field named', () => {
    const bad: Array<[unknown, string]> = [
      [{ policies: [{ pattern: 'a/**' }] }, 'policies[0]'],
      [{ policies: [{ pattern: 'a/**/b', removeAckedAfterMs: 1 }] }, 'policies[0].pattern'],
      [{ policies: [{ pattern: 'a', compaction: 'latest' }] }, 'policies[0].compaction'],
      [{ policies: [{ pattern: 'a', removeAckedAfterMs: -1 }] }, 'policies[0].removeAckedAfterMs'],
      [{ minCleanableRatio: 2 }, 'minCleanableRatio'],
      [{ ioBytesPerSecond: 10 }, 'ioBytesPerSecond'],
      [{ colour: 'red' }, 'colour'],
      [[], 'compaction'],
    ];
    for (const [input, field] of bad) {
      expect(() => validateCompactionSettings(input), JSON.stringify(input)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', field }));
    }
  });

  it('keeps what an update leaves out', () => {
    const first = validateCompactionSettings({ policies: [{ pattern: 'a/**', removeAckedAfterMs: 5 }], checkIntervalMs: 1000 });
    const second = validateCompactionSettings({ checkIntervalMs: 0 }, first);
    expect(second.policies).toEqual([{ pattern: 'a/**', removeAckedAfterMs: 5, compaction: 'none', tombstoneRetentionMs: 86_400_000 }]);
    expect(second.checkIntervalMs).toBe(0);
  });
});
