import { unpack } from 'msgpackr';
import { EngineError } from '../errors.js';

/** One entry of a shard's acks journal: done keys (offsets, or lane keys) that became done for one subscription. */
export interface DoneEntry {
  s: string;
  o: number[];
}

/**
 * The journal's record body for an entry. Version 2 (little-endian), written now:
 *
 *   u8 version=2 | u16 length + utf8 subscription | u32 count | f64[count] keys
 *
 * Entries written before it are msgpack of `{s, o}` (a map: never a first byte of 2), still read.
 * One record per settle batch, so this runs once per acked batch, not per event.
 */
const VERSION = 2;

export function encodeDoneEntry(entry: DoneEntry): Buffer {
  const nameBytes = Buffer.byteLength(entry.s, 'utf8');
  if (nameBytes > 0xffff) throw new EngineError('INTERNAL', `a subscription name of ${nameBytes} bytes in the acks journal`);
  const count = entry.o.length;
  const out = Buffer.allocUnsafe(1 + 2 + nameBytes + 4 + count * 8);
  out[0] = VERSION;
  out.writeUInt16LE(nameBytes, 1);
  out.write(entry.s, 3, 'utf8');
  let p = 3 + nameBytes;
  out.writeUInt32LE(count, p);
  p += 4;
  for (let i = 0; i < count; i++, p += 8) out.writeDoubleLE(entry.o[i]!, p);
  return out;
}

export function decodeDoneEntry(body: Uint8Array): DoneEntry {
  if (body[0] !== VERSION) {
    const entry = unpack(body) as DoneEntry;
    if (typeof entry?.s !== 'string' || !Array.isArray(entry.o)) throw malformed('not an entry');
    return entry;
  }
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (buf.length < 7) throw malformed('truncated');
  const nameBytes = buf.readUInt16LE(1);
  const countAt = 3 + nameBytes;
  if (buf.length < countAt + 4) throw malformed('truncated');
  const count = buf.readUInt32LE(countAt);
  if (buf.length !== countAt + 4 + count * 8) throw malformed(`${buf.length} bytes for ${count} keys`);
  const keys = new Array<number>(count);
  for (let i = 0, p = countAt + 4; i < count; i++, p += 8) keys[i] = buf.readDoubleLE(p);
  return { s: buf.toString('utf8', 3, countAt), o: keys };
}

function malformed(reason: string): EngineError {
  return new EngineError('INTERNAL', `malformed acks journal entry: ${reason}`);
}
