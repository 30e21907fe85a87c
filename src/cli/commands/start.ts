/** `ensync-engine start`: run the engine in the foreground until SIGINT/SIGTERM. */
import { ConfigError } from '../../config/config-error.js';
import { CONFIG_OPTIONS } from '../../config/config-options.js';
import { readPackageInfo } from '../../config/package-info.js';
import { parseConfig } from '../../config/parse-config.js';
import { EngineProcess } from '../../engine-process.js';
import { createLogger } from '../../observability/logger.js';
import {
  EXIT_FAILURE,
  EXIT_OK,
  PROGRAM_NAME,
  usageError,
  type CliCommand,
  type CliContext,
} from '../command.js';
import { watchShutdownSignals } from '../shutdown-signals.js';

export const startCommand: CliCommand = {
  name: 'start',
  summary: 'run the engine in the foreground (default command)',
  usage: startUsage,
  run: runStart,
};

export function startOptionsHelp(): string {
  const rows = CONFIG_OPTIONS.map((o) => [`--${o.flag} <${o.valueName}>`, o.env, o.defaultValue, o.description]);
  const widths = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map(
    ([flag, env, def, desc]) =>
      `  ${flag!.padEnd(widths[0]!)}  ${env!.padEnd(widths[1]!)}  ${('default ' + def).padEnd(widths[2]! + 8)}  ${desc}`,
  );
  return ['Start options (flag, env var, default; flags win over env vars):', ...lines].join('\n');
}

function startUsage(): string {
  return [
    `Usage: ${PROGRAM_NAME} start [options]`,
    '',
    'Runs the engine until SIGINT/SIGTERM. GET /health on the admin address reports status.',
    '',
    startOptionsHelp(),
    '  -h, --help  print this help',
    '',
  ].join('\n');
}

async function runStart(ctx: CliContext): Promise<number> {
  let parsed;
  try {
    parsed = parseConfig(ctx.argv, ctx.env, ctx.cwd);
  } catch (err) {
    if (err instanceof ConfigError) return usageError(ctx, err.message);
    throw err;
  }
  if (parsed.kind === 'help') {
    ctx.stdout(startUsage());
    return EXIT_OK;
  }
  const { config } = parsed;
  const { version } = readPackageInfo();
  const logger = createLogger({ level: config.logLevel });

  let stopSignal!: (signal: NodeJS.Signals) => void;
  const stopRequested = new Promise<NodeJS.Signals>((resolve) => (stopSignal = resolve));
  // Installed before startup so a signal during startup still ends in a clean stop.
  watchShutdownSignals({
    first: (signal) => stopSignal(signal),
    second: (signal) => {
      logger.warn('second signal, exiting without waiting for shutdown', { signal });
      process.exit(EXIT_FAILURE);
    },
  });

  logger.info('engine starting', { version, pid: process.pid, node: process.version });
  logger.info('config', {
    dataDir: config.dataDir,
    clientHost: config.client.host,
    clientPort: config.client.port,
    adminHost: config.admin.host,
    adminPort: config.admin.port,
    fsync: config.storage.fsync,
    fsyncIntervalMs: config.storage.fsyncIntervalMs,
  });

  let engine: EngineProcess;
  try {
    engine = await EngineProcess.start({ config, version, logger });
  } catch (err) {
    logger.error('engine failed to start', { error: err instanceof Error ? err : String(err) });
    return EXIT_FAILURE;
  }
  logger.info('engine ready');

  const signal = await stopRequested;
  logger.info('shutdown requested', { signal });
  try {
    await engine.stop();
  } catch {
    // EngineProcess.stop already logged which step failed.
    return EXIT_FAILURE;
  }
  logger.info('engine stopped', { exitCode: EXIT_OK });
  return EXIT_OK;
}
