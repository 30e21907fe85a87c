import crypto from 'node:crypto';
import { publicKeyFromRaw } from '../../engine/signing.js';
import { authMessage } from '../../protocol/index.js';

/** Bytes of the random challenge a connection must sign. */
export const NONCE_BYTES = 32;

/** What a connection is challenged with: fresh per connection, so an answer cannot be replayed. */
export interface Challenge {
  serverId: string;
  connectionId: string;
  nonce: Uint8Array;
}

export function newChallenge(serverId: string): Challenge {
  return { serverId, connectionId: crypto.randomUUID(), nonce: new Uint8Array(crypto.randomBytes(NONCE_BYTES)) };
}

/**
 * Whether `signature` is the client's Ed25519 signature over this connection's challenge. The
 * verification runs on libuv's thread pool (crypto.verify with a callback), not on the thread
 * serving sockets: a burst of connects does not stall the traffic of connected clients.
 */
export function verifyChallenge(challenge: Challenge, publicKey: Uint8Array, signature: Uint8Array): Promise<boolean> {
  if (signature.byteLength !== 64) return Promise.resolve(false);
  const message = authMessage(challenge.serverId, challenge.connectionId, challenge.nonce);
  return new Promise((resolve) => {
    try {
      crypto.verify(null, message, publicKeyFromRaw(publicKey), signature, (error, valid) => resolve(!error && valid));
    } catch {
      resolve(false);
    }
  });
}

/**
 * Slows down addresses that keep failing authentication: after a few failures in a window, each
 * further attempt waits longer before its answer (up to a cap). Bounded: at most `maxAddresses`
 * addresses are tracked, the oldest forgotten first.
 */
export class AuthThrottle {
  private readonly failures = new Map<string, { count: number; since: number }>();

  constructor(
    private readonly freeFailures = 3,
    private readonly windowMs = 60_000,
    private readonly maxDelayMs = 5_000,
    private readonly maxAddresses = 10_000,
  ) {}

  /** How long to wait before answering an attempt from `address`. */
  delayFor(address: string, nowMs: number): number {
    const entry = this.failures.get(address);
    if (!entry || nowMs - entry.since > this.windowMs || entry.count < this.freeFailures) return 0;
    return Math.min(this.maxDelayMs, 100 * 2 ** (entry.count - this.freeFailures));
  }

  failed(address: string, nowMs: number): void {
    let entry = this.failures.get(address);
    if (!entry || nowMs - entry.since > this.windowMs) entry = { count: 0, since: nowMs };
    entry.count++;
    this.failures.delete(address);
    this.failures.set(address, entry);
    if (this.failures.size > this.maxAddresses) this.failures.delete(this.failures.keys().next().value!);
  }

  succeeded(address: string): void {
    this.failures.delete(address);
  }
}
