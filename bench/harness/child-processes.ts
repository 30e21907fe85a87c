import type { ChildProcess } from 'node:child_process';

/**
 * Child processes a suite started and that are still running. On Ctrl-C/SIGTERM the harness kills
 * them before deleting the scratch dir, so no child keeps writing into (or recreating) it.
 */
const running = new Set<ChildProcess>();

export function trackChild(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

export function killTrackedChildren(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}
