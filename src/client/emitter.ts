/**
 * A small typed event emitter (node:events is not available in browsers). A listener that throws
 * does not stop the others; its error goes to the `onListenerError` hook.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (...args: any[]) => unknown;
export type EventMap = { [name: string]: Listener };

export class Emitter<Events extends EventMap> {
  private readonly listeners = new Map<keyof Events, Set<Listener>>();

  on<K extends keyof Events>(name: K, listener: Events[K]): this {
    let set = this.listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener);
    return this;
  }

  off<K extends keyof Events>(name: K, listener: Events[K]): this {
    this.listeners.get(name)?.delete(listener);
    return this;
  }

  listenerCount(name: keyof Events): number {
    return this.listeners.get(name)?.size ?? 0;
  }

  /** Call every listener of `name`; false when there was none. */
  protected emit<K extends keyof Events>(name: K, ...args: Parameters<Events[K]>): boolean {
    const set = this.listeners.get(name);
    if (set === undefined || set.size === 0) return false;
    for (const listener of [...set]) {
      try {
        const result = listener(...args);
        if (isPromiseLike(result)) result.then(undefined, (error: unknown) => this.onListenerError(name, error, args));
      } catch (error) {
        this.onListenerError(name, error, args);
      }
    }
    return true;
  }

  /** A listener threw or its promise rejected. */
  protected onListenerError(_name: keyof Events, _error: unknown, _args: unknown[]): void {}
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
