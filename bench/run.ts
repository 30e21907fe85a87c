import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { killTrackedChildren } from './harness/child-processes.js';
import { busyWarning, describeMachine } from './harness/machine.js';
import { DEFAULT_RESULTS_DIR, writeResultFile, type Suite } from './harness/results.js';
import { renderTable } from './harness/table.js';

/** Registered suites: each is bench/suites/<name>.ts with a default-exported Suite. Add one line per suite. */
const SUITES = [
  'micro',
  'storage',
  'compaction',
  'engine',
  'delivery',
  'ws',
  'peers',
] as const;

const USAGE = `usage: npm run bench -- [suite ...] [--quick] [--dir <path>] [--results-dir <path>]
  suites: ${SUITES.join(', ')} (default: all)
  --quick               smaller workloads for a fast check
  --dir <path>          put scratch data in a temp dir under existing <path> instead of ${os.tmpdir()}
  --results-dir <path>  write <suite>.json there instead of bench/results/`;

class UsageError extends Error {
  readonly code = 'USAGE';
}

interface Args {
  suites: string[];
  quick: boolean;
  baseDir: string;
  resultsDir: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { suites: [], quick: false, baseDir: os.tmpdir(), resultsDir: DEFAULT_RESULTS_DIR };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') args.quick = true;
    else if (arg === '--results-dir') {
      const value = argv[++i];
      if (!value) throw new UsageError('--results-dir needs a path');
      args.resultsDir = path.resolve(value);
    } else if (arg === '--dir') {
      const value = argv[++i];
      if (!value) throw new UsageError('--dir needs a path');
      args.baseDir = path.resolve(value);
      if (!fs.statSync(args.baseDir, { throwIfNoEntry: false })?.isDirectory()) {
        throw new UsageError(`--dir ${args.baseDir} is not an existing directory`);
      }
    } else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
    else if (!(SUITES as readonly string[]).includes(arg)) {
      throw new UsageError(`unknown suite "${arg}" (known: ${SUITES.join(', ')})`);
    } else args.suites.push(arg);
  }
  if (args.suites.length === 0) args.suites = [...SUITES];
  return args;
}

async function loadSuite(name: string): Promise<Suite> {
  const file = new URL(`./suites/${name}.js`, import.meta.url);
  if (!fs.existsSync(file)) {
    throw new UsageError(`suite "${name}" is registered but ${path.relative(process.cwd(), fileURLToPath(file))} does not exist (is bench/suites/${name}.ts written and built?)`);
  }
  const module = (await import(file.href)) as { default?: Suite };
  if (!module.default || typeof module.default.run !== 'function') {
    throw new Error(`bench/suites/${name}.ts does not default-export a Suite`);
  }
  return module.default;
}

/** Scratch dirs in use, removed on exit paths including Ctrl-C. */
const scratchDirs = new Set<string>();

function removeScratch(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  scratchDirs.delete(dir);
}

// Whatever way the bench ends (a crash, a closed stdout), no server it started outlives it and no
// scratch data stays behind: both steps are synchronous, as an 'exit' handler needs.
process.on('exit', () => {
  killTrackedChildren();
  for (const dir of scratchDirs) removeScratch(dir);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killTrackedChildren();
    for (const dir of scratchDirs) removeScratch(dir);
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

/** Returns the number of failed correctness checks. */
async function runSuite(suite: Suite, args: Args): Promise<number> {
  const dir = fs.mkdtempSync(path.join(args.baseDir, `ensync-bench-${suite.name}-`));
  scratchDirs.add(dir);
  try {
    const started = Date.now();
    const loadAtStart = os.loadavg()[0]!;
    console.error(`[${suite.name}] ${suite.description}${args.quick ? ' (quick)' : ''}; scratch dir ${dir}`);
    const { rows, checkFailures, notes } = await suite.run({
      quick: args.quick,
      dir,
      progress: (message) => console.error(`[${suite.name} +${((Date.now() - started) / 1000).toFixed(1)}s] ${message}`),
    });
    const machine = describeMachine();
    const file = writeResultFile(suite.name, machine, rows, args.resultsDir);
    console.log(renderTable(`${suite.name}${args.quick ? ' (quick)' : ''} on ${machine.cpus}x ${machine.cpuModel}, node ${machine.node}`, rows));
    for (const note of notes ?? []) console.log(`note: ${note}`);
    const warning = busyWarning(loadAtStart, os.loadavg()[0]!, machine.cpus);
    if (warning) console.log(warning);
    for (const failure of checkFailures) console.log(`CHECK FAILED: ${failure}`);
    console.log(`wrote ${path.relative(process.cwd(), file)} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    return checkFailures.length;
  } catch (err) {
    // Before the scratch dir goes: no child may keep writing into it.
    killTrackedChildren();
    throw err;
  } finally {
    removeScratch(dir);
  }
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  // Every suite is loaded before any runs: a missing one fails at once, not after an hour of others.
  let suites: Suite[];
  try {
    suites = await Promise.all(args.suites.map(loadSuite));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const started = Date.now();
  let checkFailures = 0;
  const failedSuites: string[] = [];
  for (const suite of suites) {
    try {
      checkFailures += await runSuite(suite, args);
    } catch (err) {
      // One suite failing (a peer that cannot be installed, say) does not cost the others' figures.
      console.error(`suite ${suite.name} failed:`, err);
      failedSuites.push(suite.name);
    }
  }
  if (failedSuites.length > 0) console.log(`FAILED SUITES: ${failedSuites.join(', ')}`);
  if (suites.length > 1) console.log(`${suites.length} suites in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return checkFailures > 0 || failedSuites.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('bench failed:', err);
    process.exit(1);
  },
);
