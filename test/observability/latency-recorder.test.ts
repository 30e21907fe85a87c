import { decodeFromCompressedBase64, encodeIntoCompressedBase64, build } from 'hdr-histogram-js';
import { describe, expect, it } from 'vitest';
import { createLatencyHistogram, LATENCY_STAGES, LatencyInputError, LatencyRecorder, MAX_TRACKED_MICROS } from '../../src/observability/latency-recorder.js';
import { renderLatency } from '../../src/server/latency-route.js';
import { Prng } from '../helpers/prng.js';

/** HDR at 3 significant digits: a reported value is within 0.1% of the true one. */
function expectWithinPrecision(actual: number, expected: number): void {
  expect(Math.abs(actual - expected), `${actual} vs ${expected}`).toBeLessThanOrEqual(expected * 0.001 + 1);
}

/** A clock the test moves by hand. */
function manualClock(start: number): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return { now: () => time, advance: (ms) => (time += ms) };
}

describe('LatencyRecorder', () => {
  it('reports count, min, mean, percentiles and max of known inputs within HDR precision', () => {
    const recorder = new LatencyRecorder();
    // 1..100000 µs in a scrambled order: every percentile has a known exact value.
    for (let i = 0; i < 100_000; i++) recorder.record('delivery_to_ack', ((i * 7919) % 100_000) + 1);
    const stage = recorder.snapshot(false).stages.delivery_to_ack;
    expect(stage.count).toBe(100_000);
    expect(stage.min).toBe(1);
    expect(stage.max).toBe(100_000);
    expectWithinPrecision(stage.mean, 50_000.5);
    expectWithinPrecision(stage.p50, 50_000);
    expectWithinPrecision(stage.p90, 90_000);
    expectWithinPrecision(stage.p99, 99_000);
    expectWithinPrecision(stage.p999, 99_900);
    expect(stage.p50).toBeLessThan(stage.p90);
    expect(stage.p999).toBeLessThanOrEqual(stage.max);
  });

  it('ends up with the histogram the library builds from the same values, over the whole range', () => {
    const random = new Prng(20261128);
    const recorder = new LatencyRecorder();
    const direct = createLatencyHistogram();
    // Log-uniform from 0 to past the range, with bucket edges and both ends of it.
    const values = [0, 1, 2047, 2048, 2049, 4095, 4096, 1_000_000, MAX_TRACKED_MICROS - 1, MAX_TRACKED_MICROS];
    for (let i = 0; i < 20_000; i++) values.push(Math.floor(Math.exp(random.next() * Math.log(MAX_TRACKED_MICROS))));
    for (const value of values) {
      recorder.record('fsync', value);
      direct.recordValue(value);
    }
    const stage = recorder.snapshot(false).stages.fsync;
    expect(stage.encoded).toBe(encodeIntoCompressedBase64(direct));
    expect(stage.count).toBe(direct.totalCount);
    expect(stage.min).toBe(0);
    expect(stage.max).toBe(MAX_TRACKED_MICROS);
    expect(stage.p50).toBe(direct.getValueAtPercentile(50));
    expect(stage.p999).toBe(direct.getValueAtPercentile(99.9));
    expect(stage.mean).toBeCloseTo(direct.mean, 0);
  });

  it('keeps stages apart and reports empty ones as zeros', () => {
    const recorder = new LatencyRecorder();
    recorder.record('publish_to_durable', 250);
    recorder.record('publish_to_durable', 750);
    const { stages } = recorder.snapshot(false);
    expect(Object.keys(stages).sort()).toEqual([...LATENCY_STAGES].sort());
    expect(stages.publish_to_durable).toMatchObject({ count: 2, min: 250, max: 750, mean: 500 });
    for (const stage of LATENCY_STAGES.filter((name) => name !== 'publish_to_durable')) {
      expect(stages[stage]).toMatchObject({ count: 0, min: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 });
      expect(decodeFromCompressedBase64(stages[stage].encoded, 64).totalCount).toBe(0);
    }
  });

  it('records what a clock can produce without throwing: negative and NaN as 0, past an hour as an hour, fractions rounded', () => {
    const recorder = new LatencyRecorder();
    recorder.record('publish_to_ack', -5_000);
    recorder.record('publish_to_ack', Number.NaN);
    for (let i = 0; i < 3; i++) recorder.record('publish_to_ack', 2.6);
    recorder.record('publish_to_ack', 10 * MAX_TRACKED_MICROS);
    // Recorded: 0, 0, 3, 3, 3, one hour.
    const stage = recorder.snapshot(false).stages.publish_to_ack;
    expect(stage.count).toBe(6);
    expect(stage.min).toBe(0);
    expect(stage.max).toBe(MAX_TRACKED_MICROS);
    expect(stage.p50).toBe(3);
  });

  it('starts a new interval on a reset snapshot, and only then', () => {
    const clock = manualClock(1_000_000);
    const recorder = new LatencyRecorder(clock.now);
    recorder.record('publish_to_first_delivery', 100);
    clock.advance(60_000);

    const kept = recorder.snapshot(false);
    expect(kept).toMatchObject({ intervalStartedAt: 1_000_000, takenAt: 1_060_000 });
    expect(kept.stages.publish_to_first_delivery.count).toBe(1);

    recorder.record('publish_to_first_delivery', 200);
    clock.advance(1_000);
    const closing = recorder.snapshot(true);
    expect(closing).toMatchObject({ intervalStartedAt: 1_000_000, takenAt: 1_061_000 });
    expect(closing.stages.publish_to_first_delivery).toMatchObject({ count: 2, min: 100, max: 200 });

    clock.advance(500);
    const fresh = recorder.snapshot(false);
    expect(fresh).toMatchObject({ intervalStartedAt: 1_061_000, takenAt: 1_061_500 });
    expect(fresh.stages.publish_to_first_delivery).toMatchObject({ count: 0, max: 0 });

    recorder.record('publish_to_first_delivery', 40);
    expect(recorder.snapshot(false).stages.publish_to_first_delivery).toMatchObject({ count: 1, min: 40, max: 40 });
  });

  it('encodes each stage so that it decodes back to the same histogram', () => {
    const recorder = new LatencyRecorder();
    for (let i = 1; i <= 5_000; i++) recorder.record('publish_to_durable', i * 13);
    const stage = recorder.snapshot(false).stages.publish_to_durable;
    const decoded = decodeFromCompressedBase64(stage.encoded, 64);
    expect(decoded.totalCount).toBe(5_000);
    expect(decoded.totalCount).toBe(stage.count);
    expect(decoded.maxValue).toBeGreaterThanOrEqual(stage.max);
    expectWithinPrecision(decoded.getValueAtPercentile(99), stage.p99);
  });

  it('merges histograms recorded elsewhere (recordExternal) into a stage', () => {
    const recorder = new LatencyRecorder();
    recorder.record('fsync', 1_000);
    const worker = createLatencyHistogram();
    for (let i = 0; i < 99; i++) worker.recordValue(3_000);
    recorder.recordExternal('fsync', encodeIntoCompressedBase64(worker));
    recorder.recordExternal('fsync', encodeIntoCompressedBase64(worker));
    const stage = recorder.snapshot(false).stages.fsync;
    expect(stage).toMatchObject({ count: 199, min: 1_000 });
    expectWithinPrecision(stage.max, 3_000);
    expectWithinPrecision(stage.p50, 3_000);
  });

  it('refuses, with a typed error and without merging anything, what it cannot merge', () => {
    const recorder = new LatencyRecorder();
    recorder.record('fsync', 10);
    const refusal = (encoded: string, stage = 'fsync'): LatencyInputError => {
      try {
        recorder.recordExternal(stage as 'fsync', encoded);
      } catch (error) {
        expect(error).toBeInstanceOf(LatencyInputError);
        return error as LatencyInputError;
      }
      throw new Error('recordExternal accepted it');
    };
    expect(refusal('not a histogram')).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'encoded' });

    // Values past the recorder's range (a day, in µs) would not fit.
    const wide = build({ bitBucketSize: 64, autoResize: false, highestTrackableValue: 100 * MAX_TRACKED_MICROS, useWebAssembly: false });
    wide.recordValue(5);
    wide.recordValue(24 * MAX_TRACKED_MICROS);
    expect(refusal(encodeIntoCompressedBase64(wide))).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'encoded' });

    const fine = createLatencyHistogram();
    fine.recordValue(20);
    expect(refusal(encodeIntoCompressedBase64(fine), 'no_such_stage')).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'stage' });

    expect(recorder.snapshot(false).stages.fsync).toMatchObject({ count: 1, min: 10, max: 10 });
  });
});

describe('renderLatency (GET /admin/latency body)', () => {
  it('renders the interval in ISO 8601 and every stage, resetting only when asked', () => {
    const clock = manualClock(Date.UTC(2026, 0, 2, 3, 4, 5));
    const recorder = new LatencyRecorder(clock.now);
    recorder.record('publish_to_ack', 1_500);
    clock.advance(2_000);

    const body = renderLatency(recorder.snapshot(false));
    expect(body.intervalStartedAt).toBe('2026-01-02T03:04:05.000Z');
    expect(body.takenAt).toBe('2026-01-02T03:04:07.000Z');
    expect(body.unit).toBe('microseconds');
    expect(Object.keys(body.stages).sort()).toEqual([...LATENCY_STAGES].sort());
    expect(body.stages.publish_to_ack).toMatchObject({ count: 1, min: 1_500, max: 1_500 });
    // Plain data: what JSON carries is what was rendered.
    expect(JSON.parse(JSON.stringify(body))).toEqual(body);

    expect(renderLatency(recorder.snapshot(true)).stages.publish_to_ack.count).toBe(1);
    const after = renderLatency(recorder.snapshot(false));
    expect(after.intervalStartedAt).toBe('2026-01-02T03:04:07.000Z');
    expect(after.stages.publish_to_ack.count).toBe(0);
  });
});
