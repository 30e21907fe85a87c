/**
 * Reconnect delays: exponential, capped, with jitter so that many clients cut off together do not
 * come back in lockstep.
 */
export interface ReconnectOptions {
  /** Delay before the first attempt (on average three quarters of it, with jitter); default 100 ms. */
  initialDelayMs?: number;
  /** The delay stops growing here; default 10 000 ms. */
  maxDelayMs?: number;
}

export const DEFAULT_RECONNECT: Readonly<Required<ReconnectOptions>> = Object.freeze({ initialDelayMs: 100, maxDelayMs: 10_000 });

/** Delay before attempt `attempt` (0 = the first): a random point in the upper half of min(max, initial × 2^attempt). */
export function backoffDelay(attempt: number, options: Required<ReconnectOptions>, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
