// SPDX-License-Identifier: Apache-2.0
// rules: rule sets (schemas/RULES.md) in JS, the same semantics as core/rules.c, so the
// optimistic client refuses at once what the processor will refuse. compileRules() takes
// a rules document (a value from codec.parseJSON, or plain JSON.parse output) and
// returns a compiled set for Doc.setRules(); it checks the structure the engine relies on
// and throws RulesError naming the JSON path of the first problem (the CLI's validator,
// core/rules.c, is the strict one). Pure: no clock, no I/O.

import { kind, floatOf, hasKey, setKey, equal } from './codec.js';
import { parsePointer } from './pointer.js';

export class RulesError extends Error {}

const OPS = ['add', 'remove', 'replace', 'move', 'copy', 'test', 'incr', 'merge', 'create'];
const WRITE_OPS = new Set(['add', 'replace', 'merge', 'create']);
const FROM_OPS = new Set(['move', 'copy']);
const STAR = Symbol('*');
const VARS = { $user: 'user', $ts: 'ts', $version: 'version', $key: 'key' };

function pattern(text, where, tailOk) {
  const toks = typeof text === 'string' ? parsePointer(text) : null;
  if (!toks) throw new RulesError(`${where}: bad pointer pattern`);
  let tail = false;
  if (toks.length && toks[toks.length - 1] === '**') {
    if (!tailOk) throw new RulesError(`${where}: bad pointer pattern: "**" is not allowed here`);
    tail = true;
    toks.pop();
  }
  if (toks.some((t) => t === '**')) throw new RulesError(`${where}: bad pointer pattern: "**" only last`);
  return { segs: toks.map((t) => (t === '*' ? STAR : t)), tail };
}

function ops(list, where) {
  if (!Array.isArray(list) || !list.length) throw new RulesError(`${where}: must be a non-empty array`);
  list.forEach((o, i) => { if (!OPS.includes(o)) throw new RulesError(`${where}[${i}]: unknown op "${o}"`); });
  return new Set(list);
}

/** Compiles a rules document; throws RulesError. */
export function compileRules(doc) {
  if (kind(doc) !== 'map' || !Array.isArray(doc.rules)) throw new RulesError('$: must be an object with "rules"');
  const out = { defaultRole: doc.default_role ?? 'member', allow: [], constraint: [], stamp: [] };
  doc.rules.forEach((r, i) => {
    const w = `rules[${i}]`;
    if (kind(r) !== 'map' || typeof r.name !== 'string' || !r.name) throw new RulesError(`${w}.name: must be a string`);
    if (r.allow) {
      const a = r.allow;
      out.allow.push({
        name: r.name,
        ops: ops(a.ops, `${w}.allow.ops`),
        paths: (a.paths || []).map((p, k) => pattern(p, `${w}.allow.paths[${k}]`, true)),
        roles: a.roles ?? null,
        where: (a.where || []).map((c, k) => {
          const ptr = c.target ?? c.value;
          const toks = typeof ptr === 'string' ? parsePointer(ptr) : null;
          if (!toks) throw new RulesError(`${w}.allow.where[${k}]: bad pointer`);
          return { onValue: hasKey(c, 'value'), toks, ne: hasKey(c, 'ne'), want: hasKey(c, 'ne') ? c.ne : c.eq };
        }),
      });
    } else if (r.constraint) {
      out.constraint.push({ name: r.name, path: pattern(r.constraint.path, `${w}.constraint.path`, false), schema: r.constraint.schema });
    } else if (r.stamp) {
      const s = r.stamp;
      for (const [f, v] of Object.entries(s.set || {})) {
        if (!VARS[v]) throw new RulesError(`${w}.stamp.set.${f}: must be one of $user, $ts, $version, $key`);
      }
      out.stamp.push({
        name: r.name, path: pattern(s.path, `${w}.stamp.path`, false),
        on: s.on ? ops(s.on, `${w}.stamp.on`) : new Set(['add', 'create']), set: s.set,
      });
    } else {
      throw new RulesError(`${w}: needs exactly one of "allow", "constraint" and "stamp"`);
    }
  });
  return out;
}

/** The anchor length when toks match (extra: one unknown token follows), else -1. */
function match(pat, toks, extra = false) {
  const n = pat.segs.length;
  const have = toks.length + (extra ? 1 : 0);
  if (have < n || (have > n && !pat.tail)) return -1;
  for (let i = 0; i < Math.min(n, toks.length); i++) {
    if (pat.segs[i] !== STAR && pat.segs[i] !== toks[i]) return -1;
  }
  return n;
}

const INDEX_RE = /^(0|[1-9][0-9]*)$/;

/** [value, found] at tokens under root. */
function resolve(root, toks) {
  let cur = root;
  for (const t of toks) {
    const k = kind(cur);
    if (k === 'map') {
      if (!hasKey(cur, t)) return [undefined, false];
      cur = cur[t];
    } else if (k === 'array') {
      if (!INDEX_RE.test(t) || Number(t) >= cur.length) return [undefined, false];
      cur = cur[Number(t)];
    } else {
      return [undefined, false];
    }
  }
  return [cur, true];
}

function condHolds(c, anchor, cmd, ctx, role) {
  let v;
  let found;
  if (c.onValue) {
    if (!hasKey(cmd, 'value') || cmd.value === undefined) return false;
    [v, found] = resolve(cmd.value, c.toks);
  } else {
    if (!anchor[1]) return false;
    [v, found] = resolve(anchor[0], c.toks);
  }
  if (!found) return false;
  let eq;
  if (c.want === '$user') eq = typeof v === 'string' && v === (ctx.user ?? '');
  else if (c.want === '$role') eq = typeof v === 'string' && v === role;
  else eq = equal(v, c.want);
  return c.ne ? !eq : eq;
}

function permits(a, state, cmd, ctx, role) {
  if (!a.ops.has(cmd.op)) return [false, false];
  if (a.roles && !a.roles.includes(role)) return [false, false];
  const ptoks = parsePointer(cmd.path ?? '');
  const pa = a.paths.map((p) => match(p, ptoks)).find((m) => m >= 0);
  if (pa === undefined) return [false, false];
  const anchors = [ptoks.slice(0, pa)];
  if (FROM_OPS.has(cmd.op)) {
    const ftoks = parsePointer(cmd.from ?? '');
    const fa = a.paths.map((p) => match(p, ftoks)).find((m) => m >= 0);
    if (fa === undefined) return [false, true];
    anchors.push(ftoks.slice(0, fa));
  }
  for (const c of a.where) {
    for (const toks of anchors) {
      if (!condHolds(c, resolve(state, toks), cmd, ctx, role)) return [false, true];
    }
  }
  return [true, true];
}

function underField(pat, field, toks) {
  const n = pat.segs.length;
  if (toks.length <= n) return false;
  for (let i = 0; i < n; i++) if (pat.segs[i] !== STAR && pat.segs[i] !== toks[i]) return false;
  return toks[n] === field;
}

function stampGuard(st, cmd) {
  const ptoks = parsePointer(cmd.path ?? '');
  const fields = Object.keys(st.set);
  for (const f of fields) {
    if (underField(st.path, f, ptoks)) return true;
    if (cmd.op === 'move' && underField(st.path, f, parsePointer(cmd.from ?? ''))) return true;
  }
  if (FROM_OPS.has(cmd.op)) return match(st.path, ptoks) >= 0;
  if (!WRITE_OPS.has(cmd.op) || st.on.has(cmd.op)) return false;
  if (match(st.path, ptoks, cmd.op === 'create') < 0) return false;
  return kind(cmd.value) === 'map' && fields.some((f) => hasKey(cmd.value, f));
}

/** Before a command (state before it): the name of the rule it breaks, or null. */
export function checkCommand(rules, state, cmd, ctx) {
  const role = ctx.role || rules.defaultRole;
  if (rules.allow.length) {
    let near = null;
    let ok = false;
    for (const a of rules.allow) {
      const [p, n] = permits(a, state, cmd, ctx, role);
      if (p) { ok = true; break; }
      if (n && near === null) near = a.name;
    }
    if (!ok) return near ?? 'allow';
  }
  for (const st of rules.stamp) if (stampGuard(st, cmd)) return st.name;
  return null;
}

export const stampsOp = (rules, op) => rules.stamp.some((s) => s.on.has(op));

/** The value with every applying stamp's fields set (a new object), or value itself. */
export function stampValue(rules, op, locToks, value, ctx, version) {
  let v = value;
  for (const st of rules.stamp) {
    if (!st.on.has(op) || kind(v) !== 'map' || match(st.path, locToks) < 0) continue;
    const o = {};
    for (const k of Object.keys(v)) setKey(o, k, v[k]);
    const vals = { user: ctx.user ?? '', ts: ctx.ts ?? 0, version: version + 1, key: locToks.length ? locToks[locToks.length - 1] : '' };
    for (const [f, name] of Object.entries(st.set)) setKey(o, f, vals[VARS[name]]);
    v = o;
  }
  return v;
}

const num = (x) => Number(floatOf(x));

/** Does v satisfy the schema subset of RULES.md? */
export function validate(s, v) {
  const k = kind(v);
  if (hasKey(s, 'type')) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    const have = { nil: ['null'], bool: ['boolean'], int: ['integer', 'number'], float: ['number'], str: ['string'], array: ['array'], map: ['object'] }[k] || [];
    if (!have.some((t) => types.includes(t))) return false;
  }
  if (hasKey(s, 'const') && !equal(v, s.const)) return false;
  if (hasKey(s, 'enum') && !s.enum.some((e) => equal(v, e))) return false;
  if (k === 'int' || k === 'float') {
    if (hasKey(s, 'minimum') && num(v) < num(s.minimum)) return false;
    if (hasKey(s, 'maximum') && num(v) > num(s.maximum)) return false;
  }
  if (k === 'str') {
    const n = [...v].length;
    if (hasKey(s, 'minLength') && n < num(s.minLength)) return false;
    if (hasKey(s, 'maxLength') && n > num(s.maxLength)) return false;
  }
  if (k === 'array') {
    if (hasKey(s, 'minItems') && v.length < num(s.minItems)) return false;
    if (hasKey(s, 'maxItems') && v.length > num(s.maxItems)) return false;
    if (hasKey(s, 'items') && !v.every((x) => validate(s.items, x))) return false;
  }
  if (k === 'map') {
    const keys = Object.keys(v);
    if (hasKey(s, 'minProperties') && keys.length < num(s.minProperties)) return false;
    if (hasKey(s, 'maxProperties') && keys.length > num(s.maxProperties)) return false;
    if ((s.required || []).some((r) => !hasKey(v, r))) return false;
    const props = s.properties || {};
    for (const key of keys) {
      if (hasKey(props, key)) {
        if (!validate(props[key], v[key])) return false;
      } else if (hasKey(s, 'additionalProperties')) {
        const ap = s.additionalProperties;
        if (ap === false || (kind(ap) === 'map' && !validate(ap, v[key]))) return false;
      }
    }
  }
  return true;
}

function walk(pat, schema, node, i, toks) {
  if (i === pat.segs.length) return validate(schema, node);
  const k = kind(node);
  if (k !== 'map' && k !== 'array') return true;
  const seg = pat.segs[i];
  let names;
  if (i < toks.length) {
    if (seg !== STAR && seg !== toks[i]) return true;
    names = [toks[i]];
    // the last token "-" names the item the command appended
    if (toks[i] === '-' && i === toks.length - 1 && k === 'array') names = node.length ? [String(node.length - 1)] : [];
  } else if (seg !== STAR) {
    names = [seg];
  } else {
    names = k === 'map' ? Object.keys(node) : node.map((_, j) => String(j));
  }
  for (const name of names) {
    const [c, ok] = resolve(node, [name]);
    if (ok && !walk(pat, schema, c, i + 1, toks)) return false;
  }
  return true;
}

/** After a command (state after it): the name of the constraint it breaks, or null. */
export function checkAfter(rules, state, cmd, effToks) {
  if (cmd.op === 'test') return null;
  for (const c of rules.constraint) {
    let ok = walk(c.path, c.schema, state, 0, effToks);
    if (ok && cmd.op === 'move') ok = walk(c.path, c.schema, state, 0, parsePointer(cmd.from ?? ''));
    if (!ok) return c.name;
  }
  return null;
}

/** Every location of state that breaks a constraint: [{rule, where}] (flushline rules check). */
export function checkDoc(rules, state) {
  const found = [];
  for (const c of rules.constraint) {
    const visit = (node, i, where) => {
      if (i === c.path.segs.length) {
        if (!validate(c.schema, node)) found.push({ rule: c.name, where });
        return;
      }
      const k = kind(node);
      if (k !== 'map' && k !== 'array') return;
      const seg = c.path.segs[i];
      const names = seg !== STAR ? [seg] : k === 'map' ? Object.keys(node) : node.map((_, j) => String(j));
      for (const n of names) {
        const [x, ok] = resolve(node, [n]);
        if (ok) visit(x, i + 1, `${where}/${n.replace(/~/g, '~0').replace(/\//g, '~1')}`);
      }
    };
    visit(state, 0, '');
  }
  return found;
}
