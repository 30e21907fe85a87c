import { spawn, type ChildProcess } from 'node:child_process';
import { trackChild } from './child-processes.js';

/** Lines of a child's output kept for error messages. */
const TAIL_LINES = 20;

class LineTail {
  private readonly lines: string[] = [];
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > TAIL_LINES) this.lines.shift();
  }
  toString(): string {
    return this.lines.join('\n');
  }
}

export class ChildFailedError extends Error {
  readonly code = 'CHILD_FAILED';
}

/** Calls `onLine` for each complete line of `stream`. */
function readLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (line.length > 0) onLine(line);
  });
}

export interface ServerProcess<T> {
  child: ChildProcess;
  pid: number;
  /** What `ready` returned for the line that said the server is up (its port, say). */
  info: T;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Start a server process (tracked, so Ctrl-C kills it) and wait until one of its output lines
 * (stdout or stderr) makes `ready` return a value. Fails with the last lines of its output when it
 * exits first or is not ready within `timeoutMs`.
 */
export function startServerProcess<T>(
  name: string,
  command: string,
  args: string[],
  opts: { ready: (line: string) => T | undefined; timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<ServerProcess<T>> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
  trackChild(child);
  const tail = new LineTail();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (graceMs = 10_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      void stop(1000);
      reject(new ChildFailedError(`${name} was not ready within ${opts.timeoutMs} ms; its last output:\n${tail}`));
    }, opts.timeoutMs);
    const onLine = (line: string): void => {
      tail.push(line);
      if (settled) return;
      let info: T | undefined;
      try {
        info = opts.ready(line);
      } catch {
        // A line that looked like the ready line but did not parse: keep waiting.
        return;
      }
      if (info === undefined) return;
      settled = true;
      clearTimeout(timer);
      resolve({ child, pid: child.pid!, info, stop });
    };
    readLines(child.stdout!, onLine);
    readLines(child.stderr!, onLine);
    child.once('error', (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new ChildFailedError(`${name} could not be started (${command}): ${error.message}`));
    });
    child.once('exit', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new ChildFailedError(`${name} exited (${signal ?? code}) before it was ready; its last output:\n${tail}`));
    });
  });
}

/** A running driver process that reports on stdout with one JSON object per line. */
export interface JsonLineChild<R> {
  child: ChildProcess;
  /** The last line the process printed before exiting with status 0. */
  result: Promise<R>;
}

/**
 * Run `node script <task as JSON>`: `onMessage` sees every JSON line it prints, `result` is the last
 * one. Its stderr is passed through, prefixed, and kept for the error when it fails; it is killed
 * after `timeoutMs`.
 */
export function runJsonLineChild<R>(name: string, script: string, task: unknown, opts: { timeoutMs: number; onMessage?: (message: Record<string, unknown>, child: ChildProcess) => void }): JsonLineChild<R> {
  const child = spawn(process.execPath, [script, JSON.stringify(task)], { stdio: ['pipe', 'pipe', 'pipe'] });
  trackChild(child);
  const tail = new LineTail();
  const result = new Promise<R>((resolve, reject) => {
    let last: Record<string, unknown> | null = null;
    const timer = setTimeout(() => {
      tail.push(`(killed after ${opts.timeoutMs} ms)`);
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    readLines(child.stdout!, (line) => {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        tail.push(line);
        return;
      }
      last = message;
      opts.onMessage?.(message, child);
    });
    readLines(child.stderr!, (line) => {
      tail.push(line);
      process.stderr.write(`  [${name}] ${line}\n`);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0 && last !== null) resolve(last as R);
      else reject(new ChildFailedError(`${name} exited (${signal ?? code}); its last output:\n${tail}`));
    });
  });
  return { child, result };
}
