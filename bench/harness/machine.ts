import os from 'node:os';

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  totalMemGiB: number;
  node: string;
  platform: string;
  kernel: string;
  date: string;
}

export function describeMachine(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    totalMemGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    kernel: os.release(),
    date: new Date().toISOString(),
  };
}

/**
 * Other processes competing for the 2 cores make every figure here pessimistic; the 1-minute load
 * average before and after a suite tells a reader whether to trust the run.
 */
export function busyWarning(loadAtStart: number, loadAtEnd: number, cpus: number): string | null {
  const worst = Math.max(loadAtStart, loadAtEnd);
  if (worst < 0.5 * cpus + 0.5) return null;
  return `WARNING: machine busy (1-min load ${loadAtStart.toFixed(2)} before, ${loadAtEnd.toFixed(2)} after, ${cpus} cpus): figures are pessimistic`;
}
