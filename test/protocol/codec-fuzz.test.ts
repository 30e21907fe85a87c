import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ProtocolError, decodeClientFrame, decodeServerFrame, encodeFrame, type Frame } from '../../src/protocol/index.js';
import { Prng } from '../helpers/prng.js';
import { CLIENT_FRAMES, SERVER_FRAMES } from './sample-frames.js';

const MAX = 1024 * 1024;
const raw = new Packr({ useRecords: false, variableMapSize: true });

type Decode = (input: Uint8Array) => Frame;
const DECODERS: Array<[string, Decode]> = [
  ['client', (input) => decodeClientFrame(input, MAX)],
  ['server', (input) => decodeServerFrame(input, MAX)],
];

/**
 * Decode with both decoders: each either returns a frame that re-encodes to an equal frame, or
 * throws a ProtocolError. Counts accepted frames so the tests can show mutations reach the checks.
 */
function decodeOrProtocolError(input: Uint8Array, context: string): number {
  let accepted = 0;
  for (const [side, decode] of DECODERS) {
    let frame: Frame;
    try {
      frame = decode(input);
    } catch (error) {
      if (!(error instanceof ProtocolError)) {
        throw new Error(`${side} decoder threw ${String(error)} for ${context}: ${Buffer.from(input).toString('hex').slice(0, 200)}`);
      }
      expect(['PROTOCOL_ERROR', 'FRAME_TOO_LARGE']).toContain(error.code);
      continue;
    }
    accepted++;
    expect(decode(encodeFrame(frame))).toEqual(frame);
  }
  return accepted;
}

function mutateBytes(prng: Prng, input: Uint8Array): Uint8Array {
  const out = [...input];
  const edits = prng.int(1, 4);
  for (let e = 0; e < edits; e++) {
    const at = prng.int(0, Math.max(0, out.length - 1));
    switch (prng.int(0, 4)) {
      case 0:
        out[at] = prng.int(0, 255);
        break;
      case 1:
        out[at] = (out[at] ?? 0) ^ (1 << prng.int(0, 7));
        break;
      case 2:
        out.splice(at, prng.int(1, 8));
        break;
      case 3:
        out.splice(at, 0, ...prng.bytes(prng.int(1, 8)));
        break;
      default:
        out.length = at;
    }
  }
  return Uint8Array.from(out);
}

const RANDOM_VALUES: unknown[] = [null, true, 0, -1, 1.5, 2 ** 40, '', 'x', new Uint8Array(2), [], [1, 2], {}, { a: 1 }, 'all', [[0, 1]]];

/** Replace, remove or add one field somewhere in the frame's tree. */
function mutateValue(prng: Prng, value: unknown, depth = 0): unknown {
  if (Array.isArray(value)) {
    if (value.length === 0 || prng.next() < 0.2) return prng.pick(RANDOM_VALUES);
    const copy = [...value];
    const at = prng.int(0, copy.length - 1);
    copy[at] = mutateValue(prng, copy[at], depth + 1);
    return copy;
  }
  if (typeof value === 'object' && value !== null && !(value instanceof Uint8Array)) {
    const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(copy);
    const roll = prng.next();
    if (roll < 0.1) copy[`extra${prng.int(0, 9)}`] = prng.pick(RANDOM_VALUES);
    else if (roll < 0.2 && keys.length > 0) delete copy[prng.pick(keys)];
    else if (keys.length > 0) {
      const key = prng.pick(keys);
      copy[key] = depth > 3 || prng.next() < 0.5 ? prng.pick(RANDOM_VALUES) : mutateValue(prng, copy[key], depth + 1);
    }
    return copy;
  }
  return prng.pick(RANDOM_VALUES);
}

describe('fuzz: decoders throw only ProtocolError', () => {
  it('2,000 random byte strings', () => {
    const prng = new Prng(0x5eed01);
    for (let i = 0; i < 2000; i++) {
      const length = prng.int(0, 64);
      const input = prng.bytes(length);
      // Half start with a map header so the decoder gets past the first byte more often.
      if (i % 2 === 0 && length > 0) input[0] = 0x80 | prng.int(1, 4);
      decodeOrProtocolError(input, `seed ${prng.seed} case ${i}`);
    }
  });

  it('2,000 random byte mutations of valid frames', () => {
    const prng = new Prng(0x5eed02);
    const seeds = [...CLIENT_FRAMES, ...SERVER_FRAMES].map((frame) => encodeFrame(frame));
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      accepted += decodeOrProtocolError(mutateBytes(prng, prng.pick(seeds)), `seed ${prng.seed} case ${i}`);
    }
    // Some mutations (inside strings and payloads) leave a valid frame: the round trip ran on those.
    expect(accepted).toBeGreaterThan(50);
  });

  it('2,000 random field mutations of valid frames', () => {
    const prng = new Prng(0x5eed03);
    const frames: Frame[] = [...CLIENT_FRAMES, ...SERVER_FRAMES];
    let refused = 0;
    for (let i = 0; i < 2000; i++) {
      const mutated = mutateValue(prng, prng.pick(frames));
      const before = decodeOrProtocolError(raw.pack(mutated), `seed ${prng.seed} case ${i}`);
      if (before === 0) refused++;
    }
    expect(refused).toBeGreaterThan(1000);
  });

  it('deeply nested input is a ProtocolError, not a crash', () => {
    const depth = 200_000;
    const nested = new Uint8Array(depth + 1).fill(0x91); // arrays of one array of one array …
    nested[depth] = 0xc0;
    const error = (() => {
      try {
        decodeClientFrame(nested, MAX);
      } catch (caught) {
        return caught;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(ProtocolError);
    // The decoder's state recovered: the next frame decodes.
    expect(decodeClientFrame(encodeFrame({ t: 'ping', id: 4 }), MAX)).toEqual({ t: 'ping', id: 4 });
  });
});
