/**
 * Event payloads: bytes travel as they are; any other value is packed with msgpack (plain maps, no
 * msgpackr records or extensions, so consumers in any language can read it) and marked with the
 * header `content-type: application/msgpack`, which tells receivers to unpack it again.
 */
import { Packr, Unpackr, type Options } from 'msgpackr';
import { invalidArgument } from './errors.js';

export const CONTENT_TYPE_HEADER = 'content-type';
export const MSGPACK_CONTENT_TYPE = 'application/msgpack';

const OPTIONS: Options = { useRecords: false, mapsAsObjects: true, variableMapSize: true };
const packr = new Packr(OPTIONS);
// 'auto': 64-bit integers come back as numbers when they fit, as BigInt otherwise (the type lacks the option).
const unpackr = new Unpackr({ ...OPTIONS, int64AsType: 'auto' } as unknown as Options);

export interface EncodedPayload {
  payload: Uint8Array;
  /** True when `payload` is the msgpack encoding of a value (and needs the content-type header). */
  packed: boolean;
}

export function encodePayload(value: unknown): EncodedPayload {
  if (value instanceof Uint8Array) return { payload: value, packed: false };
  if (value === undefined) throw invalidArgument('payload', 'is required: bytes (Uint8Array) or a value msgpack can encode');
  let packed: Uint8Array;
  try {
    packed = packr.pack(value);
  } catch (error) {
    throw invalidArgument('payload', `cannot be encoded with msgpack: ${error instanceof Error ? error.message : String(error)}`);
  }
  // A copy: msgpackr's output shares a buffer with later packs, and a publish may be re-sent later.
  return { payload: new Uint8Array(packed), packed: true };
}

/**
 * The value of a payload published as msgpack, `undefined` for plain bytes. A packed payload that
 * does not decode (another publisher set the header on other bytes) also gives `undefined`: the
 * bytes stay available in `payload`.
 */
export function decodePayload(payload: Uint8Array, headers: Record<string, string>): { value?: unknown } {
  if (headers[CONTENT_TYPE_HEADER] !== MSGPACK_CONTENT_TYPE) return {};
  try {
    return { value: unpackr.unpack(payload) };
  } catch {
    return {};
  }
}
