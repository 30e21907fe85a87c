import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** A program the bench runs and the Debian package that ships it. */
export interface DebianProgram {
  command: string;
  pkg: string;
}

export class PackageInstallError extends Error {
  readonly code = 'PACKAGE_INSTALL_FAILED';
}

/** Debian puts daemons in sbin, which a non-root PATH may lack. */
const EXTRA_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/bin', '/usr/local/sbin'];
const INSTALL_TIMEOUT_MS = 10 * 60_000;

export function findCommand(command: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return null;
}

function runApt(prefix: string[], args: string[]): { ok: boolean; output: string } {
  const [program, ...rest] = [...prefix, 'apt-get', ...args];
  const result = spawnSync(program!, rest, {
    encoding: 'utf8',
    timeout: INSTALL_TIMEOUT_MS,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}`;
  return { ok: result.status === 0, output };
}

const lastLines = (text: string, n = 8): string => text.trim().split('\n').slice(-n).join('\n');

/**
 * The path of each program, installing the missing ones with apt-get (with `sudo -n` when not
 * root: a password prompt would hang the bench). `apt-get update` is run only when a plain install
 * fails (a stale or empty package list). Throws PackageInstallError saying what to run by hand.
 */
export function ensureDebianPrograms(programs: DebianProgram[], progress: (message: string) => void): Map<string, string> {
  const found = new Map<string, string>();
  const missing: DebianProgram[] = [];
  for (const program of programs) {
    const at = findCommand(program.command);
    if (at) found.set(program.command, at);
    else missing.push(program);
  }
  if (missing.length === 0) return found;

  const packages = [...new Set(missing.map((m) => m.pkg))];
  const manual = `apt-get install -y ${packages.join(' ')}`;
  if (!findCommand('apt-get')) {
    throw new PackageInstallError(`${missing.map((m) => m.command).join(', ')} not found and apt-get is not available: install ${packages.join(', ')} by hand`);
  }
  const isRoot = process.getuid?.() === 0;
  if (!isRoot && !findCommand('sudo')) {
    throw new PackageInstallError(`${missing.map((m) => m.command).join(', ')} not found; not root and no sudo: run \`${manual}\` as root`);
  }
  const prefix = isRoot ? [] : ['sudo', '-n'];
  progress(`installing Debian packages: ${packages.join(' ')}${isRoot ? '' : ' (sudo)'}`);
  let install = runApt(prefix, ['install', '-y', '--no-install-recommends', ...packages]);
  if (!install.ok) {
    progress('apt-get install failed; running apt-get update and trying again');
    const update = runApt(prefix, ['update']);
    if (!update.ok) throw new PackageInstallError(`apt-get update failed (run \`apt-get update && ${manual}\` by hand):\n${lastLines(update.output)}`);
    install = runApt(prefix, ['install', '-y', '--no-install-recommends', ...packages]);
  }
  if (!install.ok) throw new PackageInstallError(`\`${manual}\` failed:\n${lastLines(install.output)}`);
  for (const program of missing) {
    const at = findCommand(program.command);
    if (!at) throw new PackageInstallError(`package ${program.pkg} installed but ${program.command} is still not found`);
    found.set(program.command, at);
  }
  return found;
}
