/**
 * A writer for the Prometheus text exposition format, version 0.0.4: each metric family once, with
 * its `# HELP` and `# TYPE` lines, then its samples. Values are in base units (seconds, bytes).
 */

/** The Content-Type of this format, for the HTTP response that serves it. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  labels?: Labels;
  value: number;
}

/** One histogram series: per-bucket counts (not cumulative) plus one for above the last bound. */
export interface HistogramSample {
  labels?: Labels;
  /** Upper bounds of the buckets, increasing. */
  bounds: readonly number[];
  /** Observations per bucket, `bounds.length + 1` entries: the last counts those above every bound. */
  buckets: readonly number[];
  sum: number;
}

export type PrometheusFormatErrorCode = 'INVALID_METRIC_NAME' | 'INVALID_LABEL_NAME' | 'DUPLICATE_METRIC' | 'INVALID_HISTOGRAM';

export class PrometheusFormatError extends Error {
  readonly code: PrometheusFormatErrorCode;

  constructor(code: PrometheusFormatErrorCode, message: string) {
    super(message);
    this.name = 'PrometheusFormatError';
    this.code = code;
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Collects metric families and renders them as one exposition. Its size is what the caller adds:
 * the callers bound their label sets (event types per shard are bounded where they are counted).
 */
export class PrometheusWriter {
  private readonly lines: string[] = [];
  private readonly families = new Set<string>();

  /** A counter: a value that only goes up (or resets to zero on restart). Its name ends in `_total`. */
  counter(name: string, help: string, samples: Iterable<Sample>): this {
    if (!name.endsWith('_total')) throw new PrometheusFormatError('INVALID_METRIC_NAME', `counter ${name} must be named *_total`);
    this.family(name, help, 'counter');
    for (const sample of samples) this.sample(name, sample.labels, sample.value);
    return this;
  }

  /** A gauge: a value that goes up and down. */
  gauge(name: string, help: string, samples: Iterable<Sample>): this {
    this.family(name, help, 'gauge');
    for (const sample of samples) this.sample(name, sample.labels, sample.value);
    return this;
  }

  /** A histogram: cumulative `_bucket{le=...}` series ending at `+Inf`, then `_sum` and `_count`. */
  histogram(name: string, help: string, samples: Iterable<HistogramSample>): this {
    this.family(name, help, 'histogram');
    for (const sample of samples) {
      const { bounds, buckets } = sample;
      if (buckets.length !== bounds.length + 1) {
        throw new PrometheusFormatError('INVALID_HISTOGRAM', `histogram ${name}: ${bounds.length} bounds need ${bounds.length + 1} bucket counts, got ${buckets.length}`);
      }
      if (sample.labels && 'le' in sample.labels) throw new PrometheusFormatError('INVALID_LABEL_NAME', `histogram ${name}: the label le is reserved`);
      let cumulative = 0;
      for (let i = 0; i < bounds.length; i++) {
        if (i > 0 && !(bounds[i]! > bounds[i - 1]!)) {
          throw new PrometheusFormatError('INVALID_HISTOGRAM', `histogram ${name}: bounds must increase, got ${bounds[i - 1]} then ${bounds[i]}`);
        }
        cumulative += buckets[i]!;
        this.sample(`${name}_bucket`, { ...sample.labels, le: formatValue(bounds[i]!) }, cumulative);
      }
      cumulative += buckets[bounds.length]!;
      this.sample(`${name}_bucket`, { ...sample.labels, le: '+Inf' }, cumulative);
      this.sample(`${name}_sum`, sample.labels, sample.sum);
      this.sample(`${name}_count`, sample.labels, cumulative);
    }
    return this;
  }

  /** The exposition: lines separated by `\n`, the last one ended too (the format requires it). */
  text(): string {
    return this.lines.length === 0 ? '' : this.lines.join('\n') + '\n';
  }

  private family(name: string, help: string, type: 'counter' | 'gauge' | 'histogram'): void {
    if (!METRIC_NAME.test(name)) throw new PrometheusFormatError('INVALID_METRIC_NAME', `invalid metric name ${JSON.stringify(name)}`);
    if (this.families.has(name)) throw new PrometheusFormatError('DUPLICATE_METRIC', `metric ${name} is written twice; a family must be written once`);
    this.families.add(name);
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }

  private sample(name: string, labels: Labels | undefined, value: number): void {
    this.lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
  }
}

function formatLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  const parts: string[] = [];
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new PrometheusFormatError('INVALID_LABEL_NAME', `invalid label name ${JSON.stringify(name)}`);
    parts.push(`${name}="${escapeLabelValue(value)}"`);
  }
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Label values escape backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

/** HELP text escapes backslash and line feed (a quote is literal there). */
export function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'));
}

/** Go's float syntax: integers as is, `+Inf`, `-Inf`, `NaN`. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}
