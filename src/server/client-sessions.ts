/** A client's status as operators see it. */
export type ClientStatus = 'active' | 'idle' | 'disconnected';

export interface ClientSession {
  clientId: string;
  status: ClientStatus;
  connections: number;
  /** Last frame from the client (ms since the epoch). */
  lastSeenAt: number;
  /** When its last connection closed, while disconnected. */
  disconnectedAt: number | null;
}

interface Entry {
  connections: number;
  lastSeenAt: number;
  disconnectedAt: number | null;
}

/**
 * Every client's status: `active` (a frame within the idle threshold), `idle` (connected, quiet),
 * `disconnected` (since when). Bounded: disconnected clients beyond `maxRemembered` are forgotten,
 * the longest gone first.
 */
export class ClientSessions {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly idleAfterMs = 30_000,
    private readonly maxRemembered = 100_000,
  ) {}

  connected(clientId: string, nowMs: number): void {
    const entry = this.entries.get(clientId) ?? { connections: 0, lastSeenAt: nowMs, disconnectedAt: null };
    entry.connections++;
    entry.lastSeenAt = nowMs;
    entry.disconnectedAt = null;
    this.entries.delete(clientId);
    this.entries.set(clientId, entry);
  }

  seen(clientId: string, nowMs: number): void {
    const entry = this.entries.get(clientId);
    if (entry) entry.lastSeenAt = nowMs;
  }

  disconnected(clientId: string, nowMs: number): void {
    const entry = this.entries.get(clientId);
    if (!entry || entry.connections === 0) return;
    entry.connections--;
    if (entry.connections > 0) return;
    entry.disconnectedAt = nowMs;
    // Map order is insertion order: moving it last keeps the longest-gone first.
    this.entries.delete(clientId);
    this.entries.set(clientId, entry);
    this.forgetOldest();
  }

  get(clientId: string, nowMs: number): ClientSession | null {
    const entry = this.entries.get(clientId);
    return entry ? this.view(clientId, entry, nowMs) : null;
  }

  list(nowMs: number): ClientSession[] {
    return [...this.entries].map(([clientId, entry]) => this.view(clientId, entry, nowMs));
  }

  private view(clientId: string, entry: Entry, nowMs: number): ClientSession {
    const status: ClientStatus = entry.connections === 0 ? 'disconnected' : nowMs - entry.lastSeenAt <= this.idleAfterMs ? 'active' : 'idle';
    return { clientId, status, connections: entry.connections, lastSeenAt: entry.lastSeenAt, disconnectedAt: entry.disconnectedAt };
  }

  private forgetOldest(): void {
    if (this.entries.size <= this.maxRemembered) return;
    for (const [clientId, entry] of this.entries) {
      if (this.entries.size <= this.maxRemembered) return;
      if (entry.connections === 0) this.entries.delete(clientId);
    }
  }
}
