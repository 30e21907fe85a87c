import { WorkHandle, type WorkSink } from './work-reporter.js';

/** What the replays need to know of a subscription. */
export interface ReplayedSubscription {
  readonly commitOffset: number;
}

interface SeekReplay {
  work: WorkHandle;
  from: number;
  to: number;
}

interface DeadLetterReplay {
  work: WorkHandle;
  /** Dead letters queued since this replay began. */
  total: number;
}

/**
 * Progress of the replays running in a shard: a subscription moved back in the log (done when its
 * commit point reaches where the log ended at the seek), and dead letters queued to go back (done
 * when all are put back). Reported as long work, so a replay of a large backlog shows in the log
 * and in /health while it runs.
 */
export class ReplayProgress {
  private readonly seeks = new Map<string, SeekReplay>();
  private readonly deadLetters = new Map<string, DeadLetterReplay>();

  constructor(
    private readonly shard: number,
    private readonly sink: WorkSink,
  ) {}

  /** `subscription` now reads again from `from`; the log ends at `to`. */
  seeked(subscription: string, from: number, to: number): void {
    this.seeks.get(subscription)?.work.finish();
    this.seeks.delete(subscription);
    if (to <= from) return; // a skip ahead is not a replay
    const work = new WorkHandle(this.sink, `replay:${subscription}:${this.shard}`, 'replay', this.shard, `subscription ${subscription} reads again from offset ${from}`, to - from, 'offsets');
    this.seeks.set(subscription, { work, from, to });
  }

  deadLettersQueued(subscription: string, added: number): void {
    if (added <= 0) return;
    const running = this.deadLetters.get(subscription);
    if (running) {
      running.total += added;
      running.work.step(`dead letters of ${subscription} go back`, running.total, 'events');
      return;
    }
    const work = new WorkHandle(this.sink, `dead-letter-replay:${subscription}:${this.shard}`, 'replay', this.shard, `dead letters of ${subscription} go back`, added, 'events');
    this.deadLetters.set(subscription, { work, total: added });
  }

  /** Report where each replay stands; `queued` tells how many dead letters still wait to go back. */
  report(subscriptions: ReadonlyMap<string, ReplayedSubscription>, queued: (subscription: string) => number): void {
    for (const [subscription, replay] of this.seeks) {
      const state = subscriptions.get(subscription);
      const done = state ? Math.min(replay.to, state.commitOffset) - replay.from : replay.to - replay.from;
      replay.work.advance(Math.max(0, done));
      if (!state || state.commitOffset >= replay.to) {
        replay.work.finish();
        this.seeks.delete(subscription);
      }
    }
    for (const [subscription, replay] of this.deadLetters) {
      const left = subscriptions.has(subscription) ? queued(subscription) : 0;
      replay.work.advance(replay.total - left);
      if (left === 0) {
        replay.work.finish();
        this.deadLetters.delete(subscription);
      }
    }
  }

  /** The shard is closing: the reports end (the replays' positions are durable and go on after a restart). */
  close(): void {
    for (const replay of [...this.seeks.values(), ...this.deadLetters.values()]) replay.work.finish();
    this.seeks.clear();
    this.deadLetters.clear();
  }
}
