/** Top-level argument dispatch: global flags, then subcommand lookup. */
import { readPackageInfo } from '../config/package-info.js';
import { EXIT_OK, PROGRAM_NAME, usageError, type CliContext } from './command.js';
import { COMMANDS, DEFAULT_COMMAND } from './commands/index.js';
import { startOptionsHelp } from './commands/start.js';

export function topLevelUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `Usage: ${PROGRAM_NAME} [command] [options]`,
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global options:',
    '  -h, --help     print this help',
    '  -v, --version  print the version',
    '',
    `${startOptionsHelp()}`,
    '',
    `Run '${PROGRAM_NAME} help <command>' for a command's own help.`,
    '',
  ].join('\n');
}

export async function runCli(ctx: CliContext): Promise<number> {
  const [first, ...rest] = ctx.argv;
  if (first === '--version' || first === '-v') {
    ctx.stdout(`${readPackageInfo().version}\n`);
    return EXIT_OK;
  }
  if (first === '--help' || first === '-h') {
    ctx.stdout(topLevelUsage());
    return EXIT_OK;
  }
  if (first === 'help') return runHelp(ctx, rest);
  if (first === undefined || first.startsWith('-')) {
    return DEFAULT_COMMAND.run(ctx);
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (command === undefined) return usageError(ctx, `unknown command '${first}'`);
  return command.run({ ...ctx, argv: rest });
}

/** `help` prints the overview; `help <command>` prints that command's usage. */
function runHelp(ctx: CliContext, args: readonly string[]): number {
  if (args.length === 0) {
    ctx.stdout(topLevelUsage());
    return EXIT_OK;
  }
  if (args.length > 1) return usageError(ctx, `help takes one command name, got ${args.length}`);
  const command = COMMANDS.find((c) => c.name === args[0]);
  if (command === undefined) return usageError(ctx, `unknown command '${args[0]}'`);
  ctx.stdout(command.usage());
  return EXIT_OK;
}
