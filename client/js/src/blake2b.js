// SPDX-License-Identifier: Apache-2.0
// BLAKE2b (RFC 7693), unkeyed, one shot: the digest and chain hash of Flushline
// (libsodium crypto_generichash with a 32-byte output). 64-bit words are kept as
// pairs of 32-bit halves (low, high) in Uint32Arrays, so no BigInt on the hot path.

const IV = new Uint32Array([
  0xf3bcc908, 0x6a09e667, 0x84caa73b, 0xbb67ae85, 0xfe94f82b, 0x3c6ef372, 0x5f1d36f1, 0xa54ff53a,
  0xade682d1, 0x510e527f, 0x2b3e6c1f, 0x9b05688c, 0xfb41bd6b, 0x1f83d9ab, 0x137e2179, 0x5be0cd19,
]);

// Message word schedule (RFC 7693 section 2.7): round r uses row r mod 10 (rounds
// 10 and 11 take rows 0 and 1 again); doubled because each word takes two slots of m.
const SIGMA = [
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
  14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3,
  11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4,
  7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8,
  9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13,
  2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9,
  12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11,
  13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10,
  6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5,
  10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0,
].map((x) => x * 2);

const v = new Uint32Array(32);
const m = new Uint32Array(32);

function add64(a, b) {
  const lo = v[a] + v[b];
  v[a + 1] = v[a + 1] + v[b + 1] + (lo >= 0x100000000 ? 1 : 0);
  v[a] = lo;
}

function add64m(a, b0, b1) {
  const lo = v[a] + b0;
  v[a + 1] = v[a + 1] + b1 + (lo >= 0x100000000 ? 1 : 0);
  v[a] = lo;
}

function G(a, b, c, d, ix, iy) {
  add64(a, b);
  add64m(a, m[ix], m[ix + 1]);
  let x0 = v[d] ^ v[a], x1 = v[d + 1] ^ v[a + 1];
  v[d] = x1; v[d + 1] = x0; // rotr 32
  add64(c, d);
  x0 = v[b] ^ v[c]; x1 = v[b + 1] ^ v[c + 1];
  v[b] = (x0 >>> 24) ^ (x1 << 8); v[b + 1] = (x1 >>> 24) ^ (x0 << 8); // rotr 24
  add64(a, b);
  add64m(a, m[iy], m[iy + 1]);
  x0 = v[d] ^ v[a]; x1 = v[d + 1] ^ v[a + 1];
  v[d] = (x0 >>> 16) ^ (x1 << 16); v[d + 1] = (x1 >>> 16) ^ (x0 << 16); // rotr 16
  add64(c, d);
  x0 = v[b] ^ v[c]; x1 = v[b + 1] ^ v[c + 1];
  v[b] = (x1 >>> 31) ^ (x0 << 1); v[b + 1] = (x0 >>> 31) ^ (x1 << 1); // rotr 63
}

function compress(h, block, t, last) {
  for (let i = 0; i < 16; i++) { v[i] = h[i]; v[i + 16] = IV[i]; }
  v[24] ^= t >>> 0;
  v[25] ^= Math.floor(t / 0x100000000);
  if (last) { v[28] = ~v[28]; v[29] = ~v[29]; }
  for (let i = 0; i < 32; i++) {
    const o = i * 4;
    m[i] = block[o] | (block[o + 1] << 8) | (block[o + 2] << 16) | (block[o + 3] << 24);
  }
  for (let r = 0; r < 12; r++) {
    const s = (r % 10) * 16;
    G(0, 8, 16, 24, SIGMA[s], SIGMA[s + 1]);
    G(2, 10, 18, 26, SIGMA[s + 2], SIGMA[s + 3]);
    G(4, 12, 20, 28, SIGMA[s + 4], SIGMA[s + 5]);
    G(6, 14, 22, 30, SIGMA[s + 6], SIGMA[s + 7]);
    G(0, 10, 20, 30, SIGMA[s + 8], SIGMA[s + 9]);
    G(2, 12, 22, 24, SIGMA[s + 10], SIGMA[s + 11]);
    G(4, 14, 16, 26, SIGMA[s + 12], SIGMA[s + 13]);
    G(6, 8, 18, 28, SIGMA[s + 14], SIGMA[s + 15]);
  }
  for (let i = 0; i < 16; i++) h[i] = h[i] ^ v[i] ^ v[i + 16];
}

/**
 * BLAKE2b of the concatenation of `parts` (Uint8Arrays), `outlen` bytes (1..64, default 32).
 * @param {Uint8Array | Uint8Array[]} parts
 * @param {number} [outlen]
 * @returns {Uint8Array}
 */
export function blake2b(parts, outlen = 32) {
  if (parts instanceof Uint8Array) parts = [parts];
  const h = new Uint32Array(IV);
  h[0] ^= 0x01010000 ^ outlen;
  const block = new Uint8Array(128);
  let c = 0;
  let t = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      if (c === 128) {
        t += 128;
        compress(h, block, t, false);
        c = 0;
      }
      block[c++] = p[i];
    }
  }
  t += c;
  block.fill(0, c);
  compress(h, block, t, true);
  const out = new Uint8Array(outlen);
  for (let i = 0; i < outlen; i++) out[i] = h[i >> 2] >>> (8 * (i & 3));
  return out;
}
