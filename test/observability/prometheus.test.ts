import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { escapeHelp, escapeLabelValue, formatValue, PrometheusFormatError, PrometheusWriter } from '../../src/observability/prometheus.js';

/** What the parser makes of one metric family (values stay strings, as in the text). */
interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: Array<{ value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }>;
}
// The parser ships CommonJS without type declarations.
const parsePrometheusText = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

function family(families: ParsedFamily[], name: string): ParsedFamily {
  const found = families.find((f) => f.name === name);
  if (!found) throw new Error(`no family ${name} among ${families.map((f) => f.name).join(', ')}`);
  return found;
}

function formatError(write: () => unknown): PrometheusFormatError {
  try {
    write();
  } catch (error) {
    expect(error).toBeInstanceOf(PrometheusFormatError);
    return error as PrometheusFormatError;
  }
  throw new Error('expected a PrometheusFormatError');
}

describe('PrometheusWriter', () => {
  it('writes counters and gauges with HELP, TYPE and labels that a Prometheus parser reads back', () => {
    const text = new PrometheusWriter()
      .counter('app_requests_total', 'Requests served.', [
        { labels: { method: 'get', code: '200' }, value: 1027 },
        { labels: { method: 'post', code: '400' }, value: 3 },
      ])
      .gauge('app_temperature_celsius', 'Current temperature.', [{ value: -4.5 }])
      .text();
    expect(text.endsWith('\n')).toBe(true);

    const families = parsePrometheusText(text);
    expect(families.map((f) => [f.name, f.type, f.help])).toEqual([
      ['app_requests_total', 'COUNTER', 'Requests served.'],
      ['app_temperature_celsius', 'GAUGE', 'Current temperature.'],
    ]);
    expect(family(families, 'app_requests_total').metrics).toEqual([
      { labels: { method: 'get', code: '200' }, value: '1027' },
      { labels: { method: 'post', code: '400' }, value: '3' },
    ]);
    expect(family(families, 'app_temperature_celsius').metrics).toEqual([{ value: '-4.5' }]);
  });

  it('escapes backslash, double quote and line feed in label values, and backslash and line feed in HELP', () => {
    const tricky = 'C:\\DIR\\FILE.TXT said "no"\nthen stopped';
    const text = new PrometheusWriter().gauge('app_files', 'Files per path.\nA "quoted" \\ help.', [{ labels: { path: tricky }, value: 1 }]).text();
    expect(text.split('\n')).toHaveLength(4); // HELP, TYPE, one sample, and the empty string after the last \n
    const [parsed] = parsePrometheusText(text);
    expect(parsed!.help).toBe('Files per path.\nA "quoted" \\ help.');
    expect(parsed!.metrics[0]!.labels!.path).toBe(tricky);

    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeHelp('a\\b"c\nd')).toBe('a\\\\b"c\\nd');
  });

  it('writes histograms as cumulative buckets ending at +Inf, with _sum and _count', () => {
    const text = new PrometheusWriter()
      .histogram('app_latency_seconds', 'Latency.', [{ bounds: [0.001, 0.01, 0.1], buckets: [2, 0, 5, 1], sum: 0.123 }])
      .text();
    const [parsed] = parsePrometheusText(text);
    expect(parsed!.type).toBe('HISTOGRAM');
    expect(parsed!.metrics).toEqual([{ buckets: { '0.001': '2', '0.01': '2', '0.1': '7', '+Inf': '8' }, sum: '0.123', count: '8' }]);
  });

  it('keeps the series labels on every histogram line, with le last', () => {
    const text = new PrometheusWriter()
      .histogram('app_latency_seconds', 'Latency.', [
        { labels: { shard: '0' }, bounds: [0.5], buckets: [1, 1], sum: 1.2 },
        { labels: { shard: '1' }, bounds: [0.5], buckets: [0, 0], sum: 0 },
      ])
      .text();
    // The parser keeps only the buckets of labeled histograms (it folds series together), so the
    // lines are checked as written.
    expect(text.split('\n').filter((line) => !line.startsWith('#'))).toEqual([
      'app_latency_seconds_bucket{shard="0",le="0.5"} 1',
      'app_latency_seconds_bucket{shard="0",le="+Inf"} 2',
      'app_latency_seconds_sum{shard="0"} 1.2',
      'app_latency_seconds_count{shard="0"} 2',
      'app_latency_seconds_bucket{shard="1",le="0.5"} 0',
      'app_latency_seconds_bucket{shard="1",le="+Inf"} 0',
      'app_latency_seconds_sum{shard="1"} 0',
      'app_latency_seconds_count{shard="1"} 0',
      '',
    ]);
    expect(parsePrometheusText(text)[0]!.type).toBe('HISTOGRAM');
  });

  it('formats special values as Go does: +Inf, -Inf, NaN', () => {
    expect([Infinity, -Infinity, NaN, 0, 12, 0.0005, 1e21].map(formatValue)).toEqual(['+Inf', '-Inf', 'NaN', '0', '12', '0.0005', '1e+21']);
    const [parsed] = parsePrometheusText(new PrometheusWriter().gauge('app_ratio', 'Ratio.', [{ value: NaN }]).text());
    expect(parsed!.metrics[0]!.value).toBe('NaN');
  });

  it('writes a family with no samples as HELP and TYPE only, and nothing at all for no families', () => {
    expect(new PrometheusWriter().text()).toBe('');
    const families = parsePrometheusText(new PrometheusWriter().counter('app_none_total', 'Nothing yet.', []).gauge('app_one', 'One.', [{ value: 1 }]).text());
    expect(families.map((f) => [f.name, f.metrics.length])).toEqual([
      ['app_none_total', 0],
      ['app_one', 1],
    ]);
  });

  it('refuses invalid names, a counter not named *_total, a family written twice, and malformed histograms', () => {
    expect(formatError(() => new PrometheusWriter().counter('app_requests', 'x', [])).code).toBe('INVALID_METRIC_NAME');
    expect(formatError(() => new PrometheusWriter().gauge('2fast', 'x', [])).code).toBe('INVALID_METRIC_NAME');
    expect(formatError(() => new PrometheusWriter().gauge('app_x', 'x', [{ labels: { 'bad-name': 'v' }, value: 1 }])).code).toBe('INVALID_LABEL_NAME');
    expect(formatError(() => new PrometheusWriter().gauge('app_x', 'x', [{ labels: { __reserved: 'v' }, value: 1 }])).code).toBe('INVALID_LABEL_NAME');
    expect(formatError(() => new PrometheusWriter().gauge('app_x', 'x', []).gauge('app_x', 'x', [])).code).toBe('DUPLICATE_METRIC');
    expect(formatError(() => new PrometheusWriter().histogram('app_h', 'x', [{ bounds: [1, 2], buckets: [1, 2], sum: 0 }])).code).toBe('INVALID_HISTOGRAM');
    expect(formatError(() => new PrometheusWriter().histogram('app_h', 'x', [{ bounds: [2, 1], buckets: [0, 0, 0], sum: 0 }])).code).toBe('INVALID_HISTOGRAM');
    expect(formatError(() => new PrometheusWriter().histogram('app_h', 'x', [{ labels: { le: '1' }, bounds: [1], buckets: [0, 0], sum: 0 }])).code).toBe('INVALID_LABEL_NAME');
  });
});
