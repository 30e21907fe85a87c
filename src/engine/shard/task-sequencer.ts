/**
 * Runs a shard's tasks in the order the engine numbered them. The pool may hand tasks to the worker
 * out of order (a requeued task goes behind later ones), and async task bodies interleave, so order
 * is enforced here: a task's synchronous start waits for its turn; what it then awaits (an fsync)
 * may overlap with the next task's start. Parked tasks are bounded by the engine's in-flight limits.
 */
export class TaskSequencer {
  private next = 0;
  private readonly parked = new Map<number, () => void>();

  /** Resolves when it is task `seq`'s turn to start. */
  turn(seq: number): Promise<void> {
    if (seq === this.next) return Promise.resolve();
    if (seq < this.next || this.parked.has(seq)) {
      return Promise.reject(new Error(`task sequence ${seq} was already run`));
    }
    return new Promise((resolve) => this.parked.set(seq, resolve));
  }

  /** Task `seq` has started; let the next one start. */
  started(seq: number): void {
    if (seq !== this.next) return;
    this.next = seq + 1;
    const wake = this.parked.get(this.next);
    if (wake) {
      this.parked.delete(this.next);
      wake();
    }
  }
}
