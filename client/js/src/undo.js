// SPDX-License-Identifier: Apache-2.0
// undo: per-client undo and redo, sequenced like any flush (schemas/vectors/undo/README.md).
//
// An undo sends the inverse of this client's own last change as one atomic flush, and every
// inverse command is guarded by a `test` that the document still holds what the change wrote
// there. When someone else has changed it since, the undo is refused rather than clobbering
// their work: on the client when its optimistic view already shows the change (nothing is
// sent), else by the processor (the `test` fails, the atomic flush applies nothing, the
// outcome is `aborted` with `test_failed`). A refused entry is dropped from the stack.
//
// The inverse is computed exactly: from the applied commands of the change's own delta (what
// the processor really did, create keys included) and the confirmed copy just before it.
// So an entry exists once its change is confirmed; undo() called before waits for it.
// Redo is the inverse of the undo's delta, guarded the same way; a new change clears the
// redo stack. The stacks live as long as the UndoManager: reconnects and resent flushes do
// not touch them (undo after reconnect works like any other).

import { Doc, parsePointer, escapeToken, codeName } from './engine.js';
import { Editor } from './flushline.js';
import { clone, kind, utf8 } from './codec.js';

const VALUE_AT_MISSING = Symbol('missing');

// The value at tokens, or VALUE_AT_MISSING.
function valueAt(state, toks) {
  let cur = state;
  for (const t of toks) {
    const k = kind(cur);
    if (k === 'map') {
      if (!Object.prototype.hasOwnProperty.call(cur, t)) return VALUE_AT_MISSING;
      cur = cur[t];
    } else if (k === 'array') {
      if (!/^(0|[1-9][0-9]*)$/.test(t) || Number(t) >= cur.length) return VALUE_AT_MISSING;
      cur = cur[Number(t)];
    } else {
      return VALUE_AT_MISSING;
    }
  }
  return cur;
}

function byUtf8(a, b) {
  const x = utf8(a), y = utf8(b);
  for (let i = 0; i < x.length && i < y.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

const join = (toks) => toks.map((t) => `/${escapeToken(t)}`).join('');

// A command's target with '-' resolved to the index it lands at.
function resolve(state, path) {
  const toks = parsePointer(path);
  if (!toks || !toks.length) return { toks: toks || [], path, parentKind: 'root' };
  const parent = valueAt(state, toks.slice(0, -1));
  const parentKind = parent === VALUE_AT_MISSING ? 'missing' : kind(parent);
  const last = toks[toks.length - 1];
  if (parentKind === 'array' && last === '-') toks[toks.length - 1] = String(parent.length);
  return { toks, path: join(toks), parentKind };
}

// Undo of writing `after` at r where `old` was (VALUE_AT_MISSING: nothing): test, restore.
function restore(r, old, after) {
  const out = [{ op: 'test', path: r.path, value: clone(after) }];
  if (r.parentKind === 'array') out.push({ op: 'remove', path: r.path });
  else if (old === VALUE_AT_MISSING) out.push({ op: 'remove', path: r.path });
  else out.push({ op: 'replace', path: r.path, value: clone(old) });
  return out;
}

/**
 * The guarded inverse of `applied` (a delta's commands, create keys included) applied to
 * `state`, which is not changed. Returns {commands, absent}: the commands for one atomic
 * flush (the inverse of the last command first, each inverse command after the `test`s that
 * guard it), and the indexes of the `add` commands that put back a removed map member: no
 * command can test that a member is absent, so the client checks those before sending.
 */
export function invert(state, applied, id = 'undo') {
  const doc = new Doc(id, { state: clone(state) });
  const parts = [];
  for (const cmd of applied) {
    const st = doc.state;
    let inv = [];
    let absentAt = -1;
    switch (cmd.op) {
      case 'test': break;
      case 'add': case 'copy': case 'incr': case 'replace': {
        const r = resolve(st, cmd.path);
        const old = r.parentKind === 'array' && cmd.op !== 'replace' && cmd.op !== 'incr' ? VALUE_AT_MISSING : valueAt(st, r.toks);
        doc.applyApplied(doc.version, [cmd]);
        const after = valueAt(doc.state, r.toks);
        inv = cmd.op === 'replace' || (cmd.op === 'incr' && old !== VALUE_AT_MISSING)
          ? [{ op: 'test', path: r.path, value: clone(after) }, { op: 'replace', path: r.path, value: clone(old) }]
          : restore(r, old, after);
        parts.push({ inv, absentAt });
        continue;
      }
      case 'remove': {
        const r = resolve(st, cmd.path);
        const old = valueAt(st, r.toks);
        inv = [{ op: 'add', path: r.path, value: clone(old) }];
        if (r.parentKind === 'map') absentAt = 0;
        break;
      }
      case 'move': {
        if (cmd.from === cmd.path) break;
        const fr = resolve(st, cmd.from);
        const val = valueAt(st, fr.toks);
        const scratch = new Doc(id, { state: clone(st) });
        scratch.applyApplied(0, [{ op: 'remove', path: fr.path }]);
        const r = resolve(scratch.state, cmd.path);
        const old = r.parentKind === 'map' ? valueAt(scratch.state, r.toks) : VALUE_AT_MISSING;
        inv = [{ op: 'test', path: r.path, value: clone(val) }, { op: 'move', from: r.path, path: fr.path }];
        if (old !== VALUE_AT_MISSING) inv.push({ op: 'add', path: r.path, value: clone(old) });
        break;
      }
      case 'merge': {
        const r = resolve(st, cmd.path);
        const target = valueAt(st, r.toks);
        if (target === VALUE_AT_MISSING) {
          doc.applyApplied(doc.version, [cmd]);
          parts.push({ inv: restore(r, VALUE_AT_MISSING, valueAt(doc.state, r.toks)), absentAt });
          continue;
        }
        // in the canonical key order (UTF-8 bytes), as the map travels on the wire
        for (const k of Object.keys(cmd.value).sort(byUtf8)) {
          const kr = { toks: [...r.toks, k], path: join([...r.toks, k]), parentKind: 'map' };
          const old = Object.prototype.hasOwnProperty.call(target, k) ? target[k] : VALUE_AT_MISSING;
          inv.push(...restore(kr, old, cmd.value[k]));
        }
        break;
      }
      case 'create': {
        const toks = parsePointer(cmd.path);
        const r = { toks: [...toks, cmd.key], path: join([...toks, cmd.key]), parentKind: 'map' };
        inv = restore(r, VALUE_AT_MISSING, cmd.value);
        break;
      }
      default: throw new Error(`undo: unknown op ${cmd.op}`);
    }
    doc.applyApplied(doc.version, [cmd]);
    parts.push({ inv, absentAt });
  }
  const commands = [];
  const absent = [];
  for (let i = parts.length - 1; i >= 0; i--) {
    if (parts[i].absentAt >= 0) absent.push(commands.length + parts[i].absentAt);
    commands.push(...parts[i].inv);
  }
  return { commands, absent };
}

/**
 * The client-side check of an inverse against `state` (the optimistic view): null when it
 * would apply, else {code, path, index, reason}: `test_failed` (the document no longer holds
 * what the change wrote), `exists` (a removed member is back), or the engine's code.
 */
export function check(state, inverse, id = 'undo') {
  const doc = new Doc(id, { state: clone(state) });
  const absent = new Set(inverse.absent || []);
  for (let i = 0; i < inverse.commands.length; i++) {
    const c = inverse.commands[i];
    if (absent.has(i) && valueAt(doc.state, parsePointer(c.path)) !== VALUE_AT_MISSING) {
      return { code: 'exists', path: c.path, index: i, reason: refusal('exists', c.path) };
    }
    const [code] = doc.applyLocal([c]);
    if (code !== 'ok') return { code, path: c.path, index: i, reason: refusal(code, c.path) };
  }
  return null;
}

function refusal(code, path) {
  if (code === 'test_failed') return `changed by someone else since: ${path} no longer holds what the change wrote`;
  if (code === 'exists') return `changed by someone else since: ${path} was added again`;
  if (code === 'path_not_found') return `changed by someone else since: ${path} is gone`;
  return `cannot apply at ${path}: ${code}`;
}

/**
 * Undo and redo of one client's changes to one document.
 *
 *   const undo = new UndoManager(client.subscribe('acme/board'));
 *   undo.apply({ op: 'replace', path: '/title', value: 'New' }); // an undoable change
 *   const r = await undo.undo();  // {ok: true} or {ok: false, code, reason}
 *
 * Changes made with the handle's own apply() are not recorded (setup, migrations); those
 * made through this manager are, one entry per flush (the commands of one frame).
 * Events (on(name, fn)): 'change' {canUndo, canRedo, pending}, 'refused' {kind, code, reason, path}.
 */
export class UndoManager extends Editor {
  /**
   * @param {import('./flushline.js').DocHandle} handle
   * @param {{limit?: number}} [opts] entries kept per stack (100)
   */
  constructor(handle, { limit = 100 } = {}) {
    super();
    if (handle.undoManager) throw new Error('undo: the document already has an UndoManager');
    this.handle = handle;
    this.limit = limit;
    this.undoStack = []; // {inverse: {commands, absent}, forward} newest last
    this.redoStack = [];
    this.inflight = new Map(); // seq -> {kind, resolve}
    this.handlers = new Map();
    this.waiters = [];
    handle.undoManager = this;
    handle.onOwnDelta = (f, delta, confirmed) => this.onOwnDelta(f, delta, confirmed);
    handle.onDropped = (f, code) => this.onSettled(f.seq, { ok: false, code, reason: `refused by the gateway: ${code}` });
    this.last = '';
    this.offOutcome = handle.client.on('outcome', (ev) => this.onOutcome(ev));
    this.offChange = handle.client.on('change', (ev) => {
      if (ev.doc !== handle.id) return;
      this.wake();
      this.changed();
    });
  }

  /** Detaches from the document handle. */
  dispose() {
    this.offOutcome();
    this.offChange();
    if (this.handle.undoManager === this) {
      this.handle.undoManager = null;
      this.handle.onOwnDelta = null;
      this.handle.onDropped = null;
    }
  }

  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(fn);
    return () => this.handlers.get(name)?.delete(fn);
  }

  emit(name, ev) { for (const fn of [...(this.handlers.get(name) || [])]) fn(ev); }

  /** True when an undo can be tried (a confirmed change, or one on its way). */
  get canUndo() { return this.undoStack.length > 0 || this.pendingChanges() > 0; }
  get canRedo() { return this.redoStack.length > 0; }

  /** An undoable change: queued like handle.apply() (shows at once, one flush per frame). */
  apply(...commands) {
    const cmds = commands.flat();
    if (!cmds.length) return;
    this.handle.submit(cmds, { tag: 'change' });
    this.changed();
  }

  /** Undoes the last change. Resolves {ok: true} once confirmed, or {ok: false, code, reason}. */
  undo() { return this.run('undo'); }
  /** Redoes the last undone change, likewise. */
  redo() { return this.run('redo'); }

  // Our tagged flushes (changes, undos, redos) not yet confirmed or answered.
  pendingChanges() {
    let n = this.handle.queuedTag ? 1 : 0;
    for (const f of this.handle.pending) if (f.tag !== undefined && !f.inConfirmed && !(f.outcome && f.outcome.version_after === f.outcome.version_before)) n++;
    return n;
  }

  async run(kind) {
    // the entry of the last change exists once its delta is in: wait for our flushes
    while (this.pendingChanges() > 0) await new Promise((r) => this.waiters.push(r));
    const stack = kind === 'undo' ? this.undoStack : this.redoStack;
    const entry = stack.pop();
    if (!entry) return { ok: false, code: 'empty', reason: `nothing to ${kind}` };
    const bad = check(this.handle.state ?? {}, entry.inverse, this.handle.id);
    if (bad) {
      this.changed();
      const ev = { kind, ...bad };
      this.emit('refused', ev);
      return { ok: false, code: bad.code, reason: bad.reason, path: bad.path };
    }
    const seq = this.handle.submit(entry.inverse.commands, { atomic: true, tag: kind });
    this.changed();
    return new Promise((resolve) => this.inflight.set(seq, { kind, entry, resolve }));
  }

  // Before the confirmed copy takes our delta: the exact inverse of what it applied.
  onOwnDelta(f, delta, confirmed) {
    const inverse = invert(confirmed.state, delta.commands, this.handle.id);
    if (!inverse.commands.length) return;
    const entry = { inverse };
    if (f.tag === 'undo') this.redoStack.push(entry);
    else {
      if (f.tag === 'change') this.redoStack = [];
      this.undoStack.push(entry);
      if (this.undoStack.length > this.limit) this.undoStack.shift();
    }
    if (this.redoStack.length > this.limit) this.redoStack.shift();
  }

  onOutcome({ doc, outcome, tag }) {
    if (doc !== this.handle.id || tag === undefined) return;
    const seq = Number(outcome.seq);
    if (outcome.codeName === 'gap') return; // resent
    if (outcome.codeName === 'ok') return this.onSettled(seq, { ok: true });
    // aborted: find the failing command (the processor's test)
    const f = this.inflight.get(seq);
    const results = outcome.results || [];
    const i = results.findIndex((r) => r.code !== 0 && r.code !== 9);
    const code = i >= 0 ? codeNameOf(results[i].code) : outcome.codeName;
    const path = i >= 0 && f ? f.entry.inverse.commands[i]?.path : undefined;
    this.onSettled(seq, { ok: false, code, path, reason: path ? refusal(code, path) : `refused: ${code}` });
  }

  onSettled(seq, result) {
    const f = this.inflight.get(seq);
    if (f) {
      this.inflight.delete(seq);
      if (!result.ok) this.emit('refused', { kind: f.kind, ...result });
      f.resolve(result);
    }
    // let the waiters look again once the confirmed copy has the delta
    queueMicrotask(() => this.wake());
    this.changed();
  }

  wake() {
    if (this.pendingChanges() > 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  // Tells the listeners when canUndo, canRedo or the pending count moved.
  changed() {
    const ev = { canUndo: this.canUndo, canRedo: this.canRedo, pending: this.pendingChanges() };
    const key = `${ev.canUndo}/${ev.canRedo}/${ev.pending}`;
    if (key === this.last) return;
    this.last = key;
    this.emit('change', ev);
  }
}

const codeNameOf = (c) => (typeof c === 'string' ? c : codeName(c));
