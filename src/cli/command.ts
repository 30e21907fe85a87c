/** The shape every CLI subcommand implements; each lives in its own file under commands/. */
import type { Env } from '../config/parse-config.js';

export interface CliContext {
  /** Arguments after the subcommand name. */
  argv: readonly string[];
  env: Env;
  cwd: string;
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface CliCommand {
  name: string;
  /** One line for the command list in `--help`. */
  summary: string;
  /** Full usage text for `<command> --help`. */
  usage(): string;
  /** Resolves to the process exit code: 0 ok, 1 runtime failure, 2 usage/configuration error. */
  run(ctx: CliContext): Promise<number>;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export const PROGRAM_NAME = 'ensync-engine';

/** One line on stderr for anything the user typed wrong. */
export function usageError(ctx: CliContext, message: string): number {
  ctx.stderr(`${PROGRAM_NAME}: error: ${message} (see '${PROGRAM_NAME} --help')\n`);
  return EXIT_USAGE;
}
