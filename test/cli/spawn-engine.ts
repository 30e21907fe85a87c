/** Test helper: runs the built CLI (dist/) as a child process and reads its JSON log lines. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN_JS = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

export function assertBuilt(): void {
  if (!existsSync(MAIN_JS)) {
    throw new Error(`${MAIN_JS} is missing: build first (npm test runs "tsc -b" before the tests)`);
  }
}

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface EngineChild {
  child: ChildProcess;
  lines: LogLine[];
  stderr(): string;
  /** Resolves with the first log line matching `msg`; rejects if the process exits first. */
  waitForLine(msg: string, timeoutMs?: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnEngine(args: string[], env: NodeJS.ProcessEnv = {}): EngineChild {
  const child = spawn(process.execPath, [MAIN_JS, ...args], {
    cwd: REPO_ROOT,
    // Only the variables the test sets; inherited ENSYNC_* values must not leak in.
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const waiters: Array<{ msg: string; resolve: (l: LogLine) => void }> = [];
  let stdoutRest = '';
  let stderrText = '';

  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (stdoutRest + chunk).split('\n');
    stdoutRest = parts.pop() ?? '';
    for (const part of parts) {
      if (part.trim() === '') continue;
      const line = JSON.parse(part) as LogLine;
      lines.push(line);
      for (const w of waiters.filter((x) => x.msg === line.msg)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderrText += chunk));

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );

  const waitForLine = (msg: string, timeoutMs = 20_000): Promise<LogLine> => {
    const seen = lines.find((l) => l.msg === msg);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no '${msg}' line within ${timeoutMs} ms; stderr: ${stderrText}`)), timeoutMs);
      waiters.push({ msg, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`engine exited (code ${code}, signal ${signal}) before '${msg}'; stderr: ${stderrText}`));
      });
    });
  };

  return { child, lines, stderr: () => stderrText, waitForLine, exited };
}

/** Runs the CLI to completion and returns its exit code and output. */
export async function runEngineToExit(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN_JS, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  return { code, stdout, stderr };
}
