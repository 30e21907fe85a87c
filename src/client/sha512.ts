/**
 * SHA-512 (FIPS 180-4) in plain JavaScript, on 32-bit halves. Synchronous Ed25519 key derivation
 * (generateKeyPair) needs a synchronous SHA-512, and neither browsers (WebCrypto is async) nor the
 * SDK's allowed dependencies offer one. Signing uses WebCrypto's native SHA-512 instead.
 */

/** Initial hash value: 8 words as [high, low] pairs. */
const IV = new Int32Array([
  0x6a09e667, 0xf3bcc908, 0xbb67ae85, 0x84caa73b,
  0x3c6ef372, 0xfe94f82b, 0xa54ff53a, 0x5f1d36f1,
  0x510e527f, 0xade682d1, 0x9b05688c, 0x2b3e6c1f,
  0x1f83d9ab, 0xfb41bd6b, 0x5be0cd19, 0x137e2179,
]);

/** Round constants: 80 words as [high, low] pairs. */
const K = new Int32Array([
  0x428a2f98, 0xd728ae22, 0x71374491, 0x23ef65cd,
  0xb5c0fbcf, 0xec4d3b2f, 0xe9b5dba5, 0x8189dbbc,
  0x3956c25b, 0xf348b538, 0x59f111f1, 0xb605d019,
  0x923f82a4, 0xaf194f9b, 0xab1c5ed5, 0xda6d8118,
  0xd807aa98, 0xa3030242, 0x12835b01, 0x45706fbe,
  0x243185be, 0x4ee4b28c, 0x550c7dc3, 0xd5ffb4e2,
  0x72be5d74, 0xf27b896f, 0x80deb1fe, 0x3b1696b1,
  0x9bdc06a7, 0x25c71235, 0xc19bf174, 0xcf692694,
  0xe49b69c1, 0x9ef14ad2, 0xefbe4786, 0x384f25e3,
  0x0fc19dc6, 0x8b8cd5b5, 0x240ca1cc, 0x77ac9c65,
  0x2de92c6f, 0x592b0275, 0x4a7484aa, 0x6ea6e483,
  0x5cb0a9dc, 0xbd41fbd4, 0x76f988da, 0x831153b5,
  0x983e5152, 0xee66dfab, 0xa831c66d, 0x2db43210,
  0xb00327c8, 0x98fb213f, 0xbf597fc7, 0xbeef0ee4,
  0xc6e00bf3, 0x3da88fc2, 0xd5a79147, 0x930aa725,
  0x06ca6351, 0xe003826f, 0x14292967, 0x0a0e6e70,
  0x27b70a85, 0x46d22ffc, 0x2e1b2138, 0x5c26c926,
  0x4d2c6dfc, 0x5ac42aed, 0x53380d13, 0x9d95b3df,
  0x650a7354, 0x8baf63de, 0x766a0abb, 0x3c77b2a8,
  0x81c2c92e, 0x47edaee6, 0x92722c85, 0x1482353b,
  0xa2bfe8a1, 0x4cf10364, 0xa81a664b, 0xbc423001,
  0xc24b8b70, 0xd0f89791, 0xc76c51a3, 0x0654be30,
  0xd192e819, 0xd6ef5218, 0xd6990624, 0x5565a910,
  0xf40e3585, 0x5771202a, 0x106aa070, 0x32bbd1b8,
  0x19a4c116, 0xb8d2d0c8, 0x1e376c08, 0x5141ab53,
  0x2748774c, 0xdf8eeb99, 0x34b0bcb5, 0xe19b48a8,
  0x391c0cb3, 0xc5c95a63, 0x4ed8aa4a, 0xe3418acb,
  0x5b9cca4f, 0x7763e373, 0x682e6ff3, 0xd6b2b8a3,
  0x748f82ee, 0x5defb2fc, 0x78a5636f, 0x43172f60,
  0x84c87814, 0xa1f0ab72, 0x8cc70208, 0x1a6439ec,
  0x90befffa, 0x23631e28, 0xa4506ceb, 0xde82bde9,
  0xbef9a3f7, 0xb2c67915, 0xc67178f2, 0xe372532b,
  0xca273ece, 0xea26619c, 0xd186b8c7, 0x21c0c207,
  0xeada7dd6, 0xcde0eb1e, 0xf57d4f7f, 0xee6ed178,
  0x06f067aa, 0x72176fba, 0x0a637dc5, 0xa2c898a6,
  0x113f9804, 0xbef90dae, 0x1b710b35, 0x131c471b,
  0x28db77f5, 0x23047d84, 0x32caab7b, 0x40c72493,
  0x3c9ebe0a, 0x15c9bebc, 0x431d67c4, 0x9c100d4c,
  0x4cc5d4be, 0xcb3e42b6, 0x597f299c, 0xfc657e2a,
  0x5fcb6fab, 0x3ad6faec, 0x6c44198c, 0x4a475817,
]);

const BLOCK_BYTES = 128;
const TWO_32 = 0x1_0000_0000;

/** The 64-byte SHA-512 digest of `message`. */
export function sha512(message: Uint8Array): Uint8Array {
  const state = new Int32Array(IV);
  const words = new Int32Array(160);
  const fullBlocks = Math.floor(message.byteLength / BLOCK_BYTES);
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  for (let b = 0; b < fullBlocks; b++) compress(state, words, view, b * BLOCK_BYTES);

  // The tail: the remaining bytes, 0x80, zeros, and the bit length as a 128-bit big-endian number.
  const rest = message.byteLength - fullBlocks * BLOCK_BYTES;
  const tail = new Uint8Array(rest + 17 > BLOCK_BYTES ? 2 * BLOCK_BYTES : BLOCK_BYTES);
  tail.set(message.subarray(fullBlocks * BLOCK_BYTES));
  tail[rest] = 0x80;
  const tailView = new DataView(tail.buffer);
  const bits = message.byteLength * 8;
  tailView.setUint32(tail.byteLength - 8, Math.floor(bits / TWO_32));
  tailView.setUint32(tail.byteLength - 4, bits >>> 0);
  for (let offset = 0; offset < tail.byteLength; offset += BLOCK_BYTES) compress(state, words, tailView, offset);

  const digest = new Uint8Array(64);
  const out = new DataView(digest.buffer);
  for (let i = 0; i < 16; i++) out.setInt32(i * 4, state[i]!);
  return digest;
}

/** One 128-byte block into `state`. `words` is scratch space for the 80-word schedule. */
function compress(state: Int32Array, words: Int32Array, view: DataView, offset: number): void {
  for (let i = 0; i < 32; i++) words[i] = view.getInt32(offset + i * 4);
  for (let i = 16; i < 80; i++) {
    const h15 = words[2 * (i - 15)]!;
    const l15 = words[2 * (i - 15) + 1]!;
    const h2 = words[2 * (i - 2)]!;
    const l2 = words[2 * (i - 2) + 1]!;
    // sigma0 = rotr1 ^ rotr8 ^ shr7; sigma1 = rotr19 ^ rotr61 ^ shr6
    const s0h = rotrHi(h15, l15, 1) ^ rotrHi(h15, l15, 8) ^ (h15 >>> 7);
    const s0l = rotrLo(h15, l15, 1) ^ rotrLo(h15, l15, 8) ^ ((l15 >>> 7) | (h15 << 25));
    const s1h = rotrHi(h2, l2, 19) ^ rotrHi(h2, l2, 61) ^ (h2 >>> 6);
    const s1l = rotrLo(h2, l2, 19) ^ rotrLo(h2, l2, 61) ^ ((l2 >>> 6) | (h2 << 26));
    const lo = (s0l >>> 0) + (s1l >>> 0) + (words[2 * (i - 7) + 1]! >>> 0) + (words[2 * (i - 16) + 1]! >>> 0);
    words[2 * i] = s0h + s1h + words[2 * (i - 7)]! + words[2 * (i - 16)]! + Math.floor(lo / TWO_32);
    words[2 * i + 1] = lo;
  }

  let ah = state[0]!, al = state[1]!, bh = state[2]!, bl = state[3]!, ch = state[4]!, cl = state[5]!, dh = state[6]!, dl = state[7]!;
  let eh = state[8]!, el = state[9]!, fh = state[10]!, fl = state[11]!, gh = state[12]!, gl = state[13]!, hh = state[14]!, hl = state[15]!;
  for (let i = 0; i < 80; i++) {
    // T1 = h + Sigma1(e) + Ch(e, f, g) + K[i] + W[i]
    const sig1h = rotrHi(eh, el, 14) ^ rotrHi(eh, el, 18) ^ rotrHi(eh, el, 41);
    const sig1l = rotrLo(eh, el, 14) ^ rotrLo(eh, el, 18) ^ rotrLo(eh, el, 41);
    const chh = (eh & fh) ^ (~eh & gh);
    const chl = (el & fl) ^ (~el & gl);
    const t1l = (hl >>> 0) + (sig1l >>> 0) + (chl >>> 0) + (K[2 * i + 1]! >>> 0) + (words[2 * i + 1]! >>> 0);
    const t1h = (hh + sig1h + chh + K[2 * i]! + words[2 * i]! + Math.floor(t1l / TWO_32)) | 0;
    // T2 = Sigma0(a) + Maj(a, b, c)
    const sig0h = rotrHi(ah, al, 28) ^ rotrHi(ah, al, 34) ^ rotrHi(ah, al, 39);
    const sig0l = rotrLo(ah, al, 28) ^ rotrLo(ah, al, 34) ^ rotrLo(ah, al, 39);
    const majh = (ah & bh) ^ (ah & ch) ^ (bh & ch);
    const majl = (al & bl) ^ (al & cl) ^ (bl & cl);
    const t2l = (sig0l >>> 0) + (majl >>> 0);
    const t2h = (sig0h + majh + Math.floor(t2l / TWO_32)) | 0;
    hh = gh; hl = gl;
    gh = fh; gl = fl;
    fh = eh; fl = el;
    const el2 = (dl >>> 0) + (t1l >>> 0);
    eh = (dh + t1h + Math.floor(el2 / TWO_32)) | 0;
    el = el2 | 0;
    dh = ch; dl = cl;
    ch = bh; cl = bl;
    bh = ah; bl = al;
    const al2 = (t1l >>> 0) + (t2l >>> 0);
    ah = (t1h + t2h + Math.floor(al2 / TWO_32)) | 0;
    al = al2 | 0;
  }
  addInto(state, 0, ah, al);
  addInto(state, 2, bh, bl);
  addInto(state, 4, ch, cl);
  addInto(state, 6, dh, dl);
  addInto(state, 8, eh, el);
  addInto(state, 10, fh, fl);
  addInto(state, 12, gh, gl);
  addInto(state, 14, hh, hl);
}

function addInto(state: Int32Array, i: number, hi: number, lo: number): void {
  const sum = (state[i + 1]! >>> 0) + (lo >>> 0);
  state[i] = state[i]! + hi + Math.floor(sum / TWO_32);
  state[i + 1] = sum;
}

/** High word of the 64-bit (hi, lo) rotated right by n (0 < n < 64, n != 32). */
function rotrHi(hi: number, lo: number, n: number): number {
  return n < 32 ? (hi >>> n) | (lo << (32 - n)) : (lo >>> (n - 32)) | (hi << (64 - n));
}

/** Low word of the 64-bit (hi, lo) rotated right by n (0 < n < 64, n != 32). */
function rotrLo(hi: number, lo: number, n: number): number {
  return n < 32 ? (lo >>> n) | (hi << (32 - n)) : (hi >>> (n - 32)) | (lo << (64 - n));
}
