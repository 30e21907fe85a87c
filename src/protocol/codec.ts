/**
 * Encoding and decoding of protocol frames: one msgpack map per WebSocket binary message. Plain
 * maps only (no msgpackr records or extensions), so any msgpack library can read and write frames.
 * Decoding checks every frame's shape strictly and fails with a ProtocolError naming the field.
 */
import { Packr, Unpackr, type Options } from 'msgpackr';
import { CLIENT_FRAME_CHECKS } from './client-frame-shapes.js';
import type { ClientFrame, Frame, ServerFrame } from './frames.js';
import { ProtocolError } from './protocol-error.js';
import { SERVER_FRAME_CHECKS } from './server-frame-shapes.js';
import { ShapeError, describe, formatPath, isPlainMap, isUint, type Check } from './shape.js';

const MSGPACK_OPTIONS: Options = { useRecords: false, mapsAsObjects: true, variableMapSize: true };

const packr = new Packr(MSGPACK_OPTIONS);

/**
 * 'auto' reads 64-bit ints as numbers when they fit in 2^53 and as BigInt otherwise (which the
 * shape checks then refuse): peers in other languages may write small values as int64. The option
 * exists in msgpackr 1.11 but is missing from its type declarations.
 */
const unpackr = new Unpackr({ ...MSGPACK_OPTIONS, int64AsType: 'auto' } as unknown as Options);

/** Frames are a few maps deep; anything deeper is a bug (or a cycle) in the caller. */
const MAX_ENCODE_DEPTH = 16;

/**
 * Encode a frame. Fields whose value is `undefined` are left out. Integers beyond 32 bits are
 * written as msgpack int64/uint64, not float64 (msgpackr's default for them), so offsets and times
 * arrive as integers in every language. The result may share its ArrayBuffer with other encoded
 * frames: send or copy it, do not transfer its buffer.
 */
export function encodeFrame(frame: Frame): Uint8Array {
  let wire: unknown;
  try {
    if (!isPlainMap(frame)) throw new ShapeError(`a frame must be a plain object, got ${describe(frame)}`);
    wire = toWire(frame, 0);
  } catch (error) {
    if (!(error instanceof ShapeError)) throw error;
    const field = formatPath(error.path);
    const kind = isPlainMap(frame) && typeof frame.t === 'string' ? `${frame.t} frame` : 'frame';
    throw new ProtocolError('PROTOCOL_ERROR', `cannot encode ${kind}: ${field === '' ? '' : `${field} `}${error.message}`, field === '' ? {} : { field });
  }
  const packed = packr.pack(wire);
  return packed.constructor === Uint8Array ? packed : new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength);
}

/**
 * Decode a frame a client sent (the server's side). Bin fields come back as Uint8Array views of
 * `bytes` (no copy): copy them before reusing the input buffer.
 */
export function decodeClientFrame(bytes: Uint8Array, maxFrameBytes: number): ClientFrame {
  return decodeFrame(bytes, maxFrameBytes, CLIENT_FRAME_CHECKS);
}

/** Decode a frame a server sent (the client's side). Bin fields are views of `bytes`, as above. */
export function decodeServerFrame(bytes: Uint8Array, maxFrameBytes: number = Number.POSITIVE_INFINITY): ServerFrame {
  return decodeFrame(bytes, maxFrameBytes, SERVER_FRAME_CHECKS);
}

function decodeFrame<F>(bytes: Uint8Array, maxFrameBytes: number, checks: ReadonlyMap<string, Check<F>>): F {
  if (!(bytes instanceof Uint8Array)) {
    throw new ProtocolError('PROTOCOL_ERROR', `a frame must be binary, got ${describe(bytes)}`);
  }
  if (bytes.byteLength > maxFrameBytes) {
    throw new ProtocolError('FRAME_TOO_LARGE', `frame of ${bytes.byteLength} bytes is over the limit of ${maxFrameBytes} bytes`);
  }
  const raw = unpack(bytes);
  if (!isPlainMap(raw)) throw new ProtocolError('PROTOCOL_ERROR', `a frame must be a msgpack map, got ${describe(raw)}`);

  const requestId = isUint(raw.id) ? raw.id : undefined;
  const options = requestId === undefined ? {} : { requestId };
  const type = raw.t;
  const check = typeof type === 'string' ? checks.get(type) : undefined;
  if (check === undefined) {
    const got = type === undefined ? 'it is missing' : typeof type === 'string' ? `got ${JSON.stringify(type.slice(0, 64))}` : `got ${describe(type)}`;
    throw new ProtocolError('PROTOCOL_ERROR', `t must be one of ${[...checks.keys()].join(', ')}; ${got}`, { ...options, field: 't' });
  }
  try {
    return check(raw);
  } catch (error) {
    if (!(error instanceof ShapeError)) throw error;
    const field = formatPath(error.path);
    throw new ProtocolError('PROTOCOL_ERROR', `${type as string} frame: ${field} ${error.message}`, { ...options, field });
  }
}

function unpack(bytes: Uint8Array): unknown {
  // A fresh view of exactly the frame's bytes: msgpackr caches a DataView on the object it reads
  // from, and offsets stay right when the frame is a subarray of a larger buffer.
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    return unpackr.unpack(view);
  } catch (error) {
    // msgpackr throws plain Errors and RangeErrors (truncated data, stack overflow on deep nesting).
    const reason = error instanceof Error ? error.message.slice(0, 120) : 'unreadable';
    throw new ProtocolError('PROTOCOL_ERROR', `frame is not valid msgpack: ${reason}`, { cause: error });
  }
}

function toWire(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      // msgpackr writes integers outside the 32-bit ranges as float64; a BigInt is written as int64.
      return Number.isSafeInteger(value) && (value > 0xffffffff || value < -0x80000000) ? BigInt(value) : value;
    case 'object': {
      if (value === null) return null;
      // Any Uint8Array (a Node Buffer included) is written as bin.
      if (value instanceof Uint8Array) return value;
      if (depth >= MAX_ENCODE_DEPTH) throw new ShapeError(`is nested more than ${MAX_ENCODE_DEPTH} levels deep`);
      if (Array.isArray(value)) return arrayToWire(value, depth + 1);
      if (isPlainMap(value)) return mapToWire(value, depth + 1);
      throw new ShapeError(`cannot be encoded: ${describe(value)} (frames hold strings, numbers, booleans, nil, Uint8Array, arrays and plain objects)`);
    }
    default:
      throw new ShapeError(`cannot be encoded: ${describe(value)}`);
  }
}

function arrayToWire(values: readonly unknown[], depth: number): unknown[] {
  const out = new Array<unknown>(values.length);
  for (let i = 0; i < values.length; i++) out[i] = childToWire(i, values[i], depth);
  return out;
}

function mapToWire(map: Record<string, unknown>, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(map)) {
    const value = map[key];
    if (value === undefined) continue;
    if (key === '__proto__') throw new ShapeError('cannot be a key', [key]);
    out[key] = childToWire(key, value, depth);
  }
  return out;
}

function childToWire(segment: string | number, value: unknown, depth: number): unknown {
  try {
    return toWire(value, depth);
  } catch (error) {
    if (error instanceof ShapeError) error.path.unshift(segment);
    throw error;
  }
}
