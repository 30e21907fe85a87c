import { Log } from '../../native-free-storage/index.js';
import type { LogOptionsInput } from './log-types.js';

/**
 * Opens logs for a test and closes whatever is still open in afterEach, so a failing
 * assertion never leaks file descriptors or a group-commit timer into the next test.
 */
export class OpenLogs {
  private readonly logs = new Set<Log>();

  async open(dir: string, options?: LogOptionsInput): Promise<Log> {
    const log = await Log.open(dir, options);
    this.logs.add(log);
    return log;
  }

  /** Closes one log the test is done with and stops tracking it. */
  async close(log: Log): Promise<void> {
    this.logs.delete(log);
    await log.close();
  }

  async closeAll(): Promise<void> {
    const logs = [...this.logs];
    this.logs.clear();
    for (const log of logs) {
      if (log.state === 'closed') continue;
      // Cleanup only: the test that left the log open has already reported its own failure.
      await log.close().catch(() => undefined);
    }
  }
}
