/**
 * The bench harness must not rot while CI never runs the bench: run the real entry point
 * (`npm run bench` runs `node dist/bench/run.js`) on the `micro` suite with --quick and check the
 * result file it writes. Needs neither NATS nor Redis.
 */
import { spawn } from 'node:child_process';
import { readdirSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { TempDirs } from '../helpers/temp-dirs.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUN_JS = path.join(REPO_ROOT, 'dist', 'bench', 'run.js');

const MICRO_RESULTS = [
  'publish_frame_encode_per_s',
  'publish_frame_decode_per_s',
  'publish_frame100_encode_events_per_s',
  'publish_frame100_decode_events_per_s',
  'record_encode_per_s',
  'record_checksum_verify_per_s',
  'record_decode_no_checksum_per_s',
  'offset_index_lookup_per_s',
  'time_index_lookup_per_s',
  'ed25519_verify_node_per_s',
  'ed25519_verify_noble_per_s',
  'ed25519_node_vs_noble_ratio',
];

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (!existsSync(RUN_JS)) throw new Error(`${RUN_JS} is missing: build first (npm test runs "tsc -b" before the tests)`);
  const child = spawn(process.execPath, [RUN_JS, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('npm run bench', () => {
  const temp = new TempDirs();
  afterEach(() => temp.cleanup());

  it('runs `micro --quick` and writes bench results with every figure finite', async () => {
    const resultsDir = await temp.make('bench-results-');
    const scratch = await temp.make('bench-scratch-');
    const { code, stdout, stderr } = await runBench(['micro', '--quick', '--results-dir', resultsDir, '--dir', scratch]);
    expect(code, `stderr:\n${stderr}`).toBe(0);
    expect(stdout).toContain('== micro (quick)');
    expect(stdout).not.toContain('CHECK FAILED');

    const file = JSON.parse(readFileSync(path.join(resultsDir, 'micro.json'), 'utf8')) as {
      suite: string;
      machine: { cpus: number; node: string };
      results: Record<string, unknown>;
    };
    expect(file.suite).toBe('micro');
    expect(file.machine.cpus).toBeGreaterThan(0);
    expect(file.machine.node).toBe(process.version);
    expect(Object.keys(file.results).sort()).toEqual([...MICRO_RESULTS].sort());
    for (const [name, value] of Object.entries(file.results)) {
      expect(typeof value === 'number' && Number.isFinite(value) && value > 0, `${name} = ${String(value)}`).toBe(true);
    }
    // node:crypto is native, noble is plain JavaScript: a ratio below 1 means a broken measurement.
    expect(file.results.ed25519_node_vs_noble_ratio as number).toBeGreaterThan(1);
    // Nothing left behind in the scratch dir the harness was given.
    expect(readdirSync(scratch)).toEqual([]);
  });

  it('refuses an unknown suite with a usage error before running anything', async () => {
    const resultsDir = await temp.make('bench-results-');
    const { code, stderr } = await runBench(['no-such-suite', '--quick', '--results-dir', resultsDir]);
    expect(code).toBe(2);
    expect(stderr).toContain('unknown suite "no-such-suite"');
    expect(readdirSync(resultsDir)).toEqual([]);
  });
});
