/**
 * The canonical encoding of an event's content that its Ed25519 signature covers (docs/events.md,
 * "Canonical encoding, version 1"), built from Uint8Array and TextEncoder so it runs in browsers.
 * It must match the engine's canonicalSigningBytes byte for byte, or signatures do not verify.
 */
const utf8 = new TextEncoder();

/** "ensync-event-v1" and a NUL byte. */
const SIGNING_DOMAIN = utf8.encode('ensync-event-v1\0');

export interface SignedContent {
  type: string;
  id: string;
  key?: string | null | undefined;
  headers?: Record<string, string> | undefined;
  payload: Uint8Array;
}

/**
 * domain | u32 len + type | u32 len + id | u8 key presence [+ u32 len + key] | u32 header count |
 * headers sorted by UTF-8 name bytes (u32 len + name, u32 len + value) | u32 len + payload.
 * Every u32 is little-endian.
 */
export function canonicalSigningBytes(event: SignedContent): Uint8Array {
  const type = utf8.encode(event.type);
  const id = utf8.encode(event.id);
  const key = event.key === null || event.key === undefined ? null : utf8.encode(event.key);
  const headers = sortedHeaders(event.headers);

  let size = SIGNING_DOMAIN.byteLength + 4 + type.byteLength + 4 + id.byteLength + 1 + 4 + 4 + event.payload.byteLength;
  if (key !== null) size += 4 + key.byteLength;
  for (const [name, value] of headers) size += 8 + name.byteLength + value.byteLength;

  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(SIGNING_DOMAIN, 0);
  let p = SIGNING_DOMAIN.byteLength;
  const put = (bytes: Uint8Array): void => {
    view.setUint32(p, bytes.byteLength, true);
    out.set(bytes, p + 4);
    p += 4 + bytes.byteLength;
  };
  put(type);
  put(id);
  out[p++] = key === null ? 0 : 1;
  if (key !== null) put(key);
  view.setUint32(p, headers.length, true);
  p += 4;
  for (const [name, value] of headers) {
    put(name);
    put(value);
  }
  put(event.payload);
  return out;
}

function sortedHeaders(headers: Record<string, string> | undefined): Array<[Uint8Array, Uint8Array]> {
  if (headers === undefined) return [];
  const entries: Array<[Uint8Array, Uint8Array]> = Object.keys(headers).map((name) => [utf8.encode(name), utf8.encode(headers[name]!)]);
  // UTF-8 byte order, not UTF-16 string order: the two differ above U+FFFF.
  entries.sort((a, b) => compareBytes(a[0], b[0]));
  return entries;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.byteLength - b.byteLength;
}
