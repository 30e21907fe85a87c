import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MachineInfo } from './machine.js';

/** A goal a figure is compared with; the table says whether it was met. */
export interface Target {
  op: '>=' | '<=' | '<' | '>';
  value: number;
}

/** One measured figure of a suite. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  note?: string;
  target?: Target;
}

/** What a suite gets from the harness. */
export interface SuiteContext {
  quick: boolean;
  /** Scratch directory owned by the harness; removed after the suite, also on failure. */
  dir: string;
  /** Progress lines go to stderr so the table on stdout stays clean. */
  progress(message: string): void;
}

/**
 * A suite's figures plus the correctness checks it made on the way (records lost, offsets wrong…):
 * a failed check is reported and makes the run exit non-zero, but does not hide the other figures.
 */
export interface SuiteOutput {
  rows: BenchRow[];
  checkFailures: string[];
  /** Lines printed under the table: what a reader needs to read the figures right (versions, settings). */
  notes?: string[];
}

export interface Suite {
  name: string;
  description: string;
  run(ctx: SuiteContext): Promise<SuiteOutput>;
}

export interface SuiteResultFile {
  suite: string;
  machine: MachineInfo;
  results: Record<string, number>;
}

export function targetMet(value: number, target: Target): boolean {
  switch (target.op) {
    case '>=': return value >= target.value;
    case '<=': return value <= target.value;
    case '<': return value < target.value;
    case '>': return value > target.value;
  }
}

// Compiled to dist/bench/harness/, results live in the source tree's bench/results/.
export const DEFAULT_RESULTS_DIR = fileURLToPath(new URL('../../../bench/results/', import.meta.url));

export function writeResultFile(suite: string, machine: MachineInfo, rows: BenchRow[], resultsDir = DEFAULT_RESULTS_DIR): string {
  const results: Record<string, number> = {};
  for (const row of rows) results[row.name] = row.value;
  const file: SuiteResultFile = { suite, machine, results };
  fs.mkdirSync(resultsDir, { recursive: true });
  const target = path.join(resultsDir, `${suite}.json`);
  fs.writeFileSync(target, JSON.stringify(file, null, 2) + '\n');
  return target;
}
