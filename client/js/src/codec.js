// SPDX-License-Identifier: Apache-2.0
// codec: Flushline values and messages (schemas/PROTOCOL.md sections 2-8).
//
// Values in JS: null, boolean, int (a safe-integer number, or a bigint outside
// the safe range, within int64), float (a number that is not a safe integer, or
// a Float for an integral float such as 1.0, so that 1 and 1.0 stay distinct as
// the engine requires), string, Uint8Array (bin), Array, and plain objects (maps
// with string keys). The encoder writes the canonical msgpack form (smallest
// ints, float64, keys sorted bytewise); the decoder is strict (ext, 0xc1, uint64
// above int64, NaN/inf, non-string or duplicate keys, bad UTF-8, depth, sizes).
//
// Why not a general msgpack package: the canonical form and the strict checks
// are the contract (digests and chain hashes cover these exact bytes), and the
// JS msgpack packages decode 1.0 as 1 and sort keys by UTF-16 code units; both
// would change results. The shared vectors pin every byte of this file.

export class Float {
  /** An integral float64 value such as 1.0 (non-integral floats are plain numbers). */
  constructor(value) { this.value = value; }
  valueOf() { return this.value; }
  toJSON() { return this.value; }
}

/** A float value from a number: a plain number unless it is integral. */
export function float(x) {
  return Number.isSafeInteger(x) ? new Float(x) : x;
}

export class CodecError extends Error {
  /** code: a value error (type, float, key, utf8, truncated, size, depth, trailing) or a
   * protocol code name (bad_frame, unknown_type, unsupported_version, bad_doc_id, limit). */
  constructor(code, message) {
    super(message ? `${code}: ${message}` : code);
    this.code = code;
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export const LIMITS = { max_depth: 64, max_items: 1000000, max_str: 1 << 20 };

/** Value kinds: 'nil' 'bool' 'int' 'float' 'str' 'bin' 'array' 'map'. */
export function kind(x) {
  if (x === null || x === undefined) return 'nil';
  switch (typeof x) {
    case 'boolean': return 'bool';
    case 'number': return Number.isSafeInteger(x) ? 'int' : 'float';
    case 'bigint': return 'int';
    case 'string': return 'str';
  }
  if (x instanceof Float) return 'float';
  if (x instanceof Uint8Array) return 'bin';
  if (Array.isArray(x)) return 'array';
  return 'map';
}

/** The number of a float value (Float or number). */
export function floatOf(x) { return x instanceof Float ? x.value : x; }

/** An int value normalised: a number when safe, else a bigint. */
export function normInt(b) {
  if (typeof b === 'number') return b;
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

/** Sets a key on a plain object, "__proto__" included, as an own data property. */
export function setKey(obj, key, val) {
  if (key === '__proto__') Object.defineProperty(obj, key, { value: val, enumerable: true, writable: true, configurable: true });
  else obj[key] = val;
}

export function hasKey(obj, key) { return Object.prototype.hasOwnProperty.call(obj, key); }

function cmpBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Keys of a map in canonical (bytewise UTF-8) order, with their encodings. */
export function sortedKeys(obj) {
  const ks = Object.keys(obj).map((k) => [k, utf8(k)]);
  ks.sort((a, b) => cmpBytes(a[1], b[1]));
  return ks;
}

export function utf8(s) {
  if (typeof s.isWellFormed === 'function' ? !s.isWellFormed() : /[\ud800-\udfff]/.test(s.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) {
    throw new CodecError('utf8', 'string with a lone surrogate');
  }
  return enc.encode(s);
}

// ---------------------------------------------------------------- encoder

class Writer {
  constructor() { this.buf = new Uint8Array(256); this.dv = new DataView(this.buf.buffer); this.n = 0; }
  need(k) {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const nb = new Uint8Array(size);
    nb.set(this.buf.subarray(0, this.n));
    this.buf = nb; this.dv = new DataView(nb.buffer);
  }
  u8(x) { this.need(1); this.buf[this.n++] = x; }
  u16(x) { this.need(2); this.dv.setUint16(this.n, x); this.n += 2; }
  u32(x) { this.need(4); this.dv.setUint32(this.n, x); this.n += 4; }
  bytes(b) { this.need(b.length); this.buf.set(b, this.n); this.n += b.length; }
  head(len, fix, fixmax, c8, c16, c32) {
    if (fix !== null && len <= fixmax) this.u8(fix | len);
    else if (c8 !== null && len < 0x100) { this.u8(c8); this.u8(len); }
    else if (len < 0x10000) { this.u8(c16); this.u16(len); }
    else { this.u8(c32); this.u32(len); }
  }
  int(x) {
    if (typeof x === 'number') {
      if (x >= 0) {
        if (x < 0x80) return this.u8(x);
        if (x < 0x100) { this.u8(0xcc); return this.u8(x); }
        if (x < 0x10000) { this.u8(0xcd); return this.u16(x); }
        if (x < 0x100000000) { this.u8(0xce); return this.u32(x); }
      } else {
        if (x >= -32) return this.u8(x & 0xff);
        if (x >= -0x80) { this.u8(0xd0); return this.u8(x & 0xff); }
        if (x >= -0x8000) { this.u8(0xd1); return this.u16(x & 0xffff); }
        if (x >= -0x80000000) { this.u8(0xd2); return this.u32(x >>> 0); }
      }
      x = BigInt(x);
    }
    if (x < INT64_MIN || x > INT64_MAX) throw new CodecError('type', 'int outside int64');
    if (x >= 0n && x < 0x100000000n) return this.int(Number(x));
    if (x < 0n && x >= -0x80000000n) return this.int(Number(x));
    this.u8(x >= 0n ? 0xcf : 0xd3);
    this.need(8); this.dv.setBigUint64(this.n, BigInt.asUintN(64, x)); this.n += 8;
  }
  f64(x) {
    if (!Number.isFinite(x)) throw new CodecError('float', 'NaN or infinite float');
    this.u8(0xcb); this.need(8); this.dv.setFloat64(this.n, x); this.n += 8;
  }
  value(x, depth) {
    if (depth > LIMITS.max_depth + 8) throw new CodecError('depth', 'nesting too deep');
    if (x === null || x === undefined) return this.u8(0xc0);
    switch (typeof x) {
      case 'boolean': return this.u8(x ? 0xc3 : 0xc2);
      case 'number': return Number.isSafeInteger(x) ? this.int(x) : this.f64(x);
      case 'bigint': return this.int(x);
      case 'string': { const b = utf8(x); this.head(b.length, 0xa0, 31, 0xd9, 0xda, 0xdb); return this.bytes(b); }
    }
    if (x instanceof Float) return this.f64(x.value);
    if (x instanceof Uint8Array) { this.head(x.length, null, 0, 0xc4, 0xc5, 0xc6); return this.bytes(x); }
    if (Array.isArray(x)) {
      this.head(x.length, 0x90, 15, null, 0xdc, 0xdd);
      for (const e of x) this.value(e, depth + 1);
      return;
    }
    if (typeof x === 'object') {
      const ks = sortedKeys(x);
      this.head(ks.length, 0x80, 15, null, 0xde, 0xdf);
      for (const [k, kb] of ks) {
        this.head(kb.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
        this.bytes(kb);
        this.value(x[k], depth + 1);
      }
      return;
    }
    throw new CodecError('type', `cannot encode ${typeof x}`);
  }
}

/** Canonical msgpack encoding of a value. */
export function encode(x) {
  const w = new Writer();
  w.value(x, 0);
  return w.buf.slice(0, w.n);
}

// ---------------------------------------------------------------- decoder

class Reader {
  constructor(buf, lim) {
    this.buf = buf; this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.p = 0; this.lim = lim;
  }
  left() { return this.buf.length - this.p; }
  take(n) {
    if (n > this.left()) throw new CodecError('truncated', 'input ends early');
    const p = this.p; this.p += n; return p;
  }
  u8() { return this.buf[this.take(1)]; }
  u16() { return this.dv.getUint16(this.take(2)); }
  u32() { return this.dv.getUint32(this.take(4)); }
  str(n) {
    if (n > this.lim.max_str) throw new CodecError('size', 'string too long');
    const p = this.take(n);
    try { return dec.decode(this.buf.subarray(p, p + n)); } catch { throw new CodecError('utf8', 'invalid UTF-8'); }
  }
  bin(n) {
    if (n > this.lim.max_str) throw new CodecError('size', 'bin too long');
    const p = this.take(n); return this.buf.slice(p, p + n);
  }
  count(n, min) {
    if (n > this.lim.max_items) throw new CodecError('size', 'too many items');
    if (n * min > this.left()) throw new CodecError('truncated', 'input ends early');
    return n;
  }
  value(depth) {
    const c = this.u8();
    if (c <= 0x7f) return c;
    if (c >= 0xe0) return c - 256;
    if (c >= 0xa0 && c <= 0xbf) return this.str(c & 31);
    if (c >= 0x90 && c <= 0x9f) return this.array(c & 15, depth);
    if (c >= 0x80 && c <= 0x8f) return this.map(c & 15, depth);
    switch (c) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return this.bin(this.u8());
      case 0xc5: return this.bin(this.u16());
      case 0xc6: return this.bin(this.u32());
      case 0xca: { const f = this.dv.getFloat32(this.take(4)); return this.fl(f); }
      case 0xcb: { const f = this.dv.getFloat64(this.take(8)); return this.fl(f); }
      case 0xcc: return this.u8();
      case 0xcd: return this.u16();
      case 0xce: return this.u32();
      case 0xcf: {
        const b = this.dv.getBigUint64(this.take(8));
        if (b > INT64_MAX) throw new CodecError('type', 'uint64 above int64');
        return normInt(b);
      }
      case 0xd0: return this.dv.getInt8(this.take(1));
      case 0xd1: return this.dv.getInt16(this.take(2));
      case 0xd2: return this.dv.getInt32(this.take(4));
      case 0xd3: return normInt(this.dv.getBigInt64(this.take(8)));
      case 0xd9: return this.str(this.u8());
      case 0xda: return this.str(this.u16());
      case 0xdb: return this.str(this.u32());
      case 0xdc: return this.array(this.u16(), depth);
      case 0xdd: return this.array(this.u32(), depth);
      case 0xde: return this.map(this.u16(), depth);
      case 0xdf: return this.map(this.u32(), depth);
    }
    throw new CodecError('type', `unsupported msgpack type 0x${c.toString(16)}`);
  }
  fl(f) {
    if (!Number.isFinite(f)) throw new CodecError('float', 'NaN or infinite float');
    return float(f);
  }
  array(n, depth) {
    if (depth + 1 > this.lim.max_depth) throw new CodecError('depth', 'nesting too deep');
    this.count(n, 1);
    const a = new Array(n);
    for (let i = 0; i < n; i++) a[i] = this.value(depth + 1);
    return a;
  }
  map(n, depth) {
    if (depth + 1 > this.lim.max_depth) throw new CodecError('depth', 'nesting too deep');
    this.count(n, 2);
    const o = {};
    for (let i = 0; i < n; i++) {
      const c = this.u8();
      let len;
      if (c >= 0xa0 && c <= 0xbf) len = c & 31;
      else if (c === 0xd9) len = this.u8();
      else if (c === 0xda) len = this.u16();
      else if (c === 0xdb) len = this.u32();
      else throw new CodecError('key', 'map key is not a string');
      const k = this.str(len);
      if (hasKey(o, k)) throw new CodecError('key', 'duplicate map key');
      setKey(o, k, this.value(depth + 1));
    }
    return o;
  }
}

/**
 * Decodes one msgpack value (the whole input). Throws CodecError.
 * @param {Uint8Array} buf
 * @param {{max_depth?: number, max_items?: number, max_str?: number}} [lim]
 */
export function decode(buf, lim) {
  const r = new Reader(buf, { ...LIMITS, ...lim });
  const x = r.value(0);
  if (r.p !== buf.length) throw new CodecError('trailing', 'bytes after the value');
  return x;
}

// ---------------------------------------------------------------- JSON form

function b64encode(b) {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return btoa(s);
}

// Strict, as libsodium reads it on the C side: the standard alphabet, padded, and canonical
// (the unused bits of the last character are zero). atob alone also takes unpadded text.
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function b64decode(s) {
  const bad = () => new CodecError('bad_frame', '{"$bin": ...} is not base64 (standard alphabet, padded, canonical)');
  if (!B64.test(s)) throw bad();
  let bin;
  try { bin = atob(s); } catch { throw bad(); }
  const b = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
  if (b64encode(b) !== s) throw bad();
  return b;
}

/**
 * Parses JSON text into values: integers are ints (bigint beyond the safe range),
 * numbers with a fraction or exponent are floats, {"$bin": base64} is bin.
 */
export function parseJSON(text) {
  let p = 0;
  const fail = (msg) => { throw new CodecError('bad_frame', `JSON: ${msg} at ${p}`); };
  const ws = () => { while (p < text.length && ' \t\n\r'.includes(text[p])) p++; };
  const val = (depth) => {
    if (depth > LIMITS.max_depth + 8) throw new CodecError('depth', 'nesting too deep');
    ws();
    const c = text[p];
    if (c === '{') {
      p++; const o = {}; ws();
      if (text[p] === '}') { p++; return o; }
      for (;;) {
        ws(); if (text[p] !== '"') fail('expected a key');
        const k = str();
        ws(); if (text[p++] !== ':') fail('expected :');
        if (hasKey(o, k)) throw new CodecError('key', 'duplicate key');
        setKey(o, k, val(depth + 1));
        ws();
        if (text[p] === ',') { p++; continue; }
        if (text[p] === '}') { p++; break; }
        fail('expected , or }');
      }
      const ks = Object.keys(o);
      if (ks.length === 1 && ks[0] === '$bin' && typeof o.$bin === 'string') return b64decode(o.$bin);
      return o;
    }
    if (c === '[') {
      p++; const a = []; ws();
      if (text[p] === ']') { p++; return a; }
      for (;;) {
        a.push(val(depth + 1)); ws();
        if (text[p] === ',') { p++; continue; }
        if (text[p] === ']') { p++; break; }
        fail('expected , or ]');
      }
      return a;
    }
    if (c === '"') return str();
    if (text.startsWith('true', p)) { p += 4; return true; }
    if (text.startsWith('false', p)) { p += 5; return false; }
    if (text.startsWith('null', p)) { p += 4; return null; }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(p, p + 400));
    if (!m || !m[0]) fail('unexpected character');
    p += m[0].length;
    if (m[2] || m[3]) {
      const f = Number(m[0]);
      if (!Number.isFinite(f)) throw new CodecError('float', 'infinite float');
      return float(f);
    }
    const b = BigInt(m[0]);
    if (b < INT64_MIN || b > INT64_MAX) throw new CodecError('type', 'int outside int64');
    return normInt(b);
  };
  const str = () => {
    p++;
    let s = '';
    for (;;) {
      if (p >= text.length) fail('unterminated string');
      const c = text[p++];
      if (c === '"') break;
      if (c === '\\') {
        const e = text[p++];
        const map = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e in map) s += map[e];
        else if (e === 'u') {
          const h = text.slice(p, p + 4);
          if (!/^[0-9a-fA-F]{4}$/.test(h)) fail('bad \\u escape');
          s += String.fromCharCode(parseInt(h, 16)); p += 4;
        } else fail('bad escape');
      } else if (c < ' ') fail('control character in string');
      else s += c;
    }
    return s;
  };
  const x = val(0);
  ws();
  if (p !== text.length) fail('trailing characters');
  return x;
}

/** JSON text of a value: keys sorted, integral floats as 1.0, bin as {"$bin": base64}. */
export function stringifyJSON(x) {
  if (x === null || x === undefined) return 'null';
  switch (typeof x) {
    case 'boolean': return x ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(x)) throw new CodecError('float', 'NaN or infinite float');
      return Number.isSafeInteger(x) ? String(x) : fmtFloat(x);
    case 'bigint': return x.toString();
    case 'string': utf8(x); return JSON.stringify(x);
  }
  if (x instanceof Float) return fmtFloat(x.value);
  if (x instanceof Uint8Array) return `{"$bin":"${b64encode(x)}"}`;
  if (Array.isArray(x)) return `[${x.map(stringifyJSON).join(',')}]`;
  return `{${sortedKeys(x).map(([k]) => `${JSON.stringify(k)}:${stringifyJSON(x[k])}`).join(',')}}`;
}

function fmtFloat(f) {
  const s = String(f);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

export function toHex(b) {
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

export function fromHex(s) {
  if (typeof s !== 'string' || s.length % 2 || /[^0-9a-fA-F]/.test(s)) throw new CodecError('bad_frame', 'bad hex');
  const b = new Uint8Array(s.length / 2);
  for (let i = 0; i < b.length; i++) b[i] = parseInt(s.substr(i * 2, 2), 16);
  return b;
}

/** Deep equality of values with the engine's rules (int 1 != float 1.0, bin != str). */
export function equal(a, b) {
  const ka = kind(a), kb = kind(b);
  if (ka !== kb) return false;
  switch (ka) {
    case 'nil': return true;
    case 'bool': case 'str': return a === b;
    case 'int': return BigInt(a) === BigInt(b);
    case 'float': { const x = floatOf(a), y = floatOf(b); return x === y || (Number.isNaN(x) && Number.isNaN(y)); }
    case 'bin': return a.length === b.length && a.every((v, i) => v === b[i]);
    case 'array': return a.length === b.length && a.every((v, i) => equal(v, b[i]));
    case 'map': {
      const ak = Object.keys(a), bk = Object.keys(b);
      return ak.length === bk.length && ak.every((k) => hasKey(b, k) && equal(a[k], b[k]));
    }
  }
  return false;
}

/** A deep copy of a value (Floats and bins are immutable here and shared). */
export function clone(x) {
  if (x === null || typeof x !== 'object' || x instanceof Float || x instanceof Uint8Array) return x;
  if (Array.isArray(x)) return x.map(clone);
  const o = {};
  for (const k of Object.keys(x)) setKey(o, k, clone(x[k]));
  return o;
}
