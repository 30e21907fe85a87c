/**
 * Structured logging on pino: one JSON object per line (`ts`, `level` as a word, `msg`, fields),
 * one fact per line. Written synchronously, so lines are not lost when the process exits right
 * after logging. The Logger interface keeps the message first and the fields second.
 */
import { pino, type Logger as PinoLogger } from 'pino';

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

export function createLogger(
  options: { sink?: LineSink; level?: LogLevel; fields?: LogFields; now?: () => Date } = {},
): Logger {
  const sink = options.sink;
  const now = options.now ?? (() => new Date());
  const destination = sink ? { write: (line: string) => sink(line.endsWith('\n') ? line.slice(0, -1) : line) } : pino.destination({ dest: 1, sync: true });
  const root = pino(
    {
      level: options.level ?? 'info',
      base: null,
      messageKey: 'msg',
      timestamp: () => `,"ts":"${now().toISOString()}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return wrap(options.fields ? root.child(toPlain(options.fields)!) : root);
}

function wrap(logger: PinoLogger): Logger {
  return {
    debug: (msg, fields) => logger.debug(toPlain(fields) ?? {}, msg),
    info: (msg, fields) => logger.info(toPlain(fields) ?? {}, msg),
    warn: (msg, fields) => logger.warn(toPlain(fields) ?? {}, msg),
    error: (msg, fields) => logger.error(toPlain(fields) ?? {}, msg),
    child: (fields) => wrap(logger.child(toPlain(fields)!)),
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
