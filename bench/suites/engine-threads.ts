import fs from 'node:fs';
import crypto from 'node:crypto';
import { promisify } from 'node:util';

/**
 * CPU time per OS thread of this process, read from /proc (Linux). Node 20 has no
 * process.threadCpuUsage and a Worker exposes no CPU time, but every thread is a task under
 * /proc/self/task: its schedstat gives nanoseconds on a CPU and nanoseconds runnable but waiting
 * for one (time other processes or threads took from it). Elsewhere only the total is available.
 */
export interface ThreadTimes {
  /** Nanoseconds on a CPU. */
  runNs: number;
  /** Nanoseconds runnable but waiting for a CPU; null when the kernel does not keep schedstat. */
  waitNs: number | null;
}

const TASK_DIR = '/proc/self/task';
/** /proc/<pid>/stat reports times in USER_HZ, which Linux fixes at 100 for user space. */
const USER_HZ = 100;

export function threadTimesAvailable(): boolean {
  return fs.existsSync(TASK_DIR);
}

export function readThreadTimes(): Map<number, ThreadTimes> {
  const times = new Map<number, ThreadTimes>();
  if (!threadTimesAvailable()) return times;
  for (const name of fs.readdirSync(TASK_DIR)) {
    const tid = Number(name);
    try {
      times.set(tid, readOne(tid));
    } catch {
      // The thread exited between listing and reading: it has no further time to count.
    }
  }
  return times;
}

function readOne(tid: number): ThreadTimes {
  try {
    const [run, wait] = fs.readFileSync(`${TASK_DIR}/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isFinite(run) && Number.isFinite(wait)) return { runNs: run!, waitNs: wait! };
  } catch {
    // Kernels without schedstat: fall back to the tick counts of stat below.
  }
  const stat = fs.readFileSync(`${TASK_DIR}/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return { runNs: (ticks * 1e9) / USER_HZ, waitNs: null };
}

/** CPU milliseconds of one group of threads over an interval. */
export interface GroupCpu {
  threads: number;
  cpuMs: number;
  /** Runnable-but-waiting milliseconds; null when unknown. */
  waitMs: number | null;
}

export interface CpuSplit {
  main: GroupCpu;
  /** The engine's shard worker threads (threads created by Engine.open). */
  workers: GroupCpu;
  /** The libuv pool: fsyncs and other async fs calls (empty when its threads are unknown). */
  fsPool: GroupCpu;
  /** Everything else: V8's GC and compiler helper threads (and the libuv pool when unknown). */
  background: GroupCpu;
}

const pbkdf2 = promisify(crypto.pbkdf2);
/** Each probe job keeps a pool thread busy for tens of milliseconds: far above any helper's noise. */
const PROBE_ITERATIONS = 60_000;
const PROBE_MIN_CPU_NS = 10e6;

/**
 * The libuv pool's threads (they run fsyncs and async fs calls). They exist before any engine code
 * runs (module loading starts them), so they are found by what they do: a burst of pool jobs
 * (async PBKDF2) shows up as CPU time on exactly those threads. Null if none could be told apart.
 */
export async function identifyFsPool(): Promise<Set<number> | null> {
  const size = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  const before = readThreadTimes();
  await Promise.all(Array.from({ length: 2 * size }, () => pbkdf2('probe', 'salt', PROBE_ITERATIONS, 32, 'sha256')));
  const after = readThreadTimes();
  const pool = new Set<number>();
  for (const [tid, end] of after) {
    const start = before.get(tid);
    if (tid !== process.pid && start && end.runNs - start.runNs >= PROBE_MIN_CPU_NS) pool.add(tid);
  }
  return pool.size > 0 ? pool : null;
}

/**
 * Split the CPU time between two samples into main thread, the engine's worker threads, the libuv
 * pool and the rest. Threads that exited in between are not counted (their last interval is lost).
 */
export function splitCpu(
  before: Map<number, ThreadTimes>,
  after: Map<number, ThreadTimes>,
  workerTids: ReadonlySet<number>,
  fsPoolTids: ReadonlySet<number> | null,
): CpuSplit {
  const empty = (): GroupCpu => ({ threads: 0, cpuMs: 0, waitMs: 0 });
  const split: CpuSplit = { main: empty(), workers: empty(), fsPool: empty(), background: empty() };
  for (const [tid, end] of after) {
    const start = before.get(tid) ?? { runNs: 0, waitNs: end.waitNs === null ? null : 0 };
    const group =
      tid === process.pid ? split.main : workerTids.has(tid) ? split.workers : fsPoolTids?.has(tid) ? split.fsPool : split.background;
    group.threads++;
    group.cpuMs += (end.runNs - start.runNs) / 1e6;
    group.waitMs = group.waitMs === null || end.waitNs === null || start.waitNs === null ? null : group.waitMs + (end.waitNs - start.waitNs) / 1e6;
  }
  return split;
}

/** Thread ids in `after` that are not in `before`. */
export function newThreads(before: Map<number, ThreadTimes>, after: Map<number, ThreadTimes>): Set<number> {
  const created = new Set<number>();
  for (const tid of after.keys()) if (!before.has(tid)) created.add(tid);
  return created;
}
