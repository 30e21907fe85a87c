import { randomFillSync } from 'node:crypto';
import { EngineError } from './errors.js';

/**
 * Event ids in the ULID layout: 26 characters of Crockford base32, the first 10 a 48-bit
 * millisecond timestamp and the last 16 an 80-bit random part. Ids from one thread increase
 * strictly: within one millisecond (or if the clock steps back) the random part of the previous id
 * is incremented instead of drawn afresh, so string order is generation order.
 *
 * This is on the publish hot path, so random bytes come from a bounded pool refilled in chunks,
 * and the first 25 characters are cached between ids of the same millisecond.
 */
export const EVENT_ID_LENGTH = 26;
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TIME_CHARS = 10;
const RANDOM_DIGITS = 16;
const MAX_TIME_MS = 2 ** 48 - 1;
/** 256 fresh-millisecond ids per refill: amortises the cost of the system call. */
const RANDOM_POOL_BYTES = 4096;

const randomPool = Buffer.allocUnsafe(RANDOM_POOL_BYTES);
let randomPoolPosition = RANDOM_POOL_BYTES;

/** Time of the last id; ids never go below it. */
let lastTimeMs = -1;
/** Random part of the last id as 5-bit digits, most significant first. */
const randomDigits = new Uint8Array(RANDOM_DIGITS);
/** The last id without its final character. */
let cachedPrefix = '';

export function newEventId(nowMs: number = Date.now()): string {
  if (!Number.isInteger(nowMs) || nowMs < 0 || nowMs > MAX_TIME_MS) {
    throw new EngineError('INVALID_ARGUMENT', `event id time must be an integer in [0, 2^48), got ${nowMs}`, {
      field: 'nowMs',
    });
  }
  if (nowMs > lastTimeMs) {
    startMillisecond(nowMs);
  } else if (randomDigits[RANDOM_DIGITS - 1]! < 31) {
    randomDigits[RANDOM_DIGITS - 1]!++;
  } else {
    incrementRandomWithCarry();
  }
  return cachedPrefix + ALPHABET[randomDigits[RANDOM_DIGITS - 1]!];
}

/** The millisecond timestamp encoded in an id's first 10 characters. */
export function eventIdTime(id: string): number {
  if (typeof id !== 'string' || id.length !== EVENT_ID_LENGTH) {
    throw new EngineError('INVALID_ARGUMENT', `not an engine event id: ${JSON.stringify(String(id))}`, { field: 'id' });
  }
  let time = 0;
  for (let i = 0; i < TIME_CHARS; i++) {
    const digit = ALPHABET.indexOf(id[i]!);
    if (digit < 0) {
      throw new EngineError('INVALID_ARGUMENT', `not an engine event id: ${JSON.stringify(id)}`, { field: 'id' });
    }
    time = time * 32 + digit;
  }
  return time;
}

function startMillisecond(timeMs: number): void {
  lastTimeMs = timeMs;
  if (randomPoolPosition + RANDOM_DIGITS > RANDOM_POOL_BYTES) {
    randomFillSync(randomPool);
    randomPoolPosition = 0;
  }
  for (let i = 0; i < RANDOM_DIGITS; i++) randomDigits[i] = randomPool[randomPoolPosition + i]! & 31;
  randomPoolPosition += RANDOM_DIGITS;
  rebuildPrefix();
}

function incrementRandomWithCarry(): void {
  let i = RANDOM_DIGITS - 1;
  while (i >= 0 && randomDigits[i] === 31) {
    randomDigits[i] = 0;
    i--;
  }
  if (i < 0) {
    // All 80 bits used up within one millisecond: borrow the next one so ids keep increasing.
    startMillisecond(lastTimeMs + 1);
    return;
  }
  randomDigits[i]!++;
  rebuildPrefix();
}

function rebuildPrefix(): void {
  let prefix = '';
  let time = lastTimeMs;
  for (let i = 0; i < TIME_CHARS; i++) {
    prefix = ALPHABET[time % 32] + prefix;
    time = Math.floor(time / 32);
  }
  for (let i = 0; i < RANDOM_DIGITS - 1; i++) prefix += ALPHABET[randomDigits[i]!];
  cachedPrefix = prefix;
}
