import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, nearly always 100). */
const TICKS_PER_S = ((): number => {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(value) && value > 0 ? value : 100;
  } catch {
    return 100;
  }
})();

/**
 * CPU time (user + system, all threads) a running process has used, in ms, from /proc/<pid>/stat:
 * how the bench measures servers it does not control (nats-server, redis-server, the engine).
 * Resolution is one clock tick (10 ms), fine over runs of seconds.
 */
export function processCpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) is in parentheses and may contain spaces: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of the stat line are fields 12 and 13 after comm and state.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1000) / TICKS_PER_S;
}

/** A window over which one process's CPU use is measured. */
export class CpuWindow {
  private readonly startCpuMs: number;
  private readonly startWallMs = performance.now();

  constructor(private readonly pid: number) {
    this.startCpuMs = processCpuMs(pid);
  }

  /** CPU used since the window opened, as a percentage of one core (2 busy cores = 200). */
  percent(): { cpuMs: number; wallMs: number; pct: number } {
    const cpuMs = processCpuMs(this.pid) - this.startCpuMs;
    const wallMs = performance.now() - this.startWallMs;
    return { cpuMs, wallMs, pct: wallMs > 0 ? (100 * cpuMs) / wallMs : 0 };
  }
}
