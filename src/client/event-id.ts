/**
 * Event ids made by the client, in the engine's ULID layout (docs/events.md): 10 characters of
 * millisecond time and 16 of randomness, Crockford base32. The client names every event before its
 * first send, so a publish re-sent after a reconnect is recognised by the engine as a duplicate.
 */
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;

/** Ids from one generator strictly increase (string order is generation order), like the engine's. */
export class EventIdGenerator {
  private lastTime = -1;
  /** The random part as base32 digits (0–31), most significant first. */
  private readonly random = new Uint8Array(RANDOM_CHARS);

  next(now: number = Date.now()): string {
    if (now > this.lastTime) {
      this.lastTime = now;
      crypto.getRandomValues(this.random);
      for (let i = 0; i < RANDOM_CHARS; i++) this.random[i]! &= 31;
    } else {
      // Same millisecond, or the clock stepped back: one more than the previous id.
      this.increment();
    }
    let time = '';
    let t = this.lastTime;
    for (let i = 0; i < TIME_CHARS; i++) {
      time = CROCKFORD[t % 32]! + time;
      t = Math.floor(t / 32);
    }
    let random = '';
    for (const digit of this.random) random += CROCKFORD[digit]!;
    return time + random;
  }

  private increment(): void {
    for (let i = RANDOM_CHARS - 1; i >= 0; i--) {
      if (this.random[i]! < 31) {
        this.random[i]!++;
        return;
      }
      this.random[i] = 0;
    }
    // 2^80 ids in one millisecond cannot happen; should the random part wrap, move time on.
    this.lastTime++;
  }
}
