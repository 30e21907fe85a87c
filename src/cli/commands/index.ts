/** Registry of subcommands. A new subcommand is one file in this folder plus one entry here. */
import type { CliCommand } from '../command.js';
import { clientCommand } from './client.js';
import { keygenCommand } from './keygen.js';
import { startCommand } from './start.js';
import { statsCommand } from './stats.js';

export const COMMANDS: readonly CliCommand[] = [startCommand, keygenCommand, clientCommand, statsCommand];

/** Runs when no subcommand is named (`ensync-engine --port 8081`). */
export const DEFAULT_COMMAND: CliCommand = startCommand;
