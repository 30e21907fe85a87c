/**
 * The body of GET /metrics: the engine's metrics, from every shard's stats, in the Prometheus text
 * format (serve it with PROMETHEUS_CONTENT_TYPE from src/observability/prometheus.ts).
 */
import type { CompactionTotals } from '../engine/compaction/compaction-runner.js';
import type { ShardStats } from '../engine/shard-messages.js';
import { DEAD_LETTER_REASON_CLASSES, type EventTypeCounts } from '../engine/shard/shard-metrics.js';
import { PrometheusWriter, type HistogramSample, type Sample } from '../observability/prometheus.js';

export type ConnectionStatus = 'active' | 'idle' | 'disconnected';

export interface MetricsExtra {
  /** Registered clients by connection status. */
  connectionsByStatus: Record<ConnectionStatus, number>;
  /** Compaction since the engine opened. */
  compaction: CompactionTotals;
}

type CountedField = 'published' | 'delivered' | 'redelivered' | 'acked' | 'nacked' | 'deferred';

const EVENT_COUNTERS: ReadonlyArray<{ field: CountedField; name: string; help: string }> = [
  { field: 'published', name: 'ensync_events_published_total', help: 'Events stored by publishes, by type (duplicates and refused events not counted).' },
  { field: 'delivered', name: 'ensync_events_delivered_total', help: 'Deliveries to consumers, first ones and redeliveries, by type.' },
  { field: 'redelivered', name: 'ensync_events_redelivered_total', help: 'Deliveries with attempt > 1 (after a nack or an ack timeout), by type.' },
  { field: 'acked', name: 'ensync_events_acked_total', help: 'Deliveries acked, by type.' },
  { field: 'nacked', name: 'ensync_events_nacked_total', help: 'Deliveries nacked, by type.' },
  { field: 'deferred', name: 'ensync_events_deferred_total', help: 'Deliveries deferred (their return durably scheduled), by type.' },
];

const CONNECTION_STATUSES: readonly ConnectionStatus[] = ['active', 'idle', 'disconnected'];

/**
 * Render the metrics of `stats` (one entry per shard, from engine.shardStats()). Event counters are
 * summed across shards by type; subscription and storage figures keep their shard label.
 */
export function renderMetrics(stats: ShardStats[], extra: MetricsExtra): string {
  const byType = sumByType(stats);
  const out = new PrometheusWriter();
  for (const { field, name, help } of EVENT_COUNTERS) {
    out.counter(name, help, [...byType].map(([type, counts]) => ({ labels: { type }, value: counts[field] })));
  }
  const deadLettered: Sample[] = [];
  for (const [type, counts] of byType) {
    for (const reason of DEAD_LETTER_REASON_CLASSES) deadLettered.push({ labels: { type, reason }, value: counts.deadLettered[reason] });
  }
  out.counter('ensync_events_dead_lettered_total', 'Events dead-lettered, by type and reason: expired (ttl passed), discarded (by the consumer), max-deliveries.', deadLettered);

  out.gauge(
    'ensync_clients',
    'Registered clients by connection status.',
    CONNECTION_STATUSES.map((status) => ({ labels: { status }, value: extra.connectionsByStatus[status] })),
  );

  const perSubscription = (pick: (s: ShardStats['metrics']['subscriptions'][number]) => number): Sample[] =>
    stats.flatMap(({ shard, metrics }) => metrics.subscriptions.map((s) => ({ labels: { subscription: s.subscription, shard: String(shard) }, value: pick(s) })));
  out.gauge('ensync_subscription_lag_offsets', "Offsets in the shard's log after the subscription's commit point (every record counts, matching or not).", perSubscription((s) => s.lagOffsets));
  out.gauge('ensync_subscription_in_flight', 'Events delivered and not yet done (including those waiting for redelivery or delayed by a nack).', perSubscription((s) => s.inFlight));
  out.gauge('ensync_subscription_paused', '1 while the subscription is paused.', perSubscription((s) => (s.paused ? 1 : 0)));
  out.counter('ensync_subscription_dead_lettered_total', 'Events the subscription dead-lettered in the shard since the shard opened.', perSubscription((s) => s.deadLettered));

  const perShard = (pick: (s: ShardStats) => number): Sample[] => stats.map((s) => ({ labels: { shard: String(s.shard) }, value: pick(s) }));
  out.gauge('ensync_scheduled_pending', 'Scheduled events and deferred deliveries waiting to come due.', perShard((s) => s.scheduledPending));
  out.gauge('ensync_disk_bytes', "Bytes of the shard's files: events log with its indexes, priority lanes, state logs.", perShard((s) => s.metrics.diskBytes));
  out.histogram(
    'ensync_fsync_duration_seconds',
    "Durations of the group-commit fsyncs of the shard's events log.",
    stats.map(({ shard, metrics: { fsync } }): HistogramSample => ({ labels: { shard: String(shard) }, bounds: fsync.bounds, buckets: fsync.buckets, sum: fsync.totalSeconds })),
  );
  const { compaction } = extra;
  out.counter('ensync_compaction_rounds_total', 'Compaction rounds run (periodic and asked for).', [{ labels: {}, value: compaction.runs }]);
  out.counter('ensync_compactions_total', 'Segment rewrites installed or found unneeded, by reason: merge (small neighbours), clean (settled records removed).', [
    { labels: { reason: 'merge' }, value: compaction.merges },
    { labels: { reason: 'clean' }, value: compaction.cleans },
  ]);
  out.counter('ensync_compaction_failures_total', 'Compactions that failed (their files removed, the segments left as they were).', [{ labels: {}, value: compaction.failures }]);
  out.counter('ensync_compaction_reclaimed_bytes_total', 'Bytes of segment files compaction reclaimed.', [{ labels: {}, value: compaction.bytesReclaimed }]);
  out.counter('ensync_compaction_removed_records_total', 'Records compaction removed from the events logs.', [{ labels: {}, value: compaction.recordsRemoved }]);
  return out.text();
}

/** Counts by type over every shard, in order of first appearance. */
function sumByType(stats: ShardStats[]): Map<string, EventTypeCounts> {
  const totals = new Map<string, EventTypeCounts>();
  for (const { metrics } of stats) {
    for (const counts of metrics.eventTypes) {
      const total = totals.get(counts.type);
      if (!total) {
        totals.set(counts.type, { ...counts, deadLettered: { ...counts.deadLettered } });
        continue;
      }
      for (const { field } of EVENT_COUNTERS) total[field] += counts[field];
      for (const reason of DEAD_LETTER_REASON_CLASSES) total.deadLettered[reason] += counts.deadLettered[reason];
    }
  }
  return totals;
}
