/** What a client did: totals since the engine started, and the rate over the last full second. */
export interface ClientActivityView {
  published: number;
  delivered: number;
  publishedPerSecond: number;
  deliveredPerSecond: number;
}

interface Entry {
  published: number;
  delivered: number;
  /** The second (ms / 1000, floored) `publishedNow` / `deliveredNow` count. */
  second: number;
  publishedNow: number;
  deliveredNow: number;
  publishedLast: number;
  deliveredLast: number;
}

/** Clients tracked at most; the least recently active are forgotten first. */
const MAX_CLIENTS = 100_000;

/**
 * Per-client publish and delivery counts with a one-second rate, kept on the engine's main thread
 * for operators (client status). Two counters per event: no allocation after a client's first.
 */
export class ClientActivity {
  private readonly entries = new Map<string, Entry>();

  published(client: string, count: number, nowMs: number): void {
    const entry = this.entry(client, nowMs);
    entry.published += count;
    entry.publishedNow += count;
  }

  delivered(client: string, count: number, nowMs: number): void {
    const entry = this.entry(client, nowMs);
    entry.delivered += count;
    entry.deliveredNow += count;
  }

  view(client: string, nowMs: number): ClientActivityView {
    const entry = this.entries.get(client);
    if (!entry) return { published: 0, delivered: 0, publishedPerSecond: 0, deliveredPerSecond: 0 };
    roll(entry, Math.floor(nowMs / 1000));
    return { published: entry.published, delivered: entry.delivered, publishedPerSecond: entry.publishedLast, deliveredPerSecond: entry.deliveredLast };
  }

  private entry(client: string, nowMs: number): Entry {
    const second = Math.floor(nowMs / 1000);
    let entry = this.entries.get(client);
    if (!entry) {
      if (this.entries.size >= MAX_CLIENTS) this.entries.delete(this.entries.keys().next().value!);
      entry = { published: 0, delivered: 0, second, publishedNow: 0, deliveredNow: 0, publishedLast: 0, deliveredLast: 0 };
      this.entries.set(client, entry);
    } else if (entry.second !== second) {
      roll(entry, second);
    }
    return entry;
  }
}

/** Move to `second`: the counting second becomes the last full one (or zero after a quiet gap). */
function roll(entry: Entry, second: number): void {
  if (entry.second === second) return;
  const consecutive = second === entry.second + 1;
  entry.publishedLast = consecutive ? entry.publishedNow : 0;
  entry.deliveredLast = consecutive ? entry.deliveredNow : 0;
  entry.publishedNow = 0;
  entry.deliveredNow = 0;
  entry.second = second;
}
