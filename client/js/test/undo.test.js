// SPDX-License-Identifier: Apache-2.0
// Undo and redo: schemas/vectors/undo/undo.json (the inverse flushes undo.js computes, its
// client-side refusals, and every sent flush's outcome on the JS engine; the C engine runs
// the same flushes in tests/unit/test_undo_vectors.c), then the UndoManager over a client
// and an in-process fake gateway (fake-gateway.js): confirm, undo, redo, refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { parseJSON, stringifyJSON, fromHex, clone, equal } from '../src/codec.js';
import { Doc } from '../src/engine.js';
import { invert, check, UndoManager } from '../src/undo.js';
import { FakeGateway, connectTo, until } from './fake-gateway.js';

const file = join(dirname(fileURLToPath(import.meta.url)), '../../../schemas/vectors/undo/undo.json');
const vectors = parseJSON(readFileSync(file, 'utf8'));
const show = (v) => stringifyJSON(v);

test('undo vectors: computed inverses, local refusals and outcomes', async (t) => {
  assert.ok(vectors.cases.length >= 10);
  for (const c of vectors.cases) {
    await t.test(c.name, () => {
      const doc = new Doc(c.doc, { state: clone(c.state), version: c.version });
      const before = [];
      const applied = [];
      c.steps.forEach((s, i) => {
        before[i] = clone(doc.state);
        const of = s.undo ?? s.redo;
        if (of !== undefined) {
          assert.ok(of < i, `step ${i} undoes an earlier step`);
          const inv = invert(before[of], applied[of], c.doc);
          assert.ok(equal(inv.commands, s.commands), `step ${i}: computed ${show(inv.commands)}, vector ${show(s.commands)}`);
          const bad = check(doc.state, inv, c.doc);
          assert.equal(bad ? bad.code : undefined, s.local, `step ${i}: client-side check`);
          if (bad) assert.match(bad.reason, /someone else/);
        }
        if (s.send === false) { applied[i] = []; return; }
        const out = doc.apply({ client_id: fromHex(vectors.clients[s.client]), seq: s.seq, base_version: 0, atomic: !!s.atomic, commands: s.commands });
        applied[i] = out.applied;
        assert.equal(out.code, s.expect.code, `step ${i} code`);
        assert.equal(out.duplicate, !!s.expect.duplicate, `step ${i} duplicate`);
        assert.equal(doc.version, s.expect.version, `step ${i} version`);
        assert.ok(equal(doc.state, s.expect.state), `step ${i} state ${show(doc.state)}`);
        if (s.expect.results) assert.deepEqual(out.results, s.expect.results, `step ${i} results`);
      });
    });
  }
});

test('invert: every op round-trips when nobody else writes', () => {
  const state = { m: { a: 1, b: [1, 2] }, l: [0, 1, 2], n: 5 };
  const cmds = [
    { op: 'add', path: '/m/c', value: 'x' }, { op: 'add', path: '/l/0', value: 9 }, { op: 'replace', path: '/n', value: 6 },
    { op: 'copy', from: '/m/b', path: '/m/d' }, { op: 'incr', path: '/n', value: 2 }, { op: 'merge', path: '/new', value: { z: 1 } },
    { op: 'move', from: '/l/0', path: '/l/2' }, { op: 'remove', path: '/m/a' }, { op: 'create', path: '/m', value: 1, key: 'kk' },
    { op: 'test', path: '/n', value: 8 },
  ];
  const doc = new Doc('t/x', { state: clone(state) });
  const out = doc.apply({ client_id: new Uint8Array(16).fill(1), seq: 1, base_version: 0, commands: cmds });
  assert.equal(out.code, 'ok');
  assert.ok(out.results.every((r) => r.code === 'ok'), show(out.results));
  const inv = invert(state, out.applied, 't/x');
  assert.equal(check(doc.state, inv, 't/x'), null);
  const back = doc.apply({ client_id: new Uint8Array(16).fill(1), seq: 2, base_version: 0, atomic: true, commands: inv.commands });
  assert.equal(back.code, 'ok');
  assert.ok(equal(doc.state, state), show(doc.state));
});

// ------------------------------------------------------------------ UndoManager over a client

test('UndoManager: undo and redo go out as atomic guarded flushes and converge', async (t) => {
  const gw = new FakeGateway();
  const a = await connectTo(gw, 'alice');
  const b = await connectTo(gw, 'bob');
  t.after(() => { a.close(); b.close(); });
  const ha = a.subscribe('t/u');
  const hb = b.subscribe('t/u');
  await until(() => ha.state && hb.state);
  const um = new UndoManager(ha);
  um.merge('/card', { title: 'one', votes: 0 });
  await until(() => ha.pendingCount === 0 && hb.state.card);
  um.replace('/card/title', 'two');
  um.incr('/card/votes', 1);       // same frame: one change
  assert.ok(um.canUndo);
  let r = await um.undo();           // waits for the change to be confirmed
  assert.deepEqual(r, { ok: true });
  await until(() => hb.version === ha.version && ha.pendingCount === 0);
  assert.ok(equal(hb.state, { card: { title: 'one', votes: 0 } }), show(hb.state));
  assert.ok(gw.flushes.at(-1).atomic, 'the undo is an atomic flush');
  assert.equal(gw.flushes.at(-1).commands[0].op, 'test');
  assert.ok(um.canRedo);
  r = await um.redo();
  assert.deepEqual(r, { ok: true });
  await until(() => hb.version === ha.version && ha.pendingCount === 0);
  assert.ok(equal(hb.state, { card: { title: 'two', votes: 1 } }), show(hb.state));
  // bob changes the title: alice's undo is refused, bob's work stays
  hb.replace('/card/title', 'bob');
  await until(() => ha.state.card.title === 'bob' && hb.pendingCount === 0);
  const refused = [];
  um.on('refused', (ev) => refused.push(ev));
  r = await um.undo();
  assert.equal(r.ok, false);
  assert.equal(r.code, 'test_failed');
  assert.match(r.reason, /someone else.*\/card\/title/);
  assert.equal(refused.length, 1);
  assert.equal(ha.state.card.title, 'bob');
  a.close(); b.close();
});

test('UndoManager: the processor refuses an undo the client could not see coming', async (t) => {
  const gw = new FakeGateway();
  const a = await connectTo(gw, 'alice');
  const b = await connectTo(gw, 'bob');
  t.after(() => { a.close(); b.close(); });
  const ha = a.subscribe('t/race');
  const hb = b.subscribe('t/race');
  await until(() => ha.state && hb.state);
  const um = new UndoManager(ha);
  um.add('/t', 'mine');
  await until(() => ha.pendingCount === 0 && hb.state.t === 'mine');
  // bob's change reaches the processor before alice's undo, alice has not seen it yet
  gw.hold = true;                 // deltas to clients wait
  hb.replace('/t', 'theirs');
  await until(() => gw.doc('t/race').state.t === 'theirs');
  const p = um.undo();
  await until(() => gw.flushes.some((f) => f.atomic));
  gw.hold = false;
  gw.release();
  const r = await p;
  assert.equal(r.ok, false);
  assert.equal(r.code, 'test_failed', JSON.stringify(r));
  assert.equal(r.path, '/t');
  await until(() => ha.pendingCount === 0 && ha.version === hb.version);
  assert.equal(ha.state.t, 'theirs', 'rolled back, bob kept');
  a.close(); b.close();
});

test('UndoManager: undo after a reconnect', async (t) => {
  const gw = new FakeGateway();
  const a = await connectTo(gw, 'alice');
  t.after(() => a.close());
  const ha = a.subscribe('t/rc');
  await until(() => ha.state);
  const um = new UndoManager(ha);
  um.add('/x', 1);
  await until(() => ha.pendingCount === 0 && ha.state.x === 1);
  a.reconnect();
  await until(() => a.stats.welcomes >= 2 && a.state === 'ready');
  const r = await um.undo();
  assert.deepEqual(r, { ok: true });
  await until(() => ha.pendingCount === 0);
  assert.ok(equal(gw.doc('t/rc').state, {}));
  a.close();
});
