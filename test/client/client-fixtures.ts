import { EnSyncClient, type ConnectOptions, type ReceivedEvent, type Subscription } from '../../src/client/index.js';
import type { TestClient } from '../helpers/ws-engine.js';

/** Connect as a harness client (its raw secret key), with short reconnect delays for tests. */
export function connectAs(url: string, client: TestClient, options: Partial<ConnectOptions> = {}): Promise<EnSyncClient> {
  return EnSyncClient.connect(url, { clientId: client.id, secretKey: client.secretKey, reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, requestTimeoutMs: 10_000, ...options });
}

/** Reads a subscription's iterator one event at a time, without ending it (no `for await` break). */
export class EventReader {
  private readonly iterator: AsyncIterator<ReceivedEvent>;

  constructor(subscription: Subscription) {
    this.iterator = subscription[Symbol.asyncIterator]();
  }

  async next(timeoutMs = 5000): Promise<ReceivedEvent> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const result = await Promise.race([this.iterator.next(), timeout]);
      if (result.done) throw new Error('the subscription ended');
      return result.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Whether the iterator finishes (the subscription ended) — call only when no event is expected. */
  async ends(): Promise<boolean> {
    return (await this.iterator.next()).done === true;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll until `check` passes or `timeoutMs` runs out (then its last failure is thrown). */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(20);
    }
  }
}
