import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { Delivery } from '../../src/engine/delivery.js';
import type { ShardStats } from '../../src/engine/shard-messages.js';
import { emptyShardMetrics, OTHER_TYPE, type EventTypeCounts } from '../../src/engine/shard/shard-metrics.js';
import { renderMetrics } from '../../src/server/metrics-route.js';
import { DeliveryRecorder, waitFor } from '../helpers/engine-deliveries.js';
import { EngineHarness, bytes, sleep } from '../helpers/engine-harness.js';

/** What the parser makes of one metric family (values stay strings, as in the text). */
interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: Array<{ value?: string; labels?: Record<string, string>; buckets?: Record<string, string> }>;
}
// The parser ships CommonJS without type declarations.
const parsePrometheusText = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

const harness = new EngineHarness();
afterEach(() => harness.cleanup());

const ACKED = 'metrics/acked';
const NACKED_ONCE = 'metrics/nacked';
const DEFERRED = 'metrics/deferred';
const DISCARDED = 'metrics/discarded';
const POISON = 'metrics/poison';
const EXPIRED = 'metrics/expired';

type Counted = Omit<EventTypeCounts, 'type'>;

function counts(partial: Partial<Omit<Counted, 'deadLettered'>> & { deadLettered?: Partial<Counted['deadLettered']> }): Counted {
  return {
    published: 0,
    delivered: 0,
    redelivered: 0,
    acked: 0,
    nacked: 0,
    deferred: 0,
    ...partial,
    deadLettered: { expired: 0, discarded: 0, 'max-deliveries': 0, ...partial.deadLettered },
  };
}

/** Every shard's counts, by type (each type lives in one shard; summed anyway). */
function countsByType(stats: ShardStats[]): Record<string, Counted> {
  const byType: Record<string, Counted> = {};
  for (const { metrics } of stats) {
    for (const { type, ...c } of metrics.eventTypes) {
      const total = (byType[type] ??= counts({}));
      for (const field of ['published', 'delivered', 'redelivered', 'acked', 'nacked', 'deferred'] as const) total[field] += c[field];
      for (const reason of ['expired', 'discarded', 'max-deliveries'] as const) total.deadLettered[reason] += c.deadLettered[reason];
    }
  }
  return byType;
}

/** A family's samples as `label=value,...` → numeric value. */
function samples(families: ParsedFamily[], name: string, type: string): Map<string, number> {
  const found = families.find((f) => f.name === name);
  if (!found) throw new Error(`no family ${name}`);
  expect(found.type, name).toBe(type);
  expect(found.help.length, `${name} has help`).toBeGreaterThan(0);
  return new Map(
    found.metrics.map((m) => [
      Object.entries(m.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
      Number(m.value),
    ]),
  );
}

function shardStatsWith(shard: number, eventTypes: EventTypeCounts[]): ShardStats {
  return {
    shard,
    nextOffset: 0,
    subscriptions: 0,
    scheduledPending: 0,
    scheduledInMemory: 0,
    metrics: { ...emptyShardMetrics(), eventTypes },
    fsyncLatency: null,
  };
}

describe('engine metrics', () => {
  it('counts published, delivered, redelivered, acked, nacked, deferred and dead-lettered events by type, and renders them for Prometheus', async () => {
    const engine = await harness.open();
    for (const id of ['producer', 'reader']) engine.registerClient({ id });

    // Expires before anyone subscribes; the subscription (from the start) finds it expired.
    await engine.publish('producer', { type: EXPIRED, payload: bytes('late'), ttlMs: 50 });
    await sleep(120);

    const deferredOnce = new Set<string>();
    const reader = new DeliveryRecorder((delivery: Delivery, consumer, recorder) => {
      switch (delivery.event.type) {
        case NACKED_ONCE:
          if (delivery.attempt === 1) recorder.nack(consumer, delivery);
          else recorder.ack(consumer, delivery);
          return;
        case DEFERRED:
          // The deferred copy comes back as a new delivery (new offset, attempt 1): ack that one.
          if (deferredOnce.has(delivery.event.id)) recorder.ack(consumer, delivery);
          else {
            deferredOnce.add(delivery.event.id);
            consumer.defer(delivery, 50);
          }
          return;
        case DISCARDED:
          consumer.discard(delivery, 'cannot parse');
          return;
        case POISON:
          recorder.nack(consumer, delivery);
          return;
        default:
          recorder.ack(consumer, delivery);
      }
    });
    await engine.subscribe('reader', { name: 'm', pattern: 'metrics/**', start: { from: 'all' }, maxDeliveries: 2 }, reader.handler);
    for (let i = 0; i < 3; i++) await engine.publish('producer', { type: ACKED, payload: bytes(`ok-${i}`) });
    for (const type of [NACKED_ONCE, DEFERRED, DISCARDED, POISON]) await engine.publish('producer', { type, payload: bytes(type) });

    const expected: Record<string, Counted> = {
      [EXPIRED]: counts({ published: 1, deadLettered: { expired: 1 } }),
      [ACKED]: counts({ published: 3, delivered: 3, acked: 3 }),
      [NACKED_ONCE]: counts({ published: 1, delivered: 2, redelivered: 1, nacked: 1, acked: 1 }),
      [DEFERRED]: counts({ published: 1, delivered: 2, deferred: 1, acked: 1 }),
      [DISCARDED]: counts({ published: 1, delivered: 1, deadLettered: { discarded: 1 } }),
      [POISON]: counts({ published: 1, delivered: 2, redelivered: 1, nacked: 2, deadLettered: { 'max-deliveries': 1 } }),
    };
    let stats: ShardStats[] = [];
    const settled = () =>
      isDeepStrictEqual(countsByType(stats), expected) &&
      stats.every((s) => s.metrics.subscriptions.every((sub) => sub.inFlight === 0 && sub.lagOffsets === 0));
    await waitFor(settled, 10_000, () => `settled counts; now ${JSON.stringify(countsByType(stats))} ${JSON.stringify(stats.map((s) => s.metrics.subscriptions))}`, async () => {
      stats = await engine.shardStats();
    });
    expect(countsByType(stats)).toEqual(expected);
    expect(stats.map((s) => s.shard)).toEqual([0, 1, 2, 3]);
    for (const s of stats) {
      const deadHere = [EXPIRED, DISCARDED, POISON].filter((type) => engine.shardOf(type) === s.shard).length;
      expect(s.metrics.subscriptions).toEqual([{ subscription: 'reader/m', lagOffsets: 0, inFlight: 0, paused: false, deadLettered: deadHere }]);
    }

    // Paused, the backlog shows as lag in the shard it is published to.
    await engine.pause('reader', 'm');
    await engine.publish('producer', { type: ACKED, payload: bytes('while paused 1') });
    await engine.publish('producer', { type: ACKED, payload: bytes('while paused 2') });
    stats = await engine.shardStats();
    const ackedShard = engine.shardOf(ACKED);
    for (const s of stats) expect(s.metrics.subscriptions[0]).toMatchObject({ paused: true, lagOffsets: s.shard === ackedShard ? 2 : 0, inFlight: 0 });
    expect(countsByType(stats)[ACKED]).toEqual(counts({ published: 5, delivered: 3, acked: 3 }));

    // Storage: every shard has files; the shards that stored events fsynced them (fsync interval).
    for (const s of stats) {
      expect(s.metrics.diskBytes).toBeGreaterThan(0);
      const { fsync } = s.metrics;
      expect(fsync.buckets).toHaveLength(fsync.bounds.length + 1);
      expect(fsync.buckets.reduce((a, b) => a + b, 0)).toBe(fsync.count);
      if (s.shard === ackedShard) {
        expect(fsync.count).toBeGreaterThan(0);
        expect(fsync.totalSeconds).toBeGreaterThan(0);
      }
    }
    expect(structuredClone(stats)).toEqual(stats);

    const compaction = { runs: 3, compactions: 5, failures: 1, bytesReclaimed: 4096, recordsRemoved: 17, merges: 2, cleans: 3 };
    const text = renderMetrics(stats, { connectionsByStatus: { active: 2, idle: 1, disconnected: 4 }, compaction });
    const families = parsePrometheusText(text);
    const counterFamilies: Array<[string, keyof Omit<Counted, 'deadLettered'>]> = [
      ['ensync_events_published_total', 'published'],
      ['ensync_events_delivered_total', 'delivered'],
      ['ensync_events_redelivered_total', 'redelivered'],
      ['ensync_events_acked_total', 'acked'],
      ['ensync_events_nacked_total', 'nacked'],
      ['ensync_events_deferred_total', 'deferred'],
    ];
    const final = countsByType(stats);
    for (const [name, field] of counterFamilies) {
      const byType = samples(families, name, 'COUNTER');
      expect(byType, name).toEqual(new Map(Object.entries(final).map(([type, c]) => [`type=${type}`, c[field]])));
    }
    const dead = samples(families, 'ensync_events_dead_lettered_total', 'COUNTER');
    expect(dead.get(`type=${EXPIRED},reason=expired`)).toBe(1);
    expect(dead.get(`type=${DISCARDED},reason=discarded`)).toBe(1);
    expect(dead.get(`type=${POISON},reason=max-deliveries`)).toBe(1);
    expect([...dead.values()].reduce((a, b) => a + b, 0)).toBe(3);

    expect(samples(families, 'ensync_clients', 'GAUGE')).toEqual(
      new Map([
        ['status=active', 2],
        ['status=idle', 1],
        ['status=disconnected', 4],
      ]),
    );
    expect(samples(families, 'ensync_compactions_total', 'COUNTER')).toEqual(new Map([['reason=merge', 2], ['reason=clean', 3]]));
    expect(samples(families, 'ensync_compaction_reclaimed_bytes_total', 'COUNTER')).toEqual(new Map([['', 4096]]));
    expect(samples(families, 'ensync_compaction_removed_records_total', 'COUNTER')).toEqual(new Map([['', 17]]));
    expect(samples(families, 'ensync_compaction_failures_total', 'COUNTER')).toEqual(new Map([['', 1]]));
    expect(samples(families, 'ensync_compaction_rounds_total', 'COUNTER')).toEqual(new Map([['', 3]]));
    const lag = samples(families, 'ensync_subscription_lag_offsets', 'GAUGE');
    const paused = samples(families, 'ensync_subscription_paused', 'GAUGE');
    const inFlight = samples(families, 'ensync_subscription_in_flight', 'GAUGE');
    for (const shard of [0, 1, 2, 3]) {
      const series = `subscription=reader/m,shard=${shard}`;
      expect(lag.get(series)).toBe(shard === ackedShard ? 2 : 0);
      expect(paused.get(series)).toBe(1);
      expect(inFlight.get(series)).toBe(0);
    }
    expect([...samples(families, 'ensync_subscription_dead_lettered_total', 'COUNTER').values()].reduce((a, b) => a + b, 0)).toBe(3);
    const disk = samples(families, 'ensync_disk_bytes', 'GAUGE');
    const scheduled = samples(families, 'ensync_scheduled_pending', 'GAUGE');
    for (const s of stats) {
      expect(disk.get(`shard=${s.shard}`)).toBe(s.metrics.diskBytes);
      expect(scheduled.get(`shard=${s.shard}`)).toBe(s.scheduledPending);
    }
    // The parser folds a labeled histogram's series into one set of buckets (the last series
    // written wins), so the buckets are checked against the last shard's: cumulative, to +Inf.
    const fsync = families.find((f) => f.name === 'ensync_fsync_duration_seconds')!;
    expect(fsync.type).toBe('HISTOGRAM');
    const buckets = fsync.metrics[0]!.buckets!;
    const last = stats[stats.length - 1]!.metrics.fsync;
    expect(Object.keys(buckets)).toHaveLength(last.bounds.length + 1);
    let cumulative = 0;
    last.bounds.forEach((bound, i) => {
      cumulative += last.buckets[i]!;
      expect(Number(buckets[String(bound)]), `le=${bound}`).toBe(cumulative);
    });
    expect(Number(buckets['+Inf'])).toBe(last.count);
  });

  it('renders counters summed across shards by type', () => {
    const one = (published: number): Counted => counts({ published, delivered: published, deadLettered: { expired: 1 } });
    const stats = [shardStatsWith(0, [{ type: OTHER_TYPE, ...one(3) }, { type: 'a/x', ...one(1) }]), shardStatsWith(1, [{ type: OTHER_TYPE, ...one(4) }])];
    const noCompaction = { runs: 0, compactions: 0, failures: 0, bytesReclaimed: 0, recordsRemoved: 0, merges: 0, cleans: 0 };
    const families = parsePrometheusText(renderMetrics(stats, { connectionsByStatus: { active: 0, idle: 0, disconnected: 0 }, compaction: noCompaction }));
    expect(samples(families, 'ensync_events_published_total', 'COUNTER')).toEqual(
      new Map([
        [`type=${OTHER_TYPE}`, 7],
        ['type=a/x', 1],
      ]),
    );
    expect(samples(families, 'ensync_events_dead_lettered_total', 'COUNTER').get(`type=${OTHER_TYPE},reason=expired`)).toBe(2);
    // The inputs are not changed by the summing.
    expect(stats[0]!.metrics.eventTypes[0]!.published).toBe(3);
  });
});
