import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../../native-free-storage/index.js';
import { EngineError } from '../errors.js';
import { TypePattern } from '../type-pattern.js';

/**
 * What compaction may remove from the events of the types a pattern covers. The first policy whose
 * pattern matches an event's type applies; an event no policy covers is never removed by compaction
 * (retention still applies to it).
 */
export interface StreamCompactionPolicy {
  /** Event types covered (`*` one segment, `**` the rest). */
  pattern: string;
  /**
   * Events older than this (ms) that every subscription matching their type has acked (or settled)
   * may go. null: only key compaction removes events of these types.
   */
  removeAckedAfterMs: number | null;
  /**
   * `key`: of the events of one type with the same `key`, older ones go once a newer one exists and
   * they are acked, as in Kafka's compacted topics. `none`: no key compaction.
   */
  compaction: 'none' | 'key';
  /** A keyed event with an empty payload (a tombstone) is itself removed after this long (ms). */
  tombstoneRetentionMs: number;
}

export interface CompactionSettings {
  policies: StreamCompactionPolicy[];
  /** Dead-lettered events older than this (ms) may go (they drop off the dead-letter list); null: kept. */
  deadLetterRetentionMs: number | null;
  /** How often each shard is checked for segments worth compacting; 0: only when asked (admin). */
  checkIntervalMs: number;
  /** A segment is compacted again only once its removable share may have grown by this much (0-1). */
  minCleanableRatio: number;
  /** Adjacent sealed segments are merged while the merged one stays under this many bytes. */
  mergeBelowBytes: number;
  /** The compaction worker's disk budget, bytes read plus written per second. */
  ioBytesPerSecond: number;
}

/** Settings as given (to the engine's options or PUT /admin/compaction): what is left out takes its default. */
export type CompactionSettingsInput = Partial<Omit<CompactionSettings, 'policies'>> & {
  policies?: Array<Partial<StreamCompactionPolicy> & { pattern: string }>;
};

export const DEFAULT_COMPACTION_SETTINGS: CompactionSettings = Object.freeze({
  policies: [],
  deadLetterRetentionMs: null,
  checkIntervalMs: 60_000,
  minCleanableRatio: 0.25,
  mergeBelowBytes: 16 * 1024 * 1024,
  ioBytesPerSecond: 32 * 1024 * 1024,
}) as CompactionSettings;

const DEFAULT_TOMBSTONE_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Bounded so plans stay small and matching stays cheap. */
export const MAX_COMPACTION_POLICIES = 256;
const FILE = 'compaction.json';

const SETTINGS_KEYS = new Set(Object.keys(DEFAULT_COMPACTION_SETTINGS));
const POLICY_KEYS = new Set(['pattern', 'removeAckedAfterMs', 'compaction', 'tombstoneRetentionMs']);

function invalid(field: string, message: string): EngineError {
  return new EngineError('INVALID_ARGUMENT', message, { field });
}

function objectOf(input: unknown, what: string, field: string): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid(field, `${what} must be an object`);
  return input as Record<string, unknown>;
}

function integer(value: unknown, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(field, `${field} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function policyOf(input: unknown, i: number): StreamCompactionPolicy {
  const field = `policies[${i}]`;
  const source = objectOf(input, field, field);
  for (const key of Object.keys(source)) if (!POLICY_KEYS.has(key)) throw invalid(`${field}.${key}`, `unknown compaction policy setting ${JSON.stringify(key)}`);
  if (typeof source.pattern !== 'string') throw invalid(`${field}.pattern`, `${field}.pattern must be an event type pattern`);
  try {
    new TypePattern(source.pattern);
  } catch (error) {
    throw invalid(`${field}.pattern`, `${field}.${(error as Error).message}`);
  }
  const compaction = source.compaction ?? 'none';
  if (compaction !== 'none' && compaction !== 'key') throw invalid(`${field}.compaction`, `${field}.compaction must be 'none' or 'key'`);
  const removeAckedAfterMs = source.removeAckedAfterMs === undefined || source.removeAckedAfterMs === null ? null : integer(source.removeAckedAfterMs, `${field}.removeAckedAfterMs`, 0);
  if (removeAckedAfterMs === null && compaction === 'none') {
    throw invalid(field, `${field} removes nothing: give removeAckedAfterMs, or compaction 'key'`);
  }
  return {
    pattern: source.pattern,
    removeAckedAfterMs,
    compaction,
    tombstoneRetentionMs: source.tombstoneRetentionMs === undefined ? DEFAULT_TOMBSTONE_RETENTION_MS : integer(source.tombstoneRetentionMs, `${field}.tombstoneRetentionMs`, 0),
  };
}

/** Checked settings from `input`; what it leaves out keeps its value in `base`. */
export function validateCompactionSettings(input: unknown, base: CompactionSettings = DEFAULT_COMPACTION_SETTINGS): CompactionSettings {
  const source = objectOf(input, 'compaction settings', 'compaction');
  for (const key of Object.keys(source)) if (!SETTINGS_KEYS.has(key)) throw invalid(key, `unknown compaction setting ${JSON.stringify(key)}`);
  const settings: CompactionSettings = { ...base, policies: [...base.policies] };
  if (source.policies !== undefined) {
    if (!Array.isArray(source.policies)) throw invalid('policies', 'policies must be an array');
    if (source.policies.length > MAX_COMPACTION_POLICIES) throw invalid('policies', `at most ${MAX_COMPACTION_POLICIES} policies`);
    settings.policies = source.policies.map(policyOf);
  }
  if (source.deadLetterRetentionMs !== undefined) {
    settings.deadLetterRetentionMs = source.deadLetterRetentionMs === null ? null : integer(source.deadLetterRetentionMs, 'deadLetterRetentionMs', 0);
  }
  if (source.checkIntervalMs !== undefined) settings.checkIntervalMs = integer(source.checkIntervalMs, 'checkIntervalMs', 0, 7 * 24 * 3_600_000);
  if (source.minCleanableRatio !== undefined) {
    const ratio = source.minCleanableRatio;
    if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) throw invalid('minCleanableRatio', `minCleanableRatio must be from 0 to 1, got ${JSON.stringify(ratio)}`);
    settings.minCleanableRatio = ratio;
  }
  if (source.mergeBelowBytes !== undefined) settings.mergeBelowBytes = integer(source.mergeBelowBytes, 'mergeBelowBytes', 0, 2 ** 31 - 1);
  if (source.ioBytesPerSecond !== undefined) settings.ioBytesPerSecond = integer(source.ioBytesPerSecond, 'ioBytesPerSecond', 64 * 1024);
  return settings;
}

/** The settings last saved on this data directory (they outlive restarts), else `fallback`. */
export function loadCompactionSettings(dataDir: string, fallback: CompactionSettings = DEFAULT_COMPACTION_SETTINGS): CompactionSettings {
  const file = path.join(dataDir, FILE);
  if (!fs.existsSync(file)) return fallback;
  try {
    return validateCompactionSettings(JSON.parse(fs.readFileSync(file, 'utf8')), DEFAULT_COMPACTION_SETTINGS);
  } catch (error) {
    throw new EngineError('STORAGE_FAILED', `${file} is unreadable: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

export function saveCompactionSettings(dataDir: string, settings: CompactionSettings): void {
  writeFileAtomic(path.join(dataDir, FILE), JSON.stringify(settings, null, 2));
}
