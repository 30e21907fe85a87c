import { expect } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import type { EngineOptions } from '../../src/engine/engine-options.js';
import { EngineError, type EngineErrorCode } from '../../src/engine/errors.js';
import { TempDirs } from './temp-dirs.js';

/**
 * Engines on temp data directories for one test file. Every engine opened through it is closed,
 * and every directory removed, by `cleanup()` (call it in afterEach), even when a test fails midway.
 * Defaults keep tests small: one worker, four shards.
 */
export class EngineHarness {
  private readonly dirs = new TempDirs();
  private readonly engines = new Set<Engine>();

  dataDir(): Promise<string> {
    return this.dirs.make('engine-test-');
  }

  /** Open an engine; without `dataDir` a fresh temp directory is used. */
  async open(options: Partial<EngineOptions> = {}): Promise<Engine> {
    const dataDir = options.dataDir ?? (await this.dataDir());
    const engine = await Engine.open({ workers: 1, shards: 4, ...options, dataDir });
    this.engines.add(engine);
    return engine;
  }

  async close(engine: Engine): Promise<void> {
    this.engines.delete(engine);
    await engine.close();
  }

  async cleanup(): Promise<void> {
    const engines = [...this.engines];
    this.engines.clear();
    await Promise.allSettled(engines.map((engine) => engine.close()));
    await this.dirs.cleanup();
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}

export function text(payload: Uint8Array): string {
  return decoder.decode(payload);
}

/** The typed error `promise` rejects with; fails the test if it resolves or rejects with anything else. */
export async function rejection(promise: Promise<unknown>): Promise<EngineError> {
  let outcome: unknown;
  try {
    outcome = await promise;
  } catch (error) {
    expect(error, `rejects with an EngineError, got ${String(error)}`).toBeInstanceOf(EngineError);
    return error as EngineError;
  }
  throw new Error(`expected a rejection, resolved with ${JSON.stringify(outcome)}`);
}

/** Assert `promise` rejects with `code` (and `field`, when given). */
export async function expectEngineError(promise: Promise<unknown>, code: EngineErrorCode, field?: string): Promise<EngineError> {
  const error = await rejection(promise);
  expect(error.code, error.message).toBe(code);
  if (field !== undefined) expect(error.field, error.message).toBe(field);
  return error;
}

/** Pick `count` event types from `candidates` that hash to distinct shards (as many as exist). */
export function typesOnDistinctShards(engine: Engine, candidates: readonly string[], count: number): string[] {
  const chosen = new Map<number, string>();
  for (const type of candidates) {
    const shard = engine.shardOf(type);
    if (!chosen.has(shard)) chosen.set(shard, type);
    if (chosen.size === count) break;
  }
  if (chosen.size < count) throw new Error(`only ${chosen.size} distinct shards among the candidate types`);
  return [...chosen.values()];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
