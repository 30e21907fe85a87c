/**
 * `ensync-engine client add|list|remove`: manage the durable client registry (`<data dir>/clients.json`).
 * Works with or without a running engine: the store replaces the file atomically.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CONFIG_OPTIONS } from '../../config/config-options.js';
import { CONFIG_DEFAULTS } from '../../config/engine-config.js';
import { EngineError } from '../../engine/errors.js';
import { validateClientRecord, type ClientRecord } from '../../registry/client-record.js';
import { ClientStore } from '../../registry/client-store.js';
import { EXIT_FAILURE, EXIT_OK, PROGRAM_NAME, usageError, type CliCommand, type CliContext } from '../command.js';

export const clientCommand: CliCommand = {
  name: 'client',
  summary: 'add, list or remove the clients (services) allowed to connect',
  usage: clientUsage,
  run: runClient,
};

const DATA_DIR_SPEC = CONFIG_OPTIONS.find((o) => o.key === 'dataDir')!;

function clientUsage(): string {
  return [
    `Usage: ${PROGRAM_NAME} client <add|list|remove> [options]`,
    '',
    `  client add <id> --public-key <base64> [--publish <pattern>]... [--subscribe <pattern>]...`,
    `             [--require-signatures] [--replace] [--data-dir <path>]`,
    '      register a client; prints the stored record as one JSON line',
    '  client list [--data-dir <path>]',
    '      print every client as one JSON array on one line',
    '  client remove <id> [--data-dir <path>]',
    '      remove a client',
    '',
    'Options:',
    '  --public-key <base64>   the raw 32-byte Ed25519 public key, base64 (see keygen)',
    "  --publish <pattern>     a type pattern the client may publish to ('*' one segment, '**' the rest); repeatable",
    '  --subscribe <pattern>   a type pattern the client may subscribe within; repeatable',
    '  --require-signatures    every event the client publishes must be signed',
    '  --replace               overwrite an existing client with the same id (e.g. a new key)',
    `  --data-dir <path>       data directory (env ${DATA_DIR_SPEC.env}, default ${CONFIG_DEFAULTS.dataDir}), as for start`,
    '  -h, --help              print this help',
    '',
    'Exit codes: 0 ok, 2 usage error or invalid value, 1 other failure (e.g. duplicate id, unknown id).',
    '',
  ].join('\n');
}

/** Something the user typed wrong: exit 2 with the usage hint. */
class UsageProblem extends Error {}

type FlagKind = 'value' | 'list' | 'switch';

interface ParsedArgs {
  positionals: string[];
  values: Map<string, string[]>;
  switches: Set<string>;
  help: boolean;
}

const SUBCOMMAND_FLAGS: Record<string, Record<string, FlagKind>> = {
  add: { 'public-key': 'value', publish: 'list', subscribe: 'list', 'require-signatures': 'switch', replace: 'switch', 'data-dir': 'value' },
  list: { 'data-dir': 'value' },
  remove: { 'data-dir': 'value' },
};
const VALUE_NAMES: Record<string, string> = { 'public-key': 'base64', publish: 'pattern', subscribe: 'pattern', 'data-dir': 'path' };

async function runClient(ctx: CliContext): Promise<number> {
  const [subcommand, ...rest] = ctx.argv;
  if (subcommand === '--help' || subcommand === '-h') {
    ctx.stdout(clientUsage());
    return EXIT_OK;
  }
  if (subcommand === undefined || subcommand.startsWith('-')) {
    return usageError(ctx, 'client needs a subcommand: add, list or remove (before any option)');
  }
  const flags = SUBCOMMAND_FLAGS[subcommand];
  if (flags === undefined) return usageError(ctx, `unknown client subcommand '${subcommand}' (expected add, list or remove)`);
  try {
    const args = readArgs(rest, flags);
    if (args.help) {
      ctx.stdout(clientUsage());
      return EXIT_OK;
    }
    const dataDir = resolveDataDir(args, ctx);
    if (subcommand === 'add') return runAdd(ctx, args, dataDir);
    if (subcommand === 'list') return runList(ctx, args, dataDir);
    return runRemove(ctx, args, dataDir);
  } catch (error) {
    if (error instanceof UsageProblem) return usageError(ctx, error.message);
    if (error instanceof EngineError) {
      ctx.stderr(`${PROGRAM_NAME}: error: ${error.message}\n`);
      return EXIT_FAILURE;
    }
    throw error;
  }
}

function runAdd(ctx: CliContext, args: ParsedArgs, dataDir: string): number {
  const id = onePositional(args, 'client add', '<id>');
  const publicKey = args.values.get('public-key')?.[0];
  if (publicKey === undefined) throw new UsageProblem('client add needs --public-key <base64>');
  const candidate: ClientRecord = {
    id,
    publicKey,
    publish: args.values.get('publish') ?? [],
    subscribe: args.values.get('subscribe') ?? [],
    requireSignatures: args.switches.has('require-signatures'),
    addedAt: Date.now(),
  };
  let record: ClientRecord;
  try {
    record = validateClientRecord(candidate);
  } catch (error) {
    // A value the user typed is invalid: name the argument it came from.
    if (error instanceof EngineError && error.code === 'INVALID_ARGUMENT') {
      throw new UsageProblem(`${argumentOf(error.field)}: ${error.message}`);
    }
    throw error;
  }
  const stored = ClientStore.open(dataDir).add(record, { replace: args.switches.has('replace') });
  ctx.stdout(`${JSON.stringify(stored)}\n`);
  return EXIT_OK;
}

function runList(ctx: CliContext, args: ParsedArgs, dataDir: string): number {
  if (args.positionals.length > 0) throw new UsageProblem(`client list takes no arguments, got '${args.positionals[0]}'`);
  ctx.stdout(`${JSON.stringify(ClientStore.open(dataDir).list())}\n`);
  return EXIT_OK;
}

function runRemove(_ctx: CliContext, args: ParsedArgs, dataDir: string): number {
  const id = onePositional(args, 'client remove', '<id>');
  ClientStore.open(dataDir).remove(id);
  return EXIT_OK;
}

function argumentOf(field: string | undefined): string {
  if (field === 'id') return '<id>';
  if (field === 'publicKey') return '--public-key';
  if (field === 'publish' || field === 'subscribe') return `--${field}`;
  return field ?? 'argument';
}

function onePositional(args: ParsedArgs, command: string, name: string): string {
  if (args.positionals.length === 0) throw new UsageProblem(`${command} needs ${name}`);
  if (args.positionals.length > 1) throw new UsageProblem(`${command} takes one ${name}, got '${args.positionals[1]}' as well`);
  return args.positionals[0]!;
}

/** Same precedence and default as `start`: --data-dir, then the env var, then ./data, relative to cwd. */
function resolveDataDir(args: ParsedArgs, ctx: CliContext): string {
  const fromFlag = args.values.get('data-dir')?.[0];
  const fromEnv = ctx.env[DATA_DIR_SPEC.env];
  const [value, source] =
    fromFlag !== undefined
      ? [fromFlag, '--data-dir']
      : fromEnv !== undefined && fromEnv !== ''
        ? [fromEnv, DATA_DIR_SPEC.env]
        : [CONFIG_DEFAULTS.dataDir, 'data dir'];
  if (value.trim() === '' || value.includes('\0')) throw new UsageProblem(`${source} must be a non-empty path`);
  return path.resolve(ctx.cwd, value);
}

/** Token by token, like `start`, so every mistake gets one clear line instead of Node's message. */
function readArgs(argv: readonly string[], flags: Record<string, FlagKind>): ParsedArgs {
  const { tokens } = parseArgs({
    args: [...argv],
    options: {
      ...Object.fromEntries(Object.entries(flags).map(([name, kind]) => [name, { type: kind === 'switch' ? ('boolean' as const) : ('string' as const) }])),
      help: { type: 'boolean', short: 'h' },
    },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const parsed: ParsedArgs = { positionals: [], values: new Map(), switches: new Set(), help: false };
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') {
      parsed.positionals.push(token.value);
      continue;
    }
    const kind = flags[token.name];
    const isHelp = token.name === 'help' && (token.rawName === '--help' || token.rawName === '-h');
    if (isHelp || kind === 'switch') {
      if (token.value !== undefined) throw new UsageProblem(`${token.rawName} does not take a value`);
      if (isHelp) parsed.help = true;
      else parsed.switches.add(token.name);
      continue;
    }
    if (kind === undefined || token.rawName !== `--${token.name}`) throw new UsageProblem(`unknown flag '${token.rawName}'`);
    const valueName = VALUE_NAMES[token.name] ?? 'value';
    if (token.value === undefined) throw new UsageProblem(`${token.rawName} needs a value <${valueName}>`);
    // `--public-key --publish x` would otherwise silently take "--publish" as the key.
    if (!token.inlineValue && token.value.startsWith('-')) {
      throw new UsageProblem(`${token.rawName} needs a value <${valueName}>; for a value starting with '-' write ${token.rawName}=${token.value}`);
    }
    const existing = parsed.values.get(token.name);
    if (existing !== undefined && kind === 'value') throw new UsageProblem(`${token.rawName} may be given only once`);
    parsed.values.set(token.name, [...(existing ?? []), token.value]);
  }
  return parsed;
}
