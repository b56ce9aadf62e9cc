// SPDX-License-Identifier: Apache-2.0
// engine: the Flushline apply engine in JS (schemas/ENGINE.md), the same semantics as
// the C engine (core/engine): pointers, the nine ops, caps, flushes, dedup, create
// keys and the chain hash. The client applies its pending commands with it
// (optimistic state) and advances its confirmed copy with applyApplied() on deltas.
// Pure: no clock, no I/O, no randomness.

import { blake2b } from './blake2b.js';
import {
  Float, kind, floatOf, normInt, setKey, hasKey, utf8, encode, equal, clone, toHex, float,
} from './codec.js';
import { checkCommand, checkAfter, stampsOp, stampValue } from './rules.js';
import { parsePointer, escapeToken } from './pointer.js';

export const CODES = {
  ok: 0, path_not_found: 1, type_mismatch: 2, test_failed: 3, too_large: 4, invalid: 5, forbidden: 6,
  version_mismatch: 7, gap: 8, aborted: 9, key_exists: 10, rule_violation: 11, bad_frame: 20, unknown_type: 21,
  unsupported_version: 22, unauthorized: 23, token_expired: 24, doc_forbidden: 25, rate_limited: 26,
  unavailable: 27, limit: 28, not_subscribed: 29, bad_doc_id: 30, internal: 31,
};
export const CODE_NAMES = Object.fromEntries(Object.entries(CODES).map(([k, v]) => [v, k]));
/** The name of a numeric code ('code_<n>' when unknown). */
export const codeName = (n) => CODE_NAMES[Number(n)] ?? `code_${n}`;

export const DEFAULT_CONFIG = { max_state_bytes: 1 << 20, max_depth: 64, max_dedup: 4096 };
export const ZERO_CHAIN = new Uint8Array(32);

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const VALUE_OPS = new Set(['add', 'replace', 'test', 'incr', 'merge', 'create']);
const FROM_OPS = new Set(['move', 'copy']);
const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test', 'incr', 'merge', 'create']);

class Fail {
  constructor(code, rule) { this.code = code; this.rule = rule; }
}
const fail = (code, rule) => { throw new Fail(code, rule); };

// ------------------------------------------------------------------ sizes

const hdr = (n) => (n <= 15 ? 1 : n < 0x10000 ? 3 : 5);
const strHdr = (n) => (n <= 31 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5);
const keySize = (k) => { const n = utf8(k).length; return strHdr(n) + n; };

/** Canonical encoded size of a value. */
export function sizeOf(x) { return encode(x).length; }

/** Container depth of a value: scalars 0, a container 1 + its deepest child. */
export function depthOf(x) {
  const k = kind(x);
  if (k === 'array') return 1 + x.reduce((d, e) => Math.max(d, depthOf(e)), 0);
  if (k === 'map') return 1 + Object.keys(x).reduce((d, e) => Math.max(d, depthOf(x[e])), 0);
  return 0;
}

// ------------------------------------------------------------------ pointers

export { parsePointer, escapeToken }; // pointer.js

/** A pointer from tokens. */
export const pointer = (...tokens) => tokens.map((t) => `/${escapeToken(t)}`).join('');

const INDEX_RE = /^(0|[1-9][0-9]*)$/;

function index(tok, len, addLike) {
  if (tok === '-') { if (addLike) return len; fail('path_not_found'); }
  if (!INDEX_RE.test(tok)) fail('invalid');
  const i = tok.length > 16 ? Infinity : Number(tok);
  if (addLike ? i > len : i >= len) fail('path_not_found');
  return i;
}

// Walks to the parent of the last token. mode: 'exist', 'add', 'upsert' (incr/merge: exist,
// or a missing key of an existing map). Returns {parent, key} (key: string or array index)
// with exists telling whether the target is there.
function locate(state, tokens, mode) {
  let cur = state;
  for (let i = 0; i < tokens.length - 1; i++) {
    const t = tokens[i];
    const k = kind(cur);
    if (k === 'map') {
      if (!hasKey(cur, t)) fail('path_not_found');
      cur = cur[t];
    } else if (k === 'array') {
      cur = cur[index(t, cur.length, false)];
    } else fail('type_mismatch');
  }
  const t = tokens[tokens.length - 1];
  const k = kind(cur);
  if (k === 'map') {
    const exists = hasKey(cur, t);
    if (!exists && mode === 'exist') fail('path_not_found');
    return { parent: cur, key: t, exists, isArray: false };
  }
  if (k === 'array') {
    const i = index(t, cur.length, mode === 'add');
    return { parent: cur, key: i, exists: i < cur.length, isArray: true };
  }
  fail('type_mismatch');
}

// ------------------------------------------------------------------ the document

/**
 * One document: state (a map), version, chain, dedup table.
 */
export class Doc {
  /**
   * @param {string} id the document id
   * @param {{state?: object, version?: number, chain?: Uint8Array, config?: object}} [opts]
   */
  constructor(id, opts = {}) {
    this.id = id;
    this.config = { ...DEFAULT_CONFIG, ...(opts.config || {}) };
    this.state = opts.state ?? {};
    this.version = opts.version ?? 0;
    this.chain = opts.chain ?? ZERO_CHAIN;
    this.size = sizeOf(this.state);
    this.dedup = new Map(); // hex client_id -> {seq, outcome}; insertion order = recording order
    this.evicted = 0;
    this.undo = null;
    this.rules = null; // a compiled rule set (rules.js compileRules), schemas/RULES.md
    this.role = '';
    this.ruleCtx = null; // {user, role, ts} of the flush being applied
  }

  /**
   * Applies a rule set from now on (null: none), as the processor does for the document's
   * prefix: apply() takes user and ts from the flush (flush.user, flush.ts), the role from
   * here ('' = the set's default role); applyLocal() takes all three from its ctx argument.
   */
  setRules(rules, role = '') {
    this.rules = rules;
    this.role = role || '';
  }

  /** A deep copy (state, version, chain, dedup table, rules). */
  copy() {
    const d = new Doc(this.id, { state: clone(this.state), version: this.version, chain: this.chain, config: this.config });
    d.setRules(this.rules, this.role);
    for (const [k, e] of this.dedup) d.dedup.set(k, e);
    d.evicted = this.evicted;
    return d;
  }

  /** BLAKE2b-256 of the canonical state. */
  digest() { return blake2b(encode(this.state)); }

  // Primitive mutations: each logs its inverse and adjusts the tracked size.
  log(fn, dsize) {
    this.size += dsize;
    this.undo.push(() => { fn(); this.size -= dsize; });
  }
  mapSet(obj, key, val) {
    if (hasKey(obj, key)) {
      const old = obj[key];
      obj[key] = val;
      this.log(() => { obj[key] = old; }, sizeOf(val) - sizeOf(old));
    } else {
      const n = Object.keys(obj).length;
      setKey(obj, key, val);
      this.log(() => { delete obj[key]; }, hdr(n + 1) - hdr(n) + keySize(key) + sizeOf(val));
    }
  }
  mapDel(obj, key) {
    const old = obj[key];
    const n = Object.keys(obj).length;
    delete obj[key];
    this.log(() => setKey(obj, key, old), hdr(n - 1) - hdr(n) - keySize(key) - sizeOf(old));
  }
  arrInsert(arr, i, val) {
    const n = arr.length;
    arr.splice(i, 0, val);
    this.log(() => arr.splice(i, 1), hdr(n + 1) - hdr(n) + sizeOf(val));
  }
  arrRemove(arr, i) {
    const n = arr.length;
    const [old] = arr.splice(i, 1);
    this.log(() => arr.splice(i, 0, old), hdr(n - 1) - hdr(n) - sizeOf(old));
  }
  arrSet(arr, i, val) {
    const old = arr[i];
    arr[i] = val;
    this.log(() => { arr[i] = old; }, sizeOf(val) - sizeOf(old));
  }
  put(loc, val, insert) {
    if (!loc.isArray) this.mapSet(loc.parent, loc.key, val);
    else if (insert) this.arrInsert(loc.parent, loc.key, val);
    else this.arrSet(loc.parent, loc.key, val);
  }
  del(loc) {
    if (loc.isArray) this.arrRemove(loc.parent, loc.key);
    else this.mapDel(loc.parent, loc.key);
  }
  rollback(mark) {
    while (this.undo.length > mark) this.undo.pop()();
  }
  depthCheck(ntokens, val) {
    if (ntokens + depthOf(val) > this.config.max_depth) fail('too_large');
  }

  /** The key create uses at version V (counter 0, 1, ... until free in target). */
  createKey(v, target) {
    const id = utf8(this.id);
    for (let counter = 0; ; counter++) {
      const tail = new Uint8Array(13);
      const dv = new DataView(tail.buffer);
      dv.setBigUint64(1, BigInt(v));
      dv.setUint32(9, counter);
      const h = blake2b([id, tail]);
      const key = base32(h.subarray(0, 10));
      if (!hasKey(target, key)) return key;
    }
  }

  // Applies one command at the next version; returns {key?} or throws Fail. On a throw the
  // command's own mutations are undone.
  command(cmd, strictKey = false) {
    const mark = this.undo.length;
    try {
      if (this.rules && this.ruleCtx && !strictKey) return this.commandRules(cmd);
      return this.commandInner(cmd, strictKey);
    } catch (e) {
      this.rollback(mark);
      throw e;
    }
  }

  // Under rules (RULES.md, Evaluation order): shape, then allow/conditions/stamp guards on
  // the state before, then stamps, the command, and the constraints on the state after.
  // Returns {key?, applied} (the command with its stamped value).
  commandRules(cmd) {
    const rules = this.rules;
    const ctx = this.ruleCtx;
    shapeCheck(cmd);
    const rule = checkCommand(rules, this.state, cmd, ctx);
    if (rule !== null) fail('rule_violation', rule);
    const ptoks = parsePointer(cmd.path ?? '');
    let c2 = cmd;
    let r;
    if (cmd.op === 'create') {
      const stamp = stampsOp(rules, 'create')
        ? (key) => stampValue(rules, 'create', [...ptoks, key], cmd.value, ctx, this.version)
        : null;
      r = this.commandInner(cmd, false, stamp);
      if (r.value !== undefined) c2 = { ...cmd, value: r.value };
    } else {
      if (stampsOp(rules, cmd.op)) c2 = { ...cmd, value: stampValue(rules, cmd.op, ptoks, cmd.value, ctx, this.version) };
      r = this.commandInner(c2, false);
    }
    const eff = cmd.op === 'create' ? [...ptoks, r.key] : ptoks;
    const broken = checkAfter(rules, this.state, c2, eff);
    if (broken !== null) fail('rule_violation', broken);
    return { key: r.key, applied: c2 };
  }

  commandInner(cmd, strictKey, stampCreate = null) {
    const op = cmd.op;
    const path = cmd.path ?? '';
    const from = cmd.from ?? '';
    shapeCheck(cmd);
    const ptoks = parsePointer(path);
    const ftoks = FROM_OPS.has(op) ? parsePointer(from) : null;
    const st = this.state;
    switch (op) {
      case 'add': {
        const loc = locate(st, ptoks, 'add');
        this.depthCheck(ptoks.length, cmd.value);
        this.put(loc, clone(cmd.value), true);
        break;
      }
      case 'remove': this.del(locate(st, ptoks, 'exist')); break;
      case 'replace': {
        const loc = locate(st, ptoks, 'exist');
        this.depthCheck(ptoks.length, cmd.value);
        this.put(loc, clone(cmd.value), false);
        break;
      }
      case 'move': {
        const floc = locate(st, ftoks, 'exist');
        if (from === path) break;
        const val = floc.parent[floc.key];
        this.del(floc);
        const loc = locate(st, ptoks, 'add');
        this.depthCheck(ptoks.length, val);
        this.put(loc, val, true);
        break;
      }
      case 'copy': {
        const val = ftoks.length === 0 ? st : (() => { const f = locate(st, ftoks, 'exist'); return f.parent[f.key]; })();
        const copy = clone(val);
        const loc = locate(st, ptoks, 'add');
        this.depthCheck(ptoks.length, copy);
        this.put(loc, copy, true);
        break;
      }
      case 'test': {
        const cur = ptoks.length === 0 ? st : (() => { const l = locate(st, ptoks, 'exist'); return l.parent[l.key]; })();
        if (!equal(cur, cmd.value)) fail('test_failed');
        break;
      }
      case 'incr': {
        if (ptoks.length === 0) fail('type_mismatch');
        const loc = locate(st, ptoks, 'upsert');
        const cur = loc.exists ? loc.parent[loc.key] : 0;
        const a = kind(cur), b = kind(cmd.value);
        if (a !== 'int' && a !== 'float') fail('type_mismatch');
        let res;
        if (a === 'int' && b === 'int') {
          const s = BigInt(cur) + BigInt(cmd.value);
          if (s < INT64_MIN || s > INT64_MAX) fail('too_large');
          res = normInt(s);
        } else {
          const s = Number(a === 'int' ? cur : floatOf(cur)) + Number(b === 'int' ? cmd.value : floatOf(cmd.value));
          if (!Number.isFinite(s)) fail('too_large');
          res = float(s);
        }
        this.put(loc, res, false);
        break;
      }
      case 'merge': {
        let target;
        if (ptoks.length === 0) target = st;
        else {
          const loc = locate(st, ptoks, 'upsert');
          if (!loc.exists) {
            this.depthCheck(ptoks.length, cmd.value);
            this.put(loc, clone(cmd.value), false);
            break;
          }
          target = loc.parent[loc.key];
        }
        if (kind(target) !== 'map') fail('type_mismatch');
        this.depthCheck(ptoks.length, cmd.value);
        for (const k of Object.keys(cmd.value)) this.mapSet(target, k, clone(cmd.value[k]));
        break;
      }
      case 'create': {
        let target;
        if (ptoks.length === 0) target = st;
        else { const loc = locate(st, ptoks, 'exist'); target = loc.parent[loc.key]; }
        if (kind(target) !== 'map') fail('type_mismatch');
        let key;
        if (strictKey) {
          key = cmd.key ?? '';
          if (hasKey(target, key)) fail('key_exists');
        } else {
          key = typeof cmd.key === 'string' && !hasKey(target, cmd.key) ? cmd.key : this.createKey(this.version + 1, target);
        }
        const value = stampCreate ? stampCreate(key) : cmd.value;
        this.depthCheck(ptoks.length + 1, value);
        this.mapSet(target, key, clone(value));
        if (this.size > this.config.max_state_bytes) fail('too_large');
        return stampCreate ? { key, value } : { key };
      }
    }
    if (this.size > this.config.max_state_bytes) fail('too_large');
    return {};
  }

  /**
   * Applies a flush {client_id (Uint8Array 16), seq, base_version, if_version?, atomic?, commands}.
   * Returns the outcome {code, duplicate, version_before, version_after, results, applied, chain}.
   */
  apply(flush) {
    this.ruleCtx = this.rules ? { user: flush.user ?? '', ts: flush.ts ?? 0, role: this.role } : null;
    try {
      return this.applyFlush(flush);
    } finally {
      this.ruleCtx = null;
    }
  }

  applyFlush(flush) {
    const seq = Number(flush.seq);
    const here = () => ({ duplicate: false, version_before: this.version, version_after: this.version, results: [], applied: [], chain: this.chain });
    if (seq === 0) return { code: 'invalid', ...here() };
    const cid = toHex(flush.client_id);
    const entry = this.dedup.get(cid);
    if (entry) {
      if (seq === entry.seq) return { ...entry.outcome, duplicate: true, applied: [] };
      if (seq < entry.seq) return { code: 'ok', ...here(), duplicate: true };
      if (seq > entry.seq + 1) return { code: 'gap', ...here() };
    } else if (seq > 1 && this.evicted === 0) {
      return { code: 'gap', ...here() };
    }
    let out;
    if (flush.if_version !== undefined && flush.if_version !== null && Number(flush.if_version) !== this.version) {
      out = { code: 'version_mismatch', ...here() };
    } else {
      out = this.applyCommands(flush.commands || [], !!flush.atomic);
    }
    this.record(cid, seq, out);
    return out;
  }

  record(cid, seq, out) {
    const stored = { ...out, applied: [] };
    if (this.dedup.has(cid)) this.dedup.delete(cid);
    else if (this.dedup.size >= this.config.max_dedup) {
      this.dedup.delete(this.dedup.keys().next().value);
      this.evicted++;
    }
    this.dedup.set(cid, { seq, outcome: stored });
  }

  applyCommands(commands, atomic) {
    const before = this.version;
    const results = [];
    const applied = [];
    this.undo = [];
    let failed = -1;
    for (let i = 0; i < commands.length; i++) {
      const cmd = commands[i];
      try {
        const r = this.command(cmd);
        this.version++;
        const res = { code: 'ok', version: this.version };
        const a = chainCommand(r.applied ?? cmd);
        if (r.key !== undefined) { res.key = r.key; a.key = r.key; }
        results.push(res);
        applied.push(a);
      } catch (e) {
        if (!(e instanceof Fail)) throw e;
        results.push(e.rule === undefined ? { code: e.code, version: 0 } : { code: e.code, version: 0, rule: e.rule });
        if (atomic) { failed = i; break; }
      }
    }
    if (atomic && failed >= 0) {
      this.rollback(0);
      this.version = before;
      this.undo = null;
      const res = commands.map((_, i) => (i === failed ? results[failed] : { code: 'aborted', version: 0 }));
      return { code: 'aborted', duplicate: false, version_before: before, version_after: before, results: res, applied: [], chain: this.chain };
    }
    this.undo = null;
    if (applied.length) this.chain = chainHash(this.chain, before, this.version, applied);
    return { code: 'ok', duplicate: false, version_before: before, version_after: this.version, results, applied, chain: this.chain };
  }

  /**
   * Applies the applied commands of a delta or outcome (create with its key, which must be
   * free) at version `before`; every command must succeed. Checks the chain when given.
   * Throws an Error on any mismatch, leaving the document unchanged.
   */
  applyApplied(before, commands, chain) {
    if (Number(before) !== this.version) throw new Error(`delta from version ${before}, document at ${this.version}`);
    this.undo = [];
    const v0 = this.version;
    try {
      for (const cmd of commands) {
        this.command(cmd, true);
        this.version++;
      }
      const next = commands.length ? chainHash(this.chain, v0, this.version, commands.map(chainCommand)) : this.chain;
      if (chain && toHex(chain) !== toHex(next)) throw new Error('chain mismatch');
      this.chain = next;
    } catch (e) {
      this.rollback(0);
      this.version = v0;
      throw e instanceof Fail ? new Error(`delta command failed: ${e.code}`) : e;
    } finally {
      this.undo = null;
    }
  }

  /**
   * Applies commands without versions, dedup or chain (the optimistic layer): each command
   * that fails is skipped. Returns the codes.
   */
  applyLocal(commands, ctx = null) {
    this.undo = [];
    const codes = [];
    this.ruleCtx = this.rules ? { user: ctx?.user ?? '', ts: ctx?.ts ?? 0, role: ctx?.role || this.role } : null;
    this.lastRules = []; // per command: the rule a rule_violation broke, else null
    try {
      for (const cmd of commands) {
        try {
          this.command(cmd);
          this.version++;
          codes.push('ok');
          this.lastRules.push(null);
        } catch (e) {
          if (!(e instanceof Fail)) throw e;
          codes.push(e.code);
          this.lastRules.push(e.rule ?? null);
        }
      }
    } finally {
      this.undo = null;
      this.ruleCtx = null;
    }
    return codes;
  }
}

/** The checks that need no state (ENGINE.md 1-3): shape, root rules, move into own child. */
function shapeCheck(cmd) {
  const op = cmd.op;
  const hasValue = hasKey(cmd, 'value') && cmd.value !== undefined;
  const path = cmd.path ?? '';
  const from = cmd.from ?? '';
  // 1. shape
  if (!OPS.has(op)) fail('invalid');
  if (VALUE_OPS.has(op) && !hasValue) fail('invalid');
  if (op === 'incr' && !['int', 'float'].includes(kind(cmd.value))) fail('invalid');
  if (op === 'merge' && kind(cmd.value) !== 'map') fail('invalid');
  if (op === 'create' && cmd.key !== undefined && cmd.key !== null && typeof cmd.key !== 'string') fail('invalid');
  if (!parsePointer(path)) fail('invalid');
  if (FROM_OPS.has(op) && !parsePointer(from)) fail('invalid');
  // 2. root rules
  if (['add', 'remove', 'replace', 'move', 'copy'].includes(op) && path === '') fail('forbidden');
  if (op === 'move' && from === '') fail('forbidden');
  // 3. move into own child
  if (op === 'move' && path.startsWith(from) && path.length > from.length && path[from.length] === '/') fail('invalid');
}

/** The command as the chain hash and deltas carry it (only the keys of its op). */
export function chainCommand(cmd) {
  const o = { op: cmd.op, path: cmd.path ?? '' };
  if (FROM_OPS.has(cmd.op)) o.from = cmd.from ?? '';
  if (VALUE_OPS.has(cmd.op)) o.value = cmd.value;
  if (cmd.op === 'create' && cmd.key !== undefined) o.key = cmd.key;
  return o;
}

/** chain = BLAKE2b-256(prev || canonical [version_before, version_after, commands]). */
export function chainHash(prev, before, after, commands) {
  return blake2b([prev, encode([before, after, commands])]);
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
function base32(bytes) {
  let out = '', bits = 0, acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b; bits += 8;
    while (bits >= 5) { out += B32[(acc >>> (bits - 5)) & 31]; bits -= 5; }
    acc &= (1 << bits) - 1;
  }
  if (bits) out += B32[(acc << (5 - bits)) & 31];
  return out;
}

export { Float };
