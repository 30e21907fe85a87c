import { defaultFileIO, type FileIO } from './file-io.js';
import { StorageError } from './errors.js';

export type FsyncPolicy = 'always' | 'interval' | 'never';

export interface LogOptions {
  /** Roll to a new segment before one would exceed this many bytes. */
  segmentBytes: number;
  /** Roll when a record is this much newer than the active segment's first record. */
  segmentMs: number;
  /** One sparse index entry per this many bytes of log. */
  indexIntervalBytes: number;
  /** When appends count as durable: after an fsync covering them, after a group-commit fsync, or at once. */
  fsync: FsyncPolicy;
  /** Group-commit window of the `interval` policy. */
  fsyncIntervalMs: number;
  /** How often the recovery checkpoint is rewritten; bounds how much a crash recovery scans. */
  checkpointIntervalMs: number;
  /** Sealed segments whose newest record is older than this are deleted; null keeps them. */
  retentionMs: number | null;
  /** Oldest sealed segments are deleted while the log is larger than this; null keeps them. */
  retentionBytes: number | null;
  /** Largest record (header included) the log accepts. */
  maxRecordBytes: number;
  /** Largest number of appends waiting for durability; more are refused until fsyncs catch up. */
  maxPendingAppends: number;
  io: FileIO;
}

export const DEFAULT_LOG_OPTIONS: LogOptions = {
  segmentBytes: 64 * 1024 * 1024,
  segmentMs: 7 * 24 * 60 * 60 * 1000,
  indexIntervalBytes: 4096,
  fsync: 'interval',
  fsyncIntervalMs: 5,
  checkpointIntervalMs: 1000,
  retentionMs: null,
  retentionBytes: null,
  maxRecordBytes: 16 * 1024 * 1024,
  maxPendingAppends: 65_536,
  io: defaultFileIO,
};

/** Segment offsets are stored relative to the base offset in 32 bits, and positions in 32 bits. */
const MAX_SEGMENT_BYTES = 2 ** 31;

export function resolveLogOptions(partial: Partial<LogOptions> = {}): LogOptions {
  const options: LogOptions = { ...DEFAULT_LOG_OPTIONS };
  for (const [key, value] of Object.entries(partial)) {
    if (value !== undefined) (options as unknown as Record<string, unknown>)[key] = value;
  }
  const positive = (name: keyof LogOptions, max = Number.MAX_SAFE_INTEGER) => {
    const value = options[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > max) {
      throw new StorageError('INVALID_ARGUMENT', `log option ${name} must be a positive integer up to ${max}, got ${String(value)}`);
    }
  };
  positive('segmentBytes', MAX_SEGMENT_BYTES);
  positive('segmentMs');
  positive('indexIntervalBytes', MAX_SEGMENT_BYTES);
  positive('fsyncIntervalMs');
  positive('checkpointIntervalMs');
  positive('maxRecordBytes', MAX_SEGMENT_BYTES);
  positive('maxPendingAppends');
  if (options.retentionMs !== null) positive('retentionMs');
  if (options.retentionBytes !== null) positive('retentionBytes');
  if (!['always', 'interval', 'never'].includes(options.fsync)) {
    throw new StorageError('INVALID_ARGUMENT', `log option fsync must be always, interval or never, got ${String(options.fsync)}`);
  }
  return options;
}
