/**
 * Latency histograms per stage of an event's life, in microseconds, kept as HDR histograms
 * (hdr-histogram-js, its pure-JS implementation): fixed range and precision, so memory is bounded
 * whatever is recorded. Recording is an index computation and an increment, no allocation.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';

/** A histogram or stage `recordExternal` cannot take (observability imports nothing of the engine). */
export class LatencyInputError extends Error {
  readonly code = 'INVALID_ARGUMENT';
  constructor(
    message: string,
    readonly field: string,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

/**
 * The stages measured. All but `fsync` are recorded on the engine's main thread:
 * - `publish_to_durable`: `publish`/`publishMany` call to the event's receipt;
 * - `publish_to_first_delivery`: the event's publishedAt (ms precision) to its first delivery being
 *   handed to a consumer (the main thread does not learn when an event became durable);
 * - `delivery_to_ack`: delivery handed to a consumer's handler to the consumer's ack;
 * - `publish_to_ack`: the event's publishedAt to the ack (end to end);
 * - `fsync`: merged from the shard workers' own histograms (`recordExternal`).
 * Scheduled events (deliverAt) are left out of publish_to_first_delivery and publish_to_ack, which
 * would measure their schedule; a deferred event's copy is not told apart and counts its defer.
 */
export const LATENCY_STAGES = ['publish_to_durable', 'publish_to_first_delivery', 'delivery_to_ack', 'publish_to_ack', 'fsync'] as const;

export type LatencyStage = (typeof LATENCY_STAGES)[number];

/** Longest latency kept apart: one hour. Longer ones are recorded as one hour. */
export const MAX_TRACKED_MICROS = 3_600_000_000;

/** Significant decimal digits kept: values are exact to within 0.1% (the layout below assumes 3). */
export const SIGNIFICANT_DIGITS = 3;

/** 64-bit counts: an interval never overflows a bucket (8-bit to 32-bit ones could). */
const BIT_BUCKET_SIZE = 64;

/**
 * The HDR layout for a lowest discernible value of 1 at 3 significant digits: sub-buckets of 2048
 * values (2^11 >= 2 * 10^3), the upper half of each reused by the next bucket of twice the unit.
 */
const SUB_BUCKET_HALF_MAGNITUDE = 10;
const SUB_BUCKET_HALF_COUNT = 1 << SUB_BUCKET_HALF_MAGNITUDE;
const SUB_BUCKET_MASK = 2 * SUB_BUCKET_HALF_COUNT - 1;

/**
 * The HDR counts index of `value` (an integer from 0 to MAX_TRACKED_MICROS, below 2^32): the
 * library's own formula with clz32 and shifts in place of log2 and pow, which cost it about
 * 60 ns a value once several histograms share its code.
 */
function countsIndex(value: number): number {
  const bucket = 31 - SUB_BUCKET_HALF_MAGNITUDE - Math.clz32(value | SUB_BUCKET_MASK);
  return (bucket << SUB_BUCKET_HALF_MAGNITUDE) + (value >>> bucket);
}

/** The lowest value counted at `index` (inverse of countsIndex). */
function lowestValueAt(index: number): number {
  const bucket = (index >>> SUB_BUCKET_HALF_MAGNITUDE) - 1;
  const subBucket = (index & (SUB_BUCKET_HALF_COUNT - 1)) + SUB_BUCKET_HALF_COUNT;
  return bucket < 0 ? subBucket - SUB_BUCKET_HALF_COUNT : subBucket * 2 ** bucket;
}

const COUNTS_LENGTH = countsIndex(MAX_TRACKED_MICROS) + 1;

/** What a stage recorded since its last fold into its histogram. */
class StageTally {
  /** Indexed as the histogram's own counts. */
  readonly counts = new Float64Array(COUNTS_LENGTH);
  /** Exact extremes (the counts keep only buckets): the histogram reports them exactly too. */
  minNonZero = Infinity;
  max = -1;

  add(value: number): void {
    this.counts[countsIndex(value)]++;
    if (value > this.max) this.max = value;
    if (value < this.minNonZero && value !== 0) this.minNonZero = value;
  }

  /**
   * Move the counts into `histogram` (a scan of the array: reads are rare). Each bucket's values go
   * in at its lowest value, except the extremes, which go in as they were: the histogram ends up as
   * if it had recorded every value itself.
   */
  foldInto(histogram: Histogram): void {
    const counts = this.counts;
    const maxIndex = this.max < 0 ? -1 : countsIndex(this.max);
    const minIndex = this.minNonZero === Infinity ? -1 : countsIndex(this.minNonZero);
    for (let index = 0; index < COUNTS_LENGTH; index++) {
      let count = counts[index]!;
      if (count === 0) continue;
      counts[index] = 0;
      if (index === maxIndex) {
        histogram.recordValueWithCount(this.max, 1);
        count--;
      }
      // The minimum is the lowest value of its bucket that was recorded: the others are no lower.
      if (count > 0) histogram.recordValueWithCount(index === minIndex ? this.minNonZero : lowestValueAt(index), count);
    }
    this.minNonZero = Infinity;
    this.max = -1;
  }
}

/** One stage over the current interval, in microseconds. */
export interface StageLatency {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** The whole histogram, HDR compressed and base64 encoded: tools decode and merge these. */
  encoded: string;
}

export interface LatencySnapshot {
  /** When this interval began (ms since the epoch): the recorder's creation or the last reset. */
  intervalStartedAt: number;
  /** When the snapshot was taken (ms since the epoch). */
  takenAt: number;
  stages: Record<LatencyStage, StageLatency>;
}

/** A histogram as the recorder keeps them; for recording elsewhere (a worker) what `recordExternal` merges. */
export function createLatencyHistogram(): Histogram {
  return build({
    bitBucketSize: BIT_BUCKET_SIZE,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: MAX_TRACKED_MICROS,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    useWebAssembly: false,
  });
}

/** Min, percentiles and max of one histogram. Percentiles are kept within [min, max]: the library reports a bucket's top. */
function summarize(histogram: Histogram): StageLatency {
  const count = histogram.totalCount;
  const encoded = encodeIntoCompressedBase64(histogram);
  if (count === 0) return { count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, encoded };
  // Percentile 0 is the lowest bucket's bottom: 0 exactly when zeros were recorded.
  const min = histogram.getValueAtPercentile(0) === 0 ? 0 : histogram.minNonZeroValue;
  const max = histogram.maxValue;
  const at = (percentile: number): number => Math.min(max, Math.max(min, histogram.getValueAtPercentile(percentile)));
  return {
    count,
    min,
    mean: Math.round(histogram.mean * 10) / 10,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max,
    encoded,
  };
}

/**
 * Latency histograms of every stage over an interval. Values are counted in a plain array per stage
 * laid out as the HDR histogram's counts, and folded into that histogram when read. Memory is fixed:
 * about 190 KB for each of the two per stage (1 µs to 1 hour at 3 significant digits, 64-bit counts).
 */
export class LatencyRecorder {
  private readonly histograms: Record<LatencyStage, Histogram>;
  /** What was recorded since the last fold. */
  private readonly tallies: Record<LatencyStage, StageTally>;
  private intervalStartedAt: number;

  constructor(private readonly now: () => number = Date.now) {
    this.histograms = {
      publish_to_durable: createLatencyHistogram(),
      publish_to_first_delivery: createLatencyHistogram(),
      delivery_to_ack: createLatencyHistogram(),
      publish_to_ack: createLatencyHistogram(),
      fsync: createLatencyHistogram(),
    };
    this.tallies = {
      publish_to_durable: new StageTally(),
      publish_to_first_delivery: new StageTally(),
      delivery_to_ack: new StageTally(),
      publish_to_ack: new StageTally(),
      fsync: new StageTally(),
    };
    this.intervalStartedAt = now();
  }

  /**
   * Record one latency. Fractions are rounded; negative values (a clock stepped back) count as 0
   * and values past one hour as one hour, so a recording never throws.
   */
  record(stage: LatencyStage, micros: number): void {
    // `micros >= 0` is false for NaN too.
    const value = micros >= 0 ? (micros < MAX_TRACKED_MICROS ? Math.round(micros) : MAX_TRACKED_MICROS) : 0;
    this.tallies[stage].add(value);
  }

  /**
   * Merge a histogram recorded elsewhere (a shard worker's fsync times, say), given as its HDR
   * compressed base64 encoding, in microseconds. Refused whole (INVALID_ARGUMENT) when it does not
   * decode or holds values past this recorder's range (one hour and a bit); nothing is merged then.
   */
  recordExternal(stage: LatencyStage, encoded: string): void {
    if (!Object.hasOwn(this.histograms, stage)) throw new LatencyInputError(`no latency stage ${JSON.stringify(stage)}`, 'stage');
    let other: Histogram;
    try {
      other = decodeFromCompressedBase64(encoded, BIT_BUCKET_SIZE, false);
    } catch (error) {
      throw new LatencyInputError(`not an HDR compressed base64 histogram: ${String(error)}`, 'encoded', error);
    }
    try {
      // The library checks the range before it changes any count.
      this.histograms[stage].add(other);
    } catch (error) {
      throw new LatencyInputError(`histogram holds ${other.maxValue} µs, past the range kept: ${String(error)}`, 'encoded', error);
    }
  }

  /** Every stage over the interval so far; with `reset`, a new interval starts now (empty histograms). */
  snapshot(reset: boolean): LatencySnapshot {
    const takenAt = this.now();
    const stages = {} as Record<LatencyStage, StageLatency>;
    for (const stage of LATENCY_STAGES) {
      const histogram = this.histograms[stage];
      this.tallies[stage].foldInto(histogram);
      stages[stage] = summarize(histogram);
      if (reset) histogram.reset();
    }
    const snapshot: LatencySnapshot = { intervalStartedAt: this.intervalStartedAt, takenAt, stages };
    if (reset) this.intervalStartedAt = takenAt;
    return snapshot;
  }
}
