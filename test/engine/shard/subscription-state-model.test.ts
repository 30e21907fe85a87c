import { describe, expect, it } from 'vitest';
import { DeliveryPacker, META_FIELDS } from '../../../src/engine/delivery-batch.js';
import { OffsetRangeSet } from '../../../src/engine/shard/offset-range-set.js';
import { EXPIRED, SubscriptionState, type DeadLetter } from '../../../src/engine/shard/subscription-state.js';
import { resolveSubscriptionSpec } from '../../../src/engine/subscription-spec.js';
import { Prng } from '../../helpers/prng.js';

/**
 * A model test of SubscriptionState, which reuses its pending records (PendingEventPool): long
 * seeded random sequences of reads, dispatches, settlements, timeouts, consumer changes, replays
 * and seeks, checked after every step against an independent model of what each offset's state
 * must be. A record handed out again while still in use, or carrying one event's attempt, state,
 * body, key, replayed flag or expiry into another's, shows as a delivery, dead letter, settlement,
 * read or commit point the model does not allow. (A stale consumer or due time is overwritten by
 * the first delivery, so it cannot show.)
 */

const T0 = 1_000_000;
const ACK_TIMEOUT_MS = 200;
const MAX_DELIVERIES = 3;
const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'];
const CONSUMERS = ['c0', 'c1', 'c2', 'c3'];

/** The body of the event at `offset`: its offset (u32 LE), then a filler derived from it (0-6 bytes). */
function bodyOf(offset: number): Uint8Array {
  const body = new Uint8Array(4 + (offset % 7));
  new DataView(body.buffer).setUint32(0, offset, true);
  for (let i = 4; i < body.length; i++) body[i] = (offset * 13 + i) & 0xff;
  return body;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

interface Sent {
  offset: number;
  attempt: number;
  consumer: string;
  body: Uint8Array;
}

/** Dispatch into a packer and unpack what it took: deliveries in order, with their body bytes. */
function dispatchAt(state: SubscriptionState, now: number): { sent: Sent[]; dead: DeadLetter[] } {
  const packer = new DeliveryPacker();
  const dead = state.dispatch(now, packer);
  if (packer.count === 0) return { sent: [], dead };
  const { packed } = packer.take();
  const sent: Sent[] = [];
  let start = 0;
  for (let i = 0; i < packed.count; i++) {
    const m = i * META_FIELDS;
    const end = packed.bodyEnds[i]!;
    sent.push({
      offset: packed.meta[m]!,
      attempt: packed.meta[m + 1]!,
      consumer: packed.names[packed.meta[m + 3]!]!,
      body: packed.bodies.subarray(start, end),
    });
    start = end;
  }
  return { sent, dead };
}

function stateWith(ordered: boolean, maxInFlight: number, maxDeliveries = MAX_DELIVERIES, ackTimeoutMs = ACK_TIMEOUT_MS): SubscriptionState {
  const spec = resolveSubscriptionSpec('svc', { name: 'sub', pattern: 't/*', ordered, maxInFlight, maxDeliveries, ackTimeoutMs });
  return new SubscriptionState(spec, 0, new OffsetRangeSet(), 0);
}

type Status = 'ready' | 'inflight' | 'waiting' | 'delayed' | 'deferring';

/** The model of one pending offset (read and not yet done, or replayed and not yet done again). */
interface Entry {
  offset: number;
  key: string;
  status: Status;
  /** Deliveries since it was read (or replayed). */
  attempt: number;
  consumer: string | null;
  dueAt: number;
  replayed: boolean;
  expiresAt: number;
}

/** An event of the simulated log: its body is bytes [start, end) of a buffer shared with others. */
interface LoggedEvent {
  key: string;
  expiresAt: number;
  buffer: Uint8Array;
  start: number;
  end: number;
}

interface Config {
  seed: number;
  ordered: boolean;
  maxInFlight: number;
  steps: number;
}

class ModelRun {
  readonly state: SubscriptionState;
  private readonly rng: Prng;
  private readonly ordered: boolean;
  private readonly max: number;
  private now = T0;
  private readonly log: LoggedEvent[] = [];
  /** Offsets of each key, increasing (for the per-key order check). */
  private readonly keyOffsets = new Map<string, number[]>();
  /** Per key: index in keyOffsets of the lowest offset at or above the seek position maybe not done. */
  private readonly keyLow = new Map<string, number>();
  private readonly live = new Map<number, Entry>();
  /** Offsets done since the last seek (acked, dead-lettered, deferred; replayed ones stay here). */
  private done = new Set<number>();
  /** Offsets dead-lettered since the last seek and not replayed since: what a replay may put back. */
  private dead = new Set<number>();
  private seekPos = 0;
  /** Lowest offset at or above seekPos not in `done`: the commit point. */
  private low = 0;
  /** The commit point after the last step (it does not go back between seeks). */
  private lastCommit = 0;
  private readonly consumers = new Map<string, { credits: number; held: Set<number> }>();
  private deadLettered = 0;
  private paused = false;
  /** Offsets delivered lately (settling them again is stale). */
  private readonly recent: number[] = [];
  private readonly trace: string[] = [];
  private step = 0;
  readonly stats = {
    firstDeliveries: 0,
    redeliveries: 0,
    deadMax: 0,
    deadExpiredReady: 0,
    deadExpiredWaiting: 0,
    acked: 0,
    ignoredAcks: 0,
    nackedDelayed: 0,
    discarded: 0,
    deferredDone: 0,
    deferFailed: 0,
    replays: 0,
    replayedDelivered: 0,
    seeks: 0,
    evictedHeld: 0,
    passedOverHeld: 0,
    detachRedeliveries: 0,
  };

  constructor(private readonly config: Config) {
    this.rng = new Prng(config.seed);
    this.ordered = config.ordered;
    this.max = config.maxInFlight;
    this.state = stateWith(config.ordered, config.maxInFlight);
    for (const key of KEYS) {
      this.keyOffsets.set(key, []);
      this.keyLow.set(key, 0);
    }
  }

  run(): void {
    this.attach('c0', 2);
    this.attach('c1', 3);
    for (this.step = 0; this.step < this.config.steps; this.step++) {
      this.now += this.rng.int(0, 20);
      this.randomStep();
      this.checkInvariants();
    }
  }

  private fail(message: string): never {
    const { seed, ordered, maxInFlight } = this.config;
    throw new Error(`seed ${seed} ordered=${ordered} maxInFlight=${maxInFlight} step ${this.step} (now ${this.now}): ${message}\nlast operations:\n${this.trace.slice(-30).join('\n')}`);
  }

  private check(condition: boolean, message: () => string): void {
    if (!condition) this.fail(message());
  }

  private note(op: string): void {
    this.trace.push(`#${this.step} ${op}`);
    if (this.trace.length > 200) this.trace.splice(0, 100);
  }

  private randomStep(): void {
    const r = this.rng.next() * 100;
    if (r < 8) {
      // Keep a modest backlog ahead of the read offset: publishing is not what is tested.
      if (this.log.length - this.state.readOffset < 3 * this.max) this.publish(this.rng.int(1, 6));
    } else if (r < 22) this.feed();
    else if (r < 44) this.dispatch();
    else if (r < 58) this.ack(this.pickOffsets(null));
    else if (r < 66) this.nack(this.pickOffsets('inflight'), this.rng.next() < 0.5 ? 0 : this.rng.int(1, 300));
    else if (r < 69) this.discard(this.pickOffsets(null), this.rng.pick(['bad', 'poison', 'x']));
    else if (r < 73) this.defer(this.pickOffsets('inflight'));
    else if (r < 76) this.deferred(this.pickOffsets('deferring'));
    else if (r < 78) this.deferFailed(this.pickOffsets('deferring'));
    else if (r < 85) this.expire();
    else if (r < 87) {
      this.now += ACK_TIMEOUT_MS + this.rng.int(0, 200);
      this.expire();
    } else if (r < 88.5) this.detach(this.rng.pick(CONSUMERS));
    else if (r < 91) this.attach(this.rng.pick(CONSUMERS), this.rng.int(1, 5));
    else if (r < 92.5) this.replay();
    else if (r < 93) this.cursor();
    else if (r < 93.2) this.togglePause();
    else if (r < 93.35) this.seek();
    else {
      // The usual pump: read, then deliver.
      this.feed();
      this.dispatch();
    }
  }

  // --- helpers of the model ---

  private outstanding(): number {
    let n = 0;
    for (const entry of this.live.values()) if (entry.status !== 'ready') n++;
    return n;
  }

  private readyCount(): number {
    let n = 0;
    for (const entry of this.live.values()) if (entry.status === 'ready') n++;
    return n;
  }

  /** Whether an entry holds its key (ordered mode): delivered at least once and not done. */
  private holds(entry: Entry): boolean {
    return entry.status !== 'ready' && !(entry.status === 'waiting' && entry.attempt === 0);
  }

  private holderOf(key: string): number | undefined {
    for (const entry of this.live.values()) if (entry.key === key && this.holds(entry)) return entry.offset;
    return undefined;
  }

  private release(entry: Entry): void {
    if (entry.consumer !== null) this.consumers.get(entry.consumer)?.held.delete(entry.offset);
    entry.consumer = null;
  }

  private toWaiting(entry: Entry): void {
    this.release(entry);
    entry.status = 'waiting';
  }

  private settle(entry: Entry, how: 'acked' | 'dead' | 'deferred'): void {
    this.release(entry);
    this.live.delete(entry.offset);
    this.done.add(entry.offset);
    if (how === 'dead') {
      this.dead.add(entry.offset);
      this.deadLettered++;
    }
  }

  /** The lowest offset of `key` at or above the seek position not done. */
  private lowestOpenOfKey(key: string): number | undefined {
    const offsets = this.keyOffsets.get(key)!;
    let i = this.keyLow.get(key)!;
    while (i < offsets.length && this.done.has(offsets[i]!)) i++;
    this.keyLow.set(key, i);
    return offsets[i];
  }

  /** 1-3 offsets: pending ones (of `prefer` state when given), stale, unknown or repeated. */
  private pickOffsets(prefer: Status | null): number[] {
    const picked: number[] = [];
    const count = this.rng.int(1, 3);
    const liveOffsets = [...this.live.values()];
    const preferred = prefer === null ? liveOffsets : liveOffsets.filter((entry) => entry.status === prefer);
    for (let i = 0; i < count; i++) {
      const r = this.rng.next();
      if (r < 0.1 && picked.length > 0) picked.push(this.rng.pick(picked));
      else if (r < 0.55 && preferred.length > 0) picked.push(this.rng.pick(preferred).offset);
      else if (r < 0.7 && liveOffsets.length > 0) picked.push(this.rng.pick(liveOffsets).offset);
      else if (r < 0.88 && this.recent.length > 0) picked.push(this.rng.pick(this.recent));
      else if (r < 0.94) picked.push(this.log.length + this.rng.int(0, 5));
      else picked.push(this.rng.int(0, this.log.length));
    }
    return picked;
  }

  // --- operations ---

  /** Append events; their bodies share one buffer, with gaps around them. */
  private publish(count: number): void {
    const first = this.log.length;
    const bodies: Uint8Array[] = [];
    const starts: number[] = [];
    let size = this.rng.int(0, 3);
    for (let i = 0; i < count; i++) {
      const body = bodyOf(first + i);
      bodies.push(body);
      starts.push(size);
      size += body.length + this.rng.int(0, 3);
    }
    const buffer = new Uint8Array(size).fill(0xee);
    for (let i = 0; i < count; i++) {
      buffer.set(bodies[i]!, starts[i]!);
      const offset = first + i;
      const key = this.rng.pick(KEYS);
      const r = this.rng.next();
      // Some expired already, some soon (mostly while read ahead), some later (mostly while redelivered).
      const expiresAt = r < 0.06 ? this.now - this.rng.int(0, 50) : r < 0.16 ? this.now + this.rng.int(1, 1500) : r < 0.24 ? this.now + this.rng.int(1500, 6000) : 0;
      this.log.push({ key, expiresAt, buffer, start: starts[i]!, end: starts[i]! + bodies[i]!.length });
      this.keyOffsets.get(key)!.push(offset);
    }
    this.note(`publish ${first}..${first + count - 1}`);
  }

  /** What the shard's feeder does: read from readOffset while the read-ahead has room, offering what is wanted. */
  private feed(): void {
    const state = this.state;
    const offered: number[] = [];
    for (;;) {
      // Reading readRoom in ordered mode with a full read-ahead gives up the events behind held keys.
      if (this.ordered && this.readyCount() >= this.max) {
        for (const entry of [...this.live.values()]) {
          if (entry.status === 'ready' && this.holderOf(entry.key) !== undefined) {
            this.live.delete(entry.offset);
            this.stats.evictedHeld++;
          }
        }
      }
      const room = state.readRoom;
      const expectedRoom = Math.max(0, this.max - this.readyCount());
      this.check(room === expectedRoom, () => `readRoom ${room}, expected ${expectedRoom}`);
      if (room === 0 || state.readOffset >= this.log.length) break;
      const offset = state.readOffset;
      this.check(offset >= this.seekPos, () => `readOffset ${offset} below the seek position ${this.seekPos}`);
      state.readOffset = offset + 1;
      const event = this.log[offset]!;
      const held = this.ordered && this.holderOf(event.key) !== undefined;
      const expected = !this.live.has(offset) && !this.done.has(offset) && !held;
      const wants = state.wants(offset, event.key, null);
      this.check(wants === expected, () => `wants(${offset}) ${wants}, expected ${expected} (live ${this.live.get(offset)?.status}, done ${this.done.has(offset)}, key held ${held})`);
      if (!wants) {
        if (held && !this.live.has(offset) && !this.done.has(offset)) this.stats.passedOverHeld++;
        continue;
      }
      state.offer(offset, event.key, event.buffer, event.start, event.end, event.expiresAt);
      this.live.set(offset, { offset, key: event.key, status: 'ready', attempt: 0, consumer: null, dueAt: 0, replayed: false, expiresAt: event.expiresAt });
      offered.push(offset);
    }
    this.note(`feed offered [${offered.join(',')}], readOffset ${state.readOffset}`);
  }

  private dispatch(): void {
    const now = this.now;
    const active = this.consumers.size > 0 && !this.paused;
    // Keys held before: a replayed event waits behind its key's holder even when that holder is
    // dead-lettered later in the same pass (the redelivery queue is walked once, in offset order).
    const heldBefore = new Map<string, number>();
    if (this.ordered) for (const entry of this.live.values()) if (this.holds(entry)) heldBefore.set(entry.key, entry.offset);
    const { sent, dead } = dispatchAt(this.state, now);
    this.note(`dispatch: sent [${sent.map((s) => `${s.offset}#${s.attempt}>${s.consumer}`).join(',')}] dead [${dead.map((d) => `${d.offset}#${d.attempts}:${d.reason}`).join(',')}]`);
    if (!active) {
      this.check(sent.length === 0 && dead.length === 0, () => 'an inactive subscription dispatched');
      return;
    }
    const seen = new Set<number>();
    for (const letter of dead) {
      const offset = letter.offset;
      this.check(!seen.has(offset), () => `${offset} came back twice from one dispatch`);
      seen.add(offset);
      const entry = this.live.get(offset);
      this.check(entry !== undefined && (entry.status === 'ready' || entry.status === 'waiting'), () => `dead letter ${offset} was ${entry?.status ?? 'not pending'}`);
      const e = entry!;
      this.check(letter.key === offset, () => `dead letter ${offset} has key ${letter.key}`);
      this.check(letter.replayed === e.replayed, () => `dead letter ${offset} replayed ${letter.replayed}, expected ${e.replayed}`);
      const expired = e.expiresAt > 0 && e.expiresAt <= now;
      if (e.status === 'ready') {
        this.check(expired && letter.reason === EXPIRED && letter.attempts === 0, () => `read-ahead dead letter ${JSON.stringify(letter)} (expiresAt ${e.expiresAt})`);
        this.stats.deadExpiredReady++;
      } else if (expired) {
        this.check(letter.reason === EXPIRED && letter.attempts === e.attempt, () => `expired dead letter ${JSON.stringify(letter)}, expected ${e.attempt} attempts`);
        this.stats.deadExpiredWaiting++;
      } else {
        this.check(
          e.attempt >= MAX_DELIVERIES && letter.attempts === e.attempt && letter.reason === `not acked after ${e.attempt} deliveries`,
          () => `dead letter ${JSON.stringify(letter)}, model attempt ${e.attempt}, expiresAt ${e.expiresAt}`,
        );
        this.stats.deadMax++;
      }
      this.settle(e, 'dead');
    }
    for (const delivery of sent) {
      const offset = delivery.offset;
      const expectedBody = bodyOf(offset);
      this.check(sameBytes(delivery.body, expectedBody), () => `delivery of ${offset} has body [${[...delivery.body].join(',')}], expected [${[...expectedBody].join(',')}]`);
      this.check(!seen.has(offset), () => `${offset} went out twice (or also dead-lettered) in one dispatch`);
      seen.add(offset);
      const entry = this.live.get(offset);
      this.check(
        entry !== undefined && (entry.status === 'ready' || entry.status === 'waiting'),
        () => `delivered ${offset} (attempt ${delivery.attempt}) while ${entry?.status ?? (this.done.has(offset) ? 'done' : 'not read')}`,
      );
      const e = entry!;
      this.check(delivery.attempt === e.attempt + 1, () => `delivered ${offset} with attempt ${delivery.attempt}, expected ${e.attempt + 1}`);
      this.check(delivery.attempt <= MAX_DELIVERIES, () => `delivered ${offset} with attempt ${delivery.attempt} > maxDeliveries`);
      this.check(e.expiresAt === 0 || e.expiresAt > now, () => `delivered ${offset} expired at ${e.expiresAt}`);
      const consumer = this.consumers.get(delivery.consumer);
      this.check(consumer !== undefined, () => `delivered ${offset} to ${delivery.consumer}, not attached`);
      this.check(consumer!.held.size < consumer!.credits, () => `delivered ${offset} to ${delivery.consumer} holding ${consumer!.held.size} of ${consumer!.credits} credits`);
      if (this.ordered) {
        const holder = this.holderOf(e.key);
        this.check(holder === undefined || holder === offset, () => `delivered ${offset} while its key ${e.key} is held by ${holder}`);
        if (e.status === 'ready') {
          const lowest = this.lowestOpenOfKey(e.key);
          this.check(lowest === offset, () => `first delivery of ${offset} (key ${e.key}) before ${lowest} of the same key is done`);
        }
      }
      if (e.status === 'ready') this.stats.firstDeliveries++;
      else this.stats.redeliveries++;
      if (e.replayed && e.attempt === 0) this.stats.replayedDelivered++;
      e.status = 'inflight';
      e.attempt = delivery.attempt;
      e.consumer = delivery.consumer;
      e.dueAt = now + ACK_TIMEOUT_MS;
      consumer!.held.add(offset);
      this.recent.push(offset);
      if (this.recent.length > 64) this.recent.shift();
    }
    const outstanding = this.outstanding();
    this.check(outstanding <= this.max, () => `${outstanding} outstanding after dispatch`);
    // Nothing deliverable is left behind while a consumer has credit.
    const spare = [...this.consumers.values()].some((c) => c.held.size < c.credits);
    if (!spare) return;
    for (const entry of this.live.values()) {
      if (entry.status === 'waiting') {
        const holder = this.ordered ? (this.holderOf(entry.key) ?? heldBefore.get(entry.key)) : undefined;
        this.check(
          this.ordered && entry.replayed && entry.attempt === 0 && holder !== undefined && holder !== entry.offset,
          () => `${entry.offset} (attempt ${entry.attempt}, key ${entry.key}) left waiting while a consumer has credit`,
        );
      } else if (entry.status === 'ready' && outstanding < this.max) {
        this.check(this.ordered && this.holderOf(entry.key) !== undefined, () => `${entry.offset} left in the read-ahead with room in the window and a consumer with credit`);
      }
    }
  }

  private ack(offsets: number[]): void {
    const expected: number[] = [];
    const replayedDone: number[] = [];
    for (const offset of offsets) {
      const entry = this.live.get(offset);
      if (entry === undefined || entry.status === 'ready') continue;
      expected.push(offset);
      if (entry.replayed) replayedDone.push(offset);
      this.settle(entry, 'acked');
    }
    const result = this.state.ack(offsets);
    this.note(`ack [${offsets.join(',')}] -> [${result.acked.join(',')}]`);
    this.check(
      JSON.stringify(result) === JSON.stringify({ acked: expected, keys: expected, replayedDone }),
      () => `ack [${offsets.join(',')}] returned ${JSON.stringify(result)}, expected acked ${JSON.stringify(expected)} replayedDone ${JSON.stringify(replayedDone)}`,
    );
    this.stats.acked += expected.length;
    this.stats.ignoredAcks += offsets.length - expected.length;
  }

  private nack(offsets: number[], delayMs: number): void {
    const expected: number[] = [];
    for (const offset of offsets) {
      const entry = this.live.get(offset);
      if (entry === undefined || entry.status !== 'inflight') continue;
      expected.push(offset);
      if (delayMs > 0) {
        this.release(entry);
        entry.status = 'delayed';
        entry.dueAt = this.now + delayMs;
        this.stats.nackedDelayed++;
      } else {
        this.toWaiting(entry);
      }
    }
    const nacked = this.state.nack(offsets, delayMs, this.now);
    this.note(`nack [${offsets.join(',')}] delay ${delayMs} -> [${nacked.join(',')}]`);
    this.check(JSON.stringify(nacked) === JSON.stringify(expected), () => `nack returned ${JSON.stringify(nacked)}, expected ${JSON.stringify(expected)}`);
  }

  private discard(offsets: number[], reason: string): void {
    const expected: DeadLetter[] = [];
    for (const offset of offsets) {
      const entry = this.live.get(offset);
      if (entry === undefined || entry.status === 'ready') continue;
      expected.push({ offset, key: offset, reason: `discarded: ${reason}`, attempts: entry.attempt, replayed: entry.replayed });
      this.settle(entry, 'dead');
    }
    const dead = this.state.discard(offsets, reason);
    this.note(`discard [${offsets.join(',')}] -> [${dead.map((d) => `${d.offset}#${d.attempts}`).join(',')}]`);
    this.check(JSON.stringify(dead) === JSON.stringify(expected), () => `discard returned ${JSON.stringify(dead)}, expected ${JSON.stringify(expected)}`);
    this.stats.discarded += expected.length;
  }

  private defer(offsets: number[]): void {
    const expected: number[] = [];
    for (const offset of offsets) {
      const entry = this.live.get(offset);
      if (entry === undefined || entry.status !== 'inflight') continue;
      expected.push(offset);
      this.release(entry);
      entry.status = 'deferring';
    }
    const deferring = this.state.defer(offsets);
    this.note(`defer [${offsets.join(',')}] -> [${deferring.join(',')}]`);
    this.check(JSON.stringify(deferring) === JSON.stringify(expected), () => `defer returned ${JSON.stringify(deferring)}, expected ${JSON.stringify(expected)}`);
  }

  private deferred(offsets: number[]): void {
    const expected: number[] = [];
    for (const offset of offsets) {
      const entry = this.live.get(offset);
      if (entry === undefined || entry.status !== 'deferring') continue;
      expected.push(offset);
      this.settle(entry, 'deferred');
    }
    const result = this.state.deferred(offsets);
    this.note(`deferred [${offsets.join(',')}] -> [${result.finished.join(',')}]`);
    this.check(JSON.stringify(result) === JSON.stringify({ finished: expected, keys: expected }), () => `deferred returned ${JSON.stringify(result)}, expected ${JSON.stringify(expected)}`);
    this.stats.deferredDone += expected.length;
  }

  private deferFailed(offsets: number[]): void {
    for (const offset of offsets) {
      const entry = this.live.get(offset);
      if (entry === undefined || entry.status !== 'deferring') continue;
      this.toWaiting(entry);
      this.stats.deferFailed++;
    }
    this.state.deferFailed(offsets);
    this.note(`deferFailed [${offsets.join(',')}]`);
  }

  private expire(): void {
    for (const entry of this.live.values()) {
      if ((entry.status === 'inflight' || entry.status === 'delayed') && entry.dueAt <= this.now) this.toWaiting(entry);
    }
    this.state.expire(this.now);
    this.note('expire');
  }

  private detach(id: string): void {
    const consumer = this.consumers.get(id);
    if (consumer !== undefined) {
      for (const entry of this.live.values()) {
        if (entry.status === 'inflight' && entry.consumer === id) {
          this.toWaiting(entry);
          this.stats.detachRedeliveries++;
        }
      }
      this.check(consumer.held.size === 0, () => `${id} detached still holding ${[...consumer.held].join(',')}`);
      this.consumers.delete(id);
    }
    this.state.detach(id);
    this.note(`detach ${id}`);
  }

  private attach(id: string, credits: number): void {
    const consumer = this.consumers.get(id);
    if (consumer !== undefined) consumer.credits = credits;
    else this.consumers.set(id, { credits, held: new Set() });
    this.state.attach(id, credits);
    this.note(`attach ${id} credits ${credits}`);
  }

  /** Put back a dead letter (paced by the window's room, as the shard does), or try a pending one. */
  private replay(): void {
    if (this.rng.next() < 0.2 && this.live.size > 0) {
      const entry = this.rng.pick([...this.live.values()]);
      const event = this.log[entry.offset]!;
      const replayed = this.state.replay(entry.offset, event.key, event.buffer, event.start, event.end);
      this.note(`replay pending ${entry.offset} -> ${replayed}`);
      this.check(!replayed, () => `replay of pending ${entry.offset} (${entry.status}) was taken`);
      return;
    }
    if (this.dead.size === 0 || this.state.outstandingRoom === 0) return;
    const offset = this.rng.pick([...this.dead]);
    const event = this.log[offset]!;
    const replayed = this.state.replay(offset, event.key, event.buffer, event.start, event.end);
    this.note(`replay ${offset} -> ${replayed}`);
    this.check(replayed, () => `replay of dead letter ${offset} was refused`);
    this.dead.delete(offset);
    // A replayed event does not hold the commit point: it stays in `done` for the model.
    this.live.set(offset, { offset, key: event.key, status: 'waiting', attempt: 0, consumer: null, dueAt: 0, replayed: true, expiresAt: 0 });
    this.stats.replays++;
  }

  private cursor(): void {
    this.advanceLow();
    const cursor = this.state.cursor();
    this.note(`cursor commit ${cursor.commit}`);
    this.check(cursor.commit === this.state.commitOffset && cursor.commit <= this.low, () => `cursor commit ${cursor.commit}, the lowest offset not done ${this.low}`);
    this.check(Object.keys(cursor.lanes).length === 0, () => `cursor lanes ${JSON.stringify(cursor.lanes)}`);
  }

  private togglePause(): void {
    this.paused = !this.paused;
    this.state.paused = this.paused;
    this.note(`paused ${this.paused}`);
  }

  /** Mostly back (a replay from an offset), sometimes ahead (a skip). */
  private seek(): void {
    this.advanceLow();
    const target = this.rng.next() < 0.7 ? this.rng.int(Math.max(0, this.low - 40), this.low) : this.rng.int(this.low, this.log.length);
    this.state.seek(target, {});
    this.note(`seek ${target}`);
    this.live.clear();
    this.done = new Set();
    this.dead = new Set();
    for (const consumer of this.consumers.values()) consumer.held.clear();
    this.seekPos = target;
    this.low = target;
    this.lastCommit = target;
    for (const [key, offsets] of this.keyOffsets) {
      let i = 0;
      while (i < offsets.length && offsets[i]! < target) i++;
      this.keyLow.set(key, i);
    }
    this.check(this.state.readOffset === target, () => `readOffset ${this.state.readOffset} after seek to ${target}`);
    this.stats.seeks++;
  }

  private advanceLow(): void {
    while (this.done.has(this.low)) this.low++;
  }

  private checkInvariants(): void {
    const state = this.state;
    const outstanding = this.outstanding();
    this.check(state.inFlight === outstanding, () => `inFlight ${state.inFlight}, model ${outstanding}`);
    this.check(outstanding <= this.max, () => `${outstanding} outstanding > maxInFlight`);
    this.check(state.outstandingRoom === this.max - outstanding, () => `outstandingRoom ${state.outstandingRoom}`);
    this.check(state.hasConsumers === this.consumers.size > 0, () => `hasConsumers ${state.hasConsumers}`);
    this.check(state.deadLettered === this.deadLettered, () => `deadLettered ${state.deadLettered}, model ${this.deadLettered}`);
    this.check(state.readOffset <= this.log.length, () => `readOffset ${state.readOffset} past the log end ${this.log.length}`);
    this.advanceLow();
    const commit = state.commitOffset;
    // The commit point never passes an offset not done. Unordered, reads never rewind, so it is
    // exactly the lowest one; ordered, a read offset rewound to a passed-over event may sit on
    // done ones, so it may lag, but it never goes back.
    if (this.ordered) {
      this.check(commit <= this.low && commit >= this.lastCommit, () => `commitOffset ${commit}: the lowest offset not done is ${this.low}, the commit point was ${this.lastCommit}`);
    } else {
      this.check(commit === this.low, () => `commitOffset ${commit}, expected ${this.low} (the lowest offset not done)`);
    }
    this.lastCommit = commit;
    for (const entry of this.live.values()) {
      if (!entry.replayed) this.check(entry.offset >= commit, () => `commitOffset ${commit} passed pending ${entry.offset}`);
      if (entry.status === 'inflight') {
        const held = entry.consumer === null ? undefined : this.consumers.get(entry.consumer)?.held;
        this.check(held?.has(entry.offset) === true, () => `model: inflight ${entry.offset} not held by ${entry.consumer}`);
      }
    }
    if (this.ordered) {
      const holders = new Map<string, number>();
      for (const entry of this.live.values()) {
        if (!this.holds(entry)) continue;
        const other = holders.get(entry.key);
        this.check(other === undefined, () => `key ${entry.key} has two unacked deliveries: ${other} and ${entry.offset}`);
        holders.set(entry.key, entry.offset);
      }
    }
  }
}

const SEEDS = [1, 42, 20240611];
const CONFIGS = SEEDS.flatMap((seed) => [false, true].flatMap((ordered) => [4, 16].map((maxInFlight) => ({ seed, ordered, maxInFlight, steps: 30_000 }))));

describe('SubscriptionState (randomized model, reused pending records)', () => {
  it.each(CONFIGS)('seed $seed, ordered $ordered, maxInFlight $maxInFlight', (config) => {
    const run = new ModelRun(config);
    run.run();
    const { stats } = run;
    // The run reached the paths that give records back and take them again.
    expect(stats.firstDeliveries).toBeGreaterThan(1000);
    expect(stats.redeliveries).toBeGreaterThan(100);
    expect(stats.acked).toBeGreaterThan(500);
    expect(stats.ignoredAcks).toBeGreaterThan(100);
    expect(stats.deadMax).toBeGreaterThan(10);
    expect(stats.deadExpiredReady).toBeGreaterThan(10);
    expect(stats.deadExpiredWaiting).toBeGreaterThan(0);
    expect(stats.nackedDelayed).toBeGreaterThan(10);
    expect(stats.discarded).toBeGreaterThan(10);
    expect(stats.deferredDone).toBeGreaterThan(10);
    expect(stats.deferFailed).toBeGreaterThan(10);
    expect(stats.replays).toBeGreaterThan(10);
    expect(stats.replayedDelivered).toBeGreaterThan(5);
    expect(stats.seeks).toBeGreaterThan(5);
    expect(stats.detachRedeliveries).toBeGreaterThan(5);
    if (config.ordered) {
      expect(stats.passedOverHeld).toBeGreaterThan(10);
      expect(stats.evictedHeld).toBeGreaterThan(0);
    }
  });
});

/** Bodies of `offsets` in one buffer, each at a gap from the last (filler between them). */
function sharedBodies(offsets: readonly number[]): { buffer: Uint8Array; starts: Map<number, number>; ends: Map<number, number> } {
  const starts = new Map<number, number>();
  const ends = new Map<number, number>();
  let at = 3;
  for (const offset of offsets) {
    starts.set(offset, at);
    at += bodyOf(offset).length;
    ends.set(offset, at);
    at += 5;
  }
  const buffer = new Uint8Array(at).fill(0xee);
  for (const offset of offsets) buffer.set(bodyOf(offset), starts.get(offset)!);
  return { buffer, starts, ends };
}

/** A dispatch as `offset#attempt>consumer`, dead letters by offset, and whether each body is its own offset's. */
function dispatchSummary(state: SubscriptionState, now: number): { sent: string[]; dead: number[]; ownBodies: boolean } {
  const { sent, dead } = dispatchAt(state, now);
  return {
    sent: sent.map((s) => `${s.offset}#${s.attempt}>${s.consumer}`),
    dead: dead.map((d) => d.offset),
    ownBodies: sent.every((s) => sameBytes(s.body, bodyOf(s.offset))),
  };
}

describe('SubscriptionState: records given back and taken again', () => {
  it.each([false, true])('delivers new events afresh after acking ones redelivered, delayed, deferred and replayed (ordered: %s)', (ordered) => {
    const state = stateWith(ordered, 4, 5, 1_000);
    state.attach('c1', 2);
    state.attach('c2', 2);
    const old = sharedBodies([0, 1, 2, 3]);
    for (let offset = 0; offset < 4; offset++) state.offer(offset, `old${offset}`, old.buffer, old.starts.get(offset)!, old.ends.get(offset)!, T0 + 5_000);
    state.readOffset = 4;
    expect(dispatchSummary(state, T0)).toEqual({ sent: ['0#1>c1', '1#1>c2', '2#1>c1', '3#1>c2'], dead: [], ownBodies: true });
    expect(state.nack([0, 1, 2, 3], 300, T0)).toEqual([0, 1, 2, 3]);
    state.expire(T0 + 300);
    expect(dispatchSummary(state, T0 + 300)).toEqual({ sent: ['0#2>c1', '1#2>c2', '2#2>c1', '3#2>c2'], dead: [], ownBodies: true });
    state.expire(T0 + 1_300);
    expect(dispatchSummary(state, T0 + 1_300)).toEqual({ sent: ['0#3>c1', '1#3>c2', '2#3>c1', '3#3>c2'], dead: [], ownBodies: true });

    // Leave the records in every state a settlement finds them in: delayed, deferring, in flight, replayed.
    expect(state.nack([0], 500, T0 + 1_300)).toEqual([0]);
    expect(state.defer([1])).toEqual([1]);
    expect(state.discard([3], 'bad')).toEqual([{ offset: 3, key: 3, reason: 'discarded: bad', attempts: 3, replayed: false }]);
    expect(state.replay(3, 'old3', old.buffer, old.starts.get(3)!, old.ends.get(3)!)).toBe(true);
    expect(dispatchSummary(state, T0 + 1_400)).toEqual({ sent: ['3#1>c1'], dead: [], ownBodies: true });
    expect(state.ack([0, 1, 2, 3])).toEqual({ acked: [0, 1, 2, 3], keys: [0, 1, 2, 3], replayedDone: [3] });
    expect(state.inFlight).toBe(0);
    expect(state.commitOffset).toBe(4);

    // New events take those records: past the old events' expiry, with keys of their own.
    const fresh = sharedBodies([4, 5, 6, 7]);
    for (let offset = 4; offset < 8; offset++) state.offer(offset, `new${offset}`, fresh.buffer, fresh.starts.get(offset)!, fresh.ends.get(offset)!, offset === 7 ? T0 + 20_000 : 0);
    state.readOffset = 8;
    expect(state.ack([0, 1, 2, 3]).acked, 'the old offsets stay done').toEqual([]);
    expect(state.deferred([1]).finished).toEqual([]);
    expect(state.nack([0, 2], 0, T0 + 10_000)).toEqual([]);
    expect(state.ack([4, 5, 6, 7]).acked, 'read ahead, not delivered: nothing to settle').toEqual([]);
    expect(state.defer([4, 5, 6, 7])).toEqual([]);
    expect(state.commitOffset, 'a new event holds the commit point (not replayed)').toBe(4);
    // Round robin goes on from where it was (c1 took the replay).
    expect(dispatchSummary(state, T0 + 10_000)).toEqual({ sent: ['4#1>c2', '5#1>c1', '6#1>c2', '7#1>c1'], dead: [], ownBodies: true });
    expect(state.inFlight).toBe(4);
    // Ordered, each new event holds its own key (not the key of the event its record served before).
    expect(state.wants(8, 'new4', null)).toBe(!ordered);
    expect(state.wants(8, 'new7', null)).toBe(!ordered);
    expect(state.wants(8, 'old3', null)).toBe(true);
    expect(state.wants(8, 'old0', null)).toBe(true);
    expect(state.ack([4, 6])).toEqual({ acked: [4, 6], keys: [4, 6], replayedDone: [] });
    expect(state.commitOffset).toBe(5);
    state.expire(T0 + 10_999);
    expect(dispatchSummary(state, T0 + 10_999).sent, 'not due before their own ack deadline').toEqual([]);
    state.detach('c1');
    expect(dispatchSummary(state, T0 + 11_000), "only c1's deliveries come back").toEqual({ sent: ['5#2>c2', '7#2>c2'], dead: [], ownBodies: true });
    expect(state.ack([5, 7, 5])).toEqual({ acked: [5, 7], keys: [5, 7], replayedDone: [] });
    expect(state.inFlight).toBe(0);
    expect(state.commitOffset).toBe(8);
    expect(state.deadLettered).toBe(1);
  });
});
