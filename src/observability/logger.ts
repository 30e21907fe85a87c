/**
 * Minimal structured logger: one JSON object per line, one fact per line.
 * Writes synchronously to its sink so lines are not lost when the process exits right after logging.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines all carry `fields` (e.g. a component name). */
  child(fields: LogFields): Logger;
}

export type LineSink = (line: string) => void;

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function stdoutSink(line: string): void {
  process.stdout.write(line + '\n');
}

export function createLogger(
  options: { sink?: LineSink; level?: LogLevel; fields?: LogFields; now?: () => Date } = {},
): Logger {
  const sink = options.sink ?? stdoutSink;
  const minRank = LEVEL_RANK[options.level ?? 'info'];
  const base = options.fields ?? {};
  const now = options.now ?? (() => new Date());

  const write = (level: LogLevel, msg: string, fields: LogFields | undefined): void => {
    if (LEVEL_RANK[level] < minRank) return;
    const record = { ts: now().toISOString(), level, msg, ...base, ...toPlain(fields) };
    sink(JSON.stringify(record));
  };

  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    child: (fields) => createLogger({ sink, level: options.level ?? 'info', fields: { ...base, ...fields }, now }),
  };
}

/** Errors do not survive JSON.stringify (their fields are non-enumerable); keep code and message. */
function toPlain(fields: LogFields | undefined): LogFields | undefined {
  if (fields === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    out[key] = value instanceof Error ? describeError(value) : value;
  }
  return out;
}

export function describeError(err: Error): { name: string; code?: unknown; message: string } {
  const code = (err as { code?: unknown }).code;
  return code === undefined
    ? { name: err.name, message: err.message }
    : { name: err.name, code, message: err.message };
}
