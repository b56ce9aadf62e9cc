// SPDX-License-Identifier: Apache-2.0
// messages: the Flushline wire messages (schemas/PROTOCOL.md) in both forms, msgpack
// (binary frames, Kafka records) and JSON (text frames), checked field by field.
//
// A message is a plain object with the wire's key names; client_id, chain and digest
// are Uint8Arrays in both forms (hex in JSON text), values are codec.js values.
// Decoders throw CodecError with a protocol code name: bad_frame, unknown_type,
// unsupported_version, bad_doc_id or limit.

import {
  CodecError, decode, encode, parseJSON, stringifyJSON, toHex, fromHex, kind, hasKey, utf8, LIMITS,
} from './codec.js';

export const VERSION = 1;
export const OPS = ['add', 'remove', 'replace', 'move', 'copy', 'test', 'incr', 'merge', 'create'];

export const FRAME_LIMITS = { max_frame: 1 << 20, max_commands: 1000, max_body: 4096, max_token: 8192 };
export const RECORD_LIMITS = { max_frame: 64 << 20, max_commands: 1000, max_body: 4096, max_token: 8192 };

const FLUSH = {
  doc: 'doc', client_id: 'id16', seq: 'seq', base_version: 'uint', if_version: 'uint?', atomic: 'bool?',
  commands: 'cmds',
};
const OUTCOME = {
  doc: 'doc', client_id: 'id16', seq: 'uint', code: 'code', dup: 'bool?', version_before: 'uint',
  version_after: 'uint', results: 'results', chain: 'h32',
};
const DELTA = { version: 'uint', client_id: 'id16', seq: 'uint', user: 'str', ts: 'int', commands: 'cmds', chain: 'h32' };
const STORED = {
  code: 'code', dup: 'bool?', version_before: 'uint', version_after: 'uint', results: 'results', chain: 'h32',
  user: 'str?', ts: 'int?', commands: 'cmds?',
};

const SPEC = {
  c2s: {
    hello: { token: 'token', client: 'name?' },
    auth: { token: 'token' },
    subscribe: { doc: 'doc', have_version: 'uint?' },
    unsubscribe: { doc: 'doc' },
    flush: FLUSH,
    signal: { doc: 'doc', body: 'body' },
    ping: { id: 'uint?' },
  },
  s2c: {
    welcome: { limits: 'limits', user: 'str', server: 'name', exp: 'int?', leeway: 'uint?' },
    snapshot: { doc: 'doc', version: 'uint', chain: 'h32', state: 'map' },
    deltas: { doc: 'doc', from_version: 'uint', items: 'items' },
    outcome: OUTCOME,
    nack: { doc: 'doc?', client_id: 'id16?', seq: 'uint?', code: 'code', retry_after_ms: 'uint?', reason: 'reason' },
    signal: { doc: 'doc', from: 'str', body: 'any' },
    error: { code: 'code', reason: 'reason' },
    pong: { id: 'uint?' },
    changed: { doc: 'doc', version: 'uint' },
  },
  record: {
    flush: { ...FLUSH, user: 'str', gw: 'str', origin: 'uint' },
    sync: { doc: 'doc', gw: 'str', req: 'uint', have_version: 'uint' },
    outcome: { ...OUTCOME, commands: 'cmds', user: 'str', ts: 'int', gw: 'str', origin: 'uint' },
    sync_reply: {
      doc: 'doc', gw: 'str', req: 'uint', version: 'uint', chain: 'h32', state: 'map?', from_version: 'uint?',
      items: 'items?',
    },
    snapshot: {
      doc: 'doc', version: 'uint', chain: 'h32', digest: 'h32', state: 'map', dedup: 'dedup', events_offset: 'int',
      dedup_evicted: 'uint?',
    },
    signal: { doc: 'doc', gw: 'str', user: 'str', body: 'body' },
    checkpoint: { partition: 'uint', events_offset: 'uint' },
  },
};

const bad = (msg) => new CodecError('bad_frame', msg);
const isUint = (x) => kind(x) === 'int' && x >= 0;

// Checks (and for JSON converts hex fields of) one field value. Returns the value to keep.
function field(ctx, key, type, x) {
  const json = ctx.json;
  switch (type) {
    case 'uint': case 'seq': case 'code':
      if (!isUint(x)) throw bad(`"${key}" must be an unsigned int`);
      if (type === 'seq' && Number(x) === 0) throw bad('"seq" starts at 1');
      if (type === 'code' && x > 0xffff) throw bad(`"${key}" out of range`);
      return x;
    case 'int':
      if (kind(x) !== 'int') throw bad(`"${key}" must be an int`);
      return x;
    case 'bool':
      if (typeof x !== 'boolean') throw bad(`"${key}" must be a bool`);
      return x;
    case 'str': case 'name': case 'reason': case 'token': {
      if (typeof x !== 'string') throw bad(`"${key}" must be a string`);
      const n = utf8(x).length;
      const max = type === 'name' ? 128 : type === 'reason' ? 1024 : type === 'token' ? ctx.lim.max_token : Infinity;
      if (n > max) throw new CodecError('limit', `"${key}" over ${max} bytes`);
      return x;
    }
    case 'doc': {
      if (typeof x !== 'string') throw bad(`"${key}" must be a string`);
      const n = utf8(x).length;
      if (n < 1 || n > 255) throw new CodecError('bad_doc_id', 'doc id must be 1-255 bytes');
      return x;
    }
    case 'id16': case 'h32': {
      const n = type === 'id16' ? 16 : 32;
      if (json) {
        if (typeof x !== 'string' || x.length !== 2 * n || /[^0-9a-f]/.test(x)) throw bad(`"${key}" must be ${2 * n} lowercase hex digits`);
        return fromHex(x);
      }
      if (!(x instanceof Uint8Array) || x.length !== n) throw bad(`"${key}" must be bin of ${n} bytes`);
      return x;
    }
    case 'any': return x;
    case 'body':
      if (encode(x).length > ctx.lim.max_body) throw new CodecError('limit', `signal body over ${ctx.lim.max_body} bytes`);
      return x;
    case 'map':
      if (kind(x) !== 'map') throw bad(`"${key}" must be a map`);
      return x;
    case 'cmds': return array(ctx, key, x).map((c) => command(ctx, c));
    case 'results':
      return array(ctx, key, x).map((r) => {
        if (kind(r) !== 'map') throw bad('a result must be a map');
        return fields(ctx, r, { code: 'code', version: 'uint?', key: 'str?', rule: 'str?' });
      });
    case 'items': {
      const items = array(ctx, key, x).map((it) => {
        if (kind(it) !== 'map') throw bad('a delta must be a map');
        return fields(ctx, it, DELTA);
      });
      if (items.length === 0) throw bad('"items" is empty');
      return items;
    }
    case 'limits':
      if (kind(x) !== 'map') throw bad('"limits" must be a map');
      return fields(ctx, x, { max_frame: 'uint', max_commands: 'uint', max_subscriptions: 'uint', rate: 'uint', burst: 'uint' });
    case 'dedup':
      return array(ctx, key, x, Infinity).map((e) => {
        if (!Array.isArray(e) || e.length !== 3 || kind(e[2]) !== 'map') throw bad('dedup entry must be [client_id, seq, outcome]');
        return [field(ctx, 'client_id', 'id16', e[0]), field(ctx, 'seq', 'uint', e[1]), fields(ctx, e[2], STORED)];
      });
  }
  throw new Error(`spec type ${type}`);
}

function array(ctx, key, x, max = ctx.lim.max_commands) {
  if (!Array.isArray(x)) throw bad(`"${key}" must be an array`);
  if (x.length > max) throw new CodecError('limit', `"${key}" has ${x.length} items, limit ${max}`);
  return x;
}

function command(ctx, c) {
  if (kind(c) !== 'map') throw bad('a command must be a map');
  const out = fields(ctx, c, { op: 'str', path: 'str', from: 'str?', key: 'str?' });
  if (!OPS.includes(out.op)) throw bad(`unknown op "${out.op}"`);
  if (hasKey(c, 'value')) out.value = c.value;
  return out;
}

// The known fields of a map, checked; unknown keys are dropped, null reads as absent.
function fields(ctx, m, spec) {
  const out = {};
  for (const [key, t] of Object.entries(spec)) {
    const opt = t.endsWith('?');
    const type = opt ? t.slice(0, -1) : t;
    const x = hasKey(m, key) ? m[key] : undefined;
    if (x === undefined || (x === null && type !== 'any' && type !== 'body')) {
      if (!opt) throw bad(`missing "${key}"`);
      continue;
    }
    out[key] = field(ctx, key, type, x);
  }
  return out;
}

function consecutive(from, items) {
  let at = from;
  for (const it of items) {
    if (Number(it.version) - it.commands.length !== Number(at)) throw bad('deltas are not consecutive');
    at = it.version;
  }
}

/** Checks a decoded envelope map of direction dir ('c2s', 's2c', 'record'); returns the message. */
export function check(m, dir, json = false, lim = dir === 'record' ? RECORD_LIMITS : FRAME_LIMITS) {
  if (kind(m) !== 'map') throw bad('a message must be a map');
  if (!hasKey(m, 'v') || kind(m.v) !== 'int') throw bad('missing or bad "v"');
  if (!hasKey(m, 't') || typeof m.t !== 'string') throw bad('missing or bad "t"');
  if (m.v !== VERSION) throw new CodecError('unsupported_version', `schema version ${m.v}`);
  const spec = SPEC[dir][m.t];
  if (!spec || !Object.prototype.hasOwnProperty.call(SPEC[dir], m.t)) throw new CodecError('unknown_type', `unknown type "${m.t}"`);
  const ctx = { json, lim };
  const out = { v: m.v, t: m.t, ...fields(ctx, m, spec) };
  if (out.items) consecutive(out.from_version, out.items);
  if (dir === 'record' && m.t === 'outcome' && !out.dup &&
      Number(out.version_after) !== Number(out.version_before) + out.commands.length) {
    throw bad('version_after must be version_before + len(commands)');
  }
  if (dir === 'record' && m.t === 'sync_reply' && !out.state && !out.items) throw bad('sync_reply needs state or items');
  return out;
}

/** Decodes a msgpack frame or record. Throws CodecError (bad_frame, unknown_type, ...). */
export function decodeMessage(buf, dir, lim = dir === 'record' ? RECORD_LIMITS : FRAME_LIMITS) {
  if (buf.length > lim.max_frame) throw new CodecError('limit', `message of ${buf.length} bytes over ${lim.max_frame}`);
  let m;
  try {
    m = decode(buf, { max_depth: LIMITS.max_depth + 8, max_str: lim.max_frame });
  } catch (e) {
    if (e instanceof CodecError) throw bad(e.message);
    throw e;
  }
  return check(m, dir, false, lim);
}

/** Decodes a JSON text frame. */
export function decodeMessageJSON(text, dir, lim = FRAME_LIMITS) {
  if (text.length > lim.max_frame) throw new CodecError('limit', 'message over max_frame');
  let m;
  try {
    m = parseJSON(text);
  } catch (e) {
    if (e instanceof CodecError) throw bad(e.message);
    throw e;
  }
  return check(m, dir, true, lim);
}

/** The canonical msgpack bytes of a message (fields as in the wire, client_id etc. as bytes). */
export function encodeMessage(msg) {
  return encode(strip(msg));
}

function strip(msg) {
  const o = {};
  for (const [k, x] of Object.entries(msg)) if (x !== undefined) o[k] = x;
  return o;
}

const HEX_KEYS = new Set(['client_id', 'chain', 'digest']);

// The JSON form of a message: fixed-size byte fields as hex (values keep {"$bin"}).
function hexify(msg, depth = 0) {
  const o = {};
  for (const [k, x] of Object.entries(msg)) {
    if (x === undefined) continue;
    if (HEX_KEYS.has(k) && x instanceof Uint8Array) o[k] = toHex(x);
    else if (k === 'items' && Array.isArray(x)) o[k] = x.map((it) => hexify(it, depth + 1));
    else if (k === 'dedup' && Array.isArray(x)) o[k] = x.map((e) => [toHex(e[0]), e[1], hexify(e[2], depth + 1)]);
    else o[k] = x;
  }
  return o;
}

/** The JSON text of a message. */
export function encodeMessageJSON(msg) {
  return stringifyJSON(hexify(msg));
}

/** The JSON-form value of a message (hex byte fields), e.g. to compare with the vectors. */
export function messageToJSONValue(msg) {
  return hexify(msg);
}
