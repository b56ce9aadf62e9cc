// SPDX-License-Identifier: Apache-2.0
// The React bindings (src/react.js) with react-test-renderer (no DOM) over real clients and
// the in-process fake gateway: useDocument renders the optimistic state and its edits, a
// storm of remote deltas coalesces into a few renders, the selector form and other documents
// do not re-render a component, useStatus, usePresence, useHistory (unsupported by a gateway
// without history; pages and past states from one that has it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createElement as h, version as reactVersion } from 'react';
import TestRenderer from 'react-test-renderer';
import { FlushlineProvider, useDocument, useStatus, usePresence, useHistory } from '../src/react.js';
import { HistoryClient } from '../src/history.js';
import { FakeGateway, connectTo, until } from './fake-gateway.js';

globalThis.IS_REACT_ACT_ENVIRONMENT = false;
// react-test-renderer 19 warns that it is deprecated; the warning is not a failure
const warn = console.error;
console.error = (...a) => { if (!String(a[0]).includes('react-test-renderer is deprecated')) warn(...a); };

// scripts/js-test runs this file against React 19 (client/js's own) and 18 (test/react18):
// the one the bindings were given is the one asked for
test('the React under test', () => {
  const want = process.env.FL_REACT_MAJOR || '19';
  assert.equal(reactVersion.split('.')[0], want, `React ${reactVersion}`);
});

function mount(client, el, props = {}) {
  let r;
  r = TestRenderer.create(h(FlushlineProvider, { client, ...props }, el));
  return r;
}

test('useDocument: state, version, edits and undo; re-renders on remote changes', async (t) => {
  const gw = new FakeGateway();
  const c = await connectTo(gw, 'alice');
  t.after(() => c.close());
  const seen = [];
  let api;
  function Board() {
    const d = useDocument('t/board');
    api = d;
    seen.push(d);
    return h('span', null, `${d.status} v${d.version} ${JSON.stringify(d.state)}`);
  }
  const r = mount(c, h(Board));
  t.after(() => r.unmount());
  await until(() => api && api.state !== null && api.status === 'ready');
  api.edit.merge('/card', { votes: 0 });
  await until(() => api.state.card && api.version === 1 && api.pending === 0);
  api.edit.incr('/card/votes', 2);
  await until(() => api.state.card.votes === 2 && api.version === 2 && api.pending === 0);
  gw.write('t/board', [{ op: 'add', path: '/title', value: 'hello' }], 'bob');
  await until(() => api.state.title === 'hello');
  assert.equal(api.version, 3, JSON.stringify(gw.history.get('t/board').map((x) => [x.version, x.commands])));
  assert.match(r.toJSON().children.join(''), /ready v3 .*"title":"hello"/);
  assert.ok(api.canUndo);
  const u = await api.undo();
  assert.deepEqual(u, { ok: true });
  await until(() => api.state.card.votes === 0 && api.pending === 0 && api.canRedo);
});

test('useDocument: 2,000 remote deltas coalesce into a few renders', async (t) => {
  const gw = new FakeGateway();
  const c = await connectTo(gw, 'alice');
  t.after(() => c.close());
  let renders = 0;
  let last;
  function Counter() {
    const d = useDocument('t/storm');
    renders++;
    last = d;
    return h('b', null, String(d.state?.n ?? 0));
  }
  const r = mount(c, h(Counter));
  t.after(() => r.unmount());
  await until(() => last && last.state !== null);
  const before = renders;
  const deltas = [];
  c.on('delta', (ev) => { if (ev.doc === 't/storm') deltas.push(ev); });
  for (let i = 0; i < 2000; i++) gw.write('t/storm', [{ op: 'incr', path: '/n', value: 1 }], 'bob');
  await until(() => last.state.n === 2000, 20000);
  assert.equal(deltas.length, 2000, 'every delta arrived on its own');
  const made = renders - before;
  assert.ok(made >= 1 && made < 30, `${made} renders for 2,000 deltas`);
  assert.equal(r.toJSON().children[0], '2000');
});

test('useDocument: the selector form and other documents do not re-render', async (t) => {
  const gw = new FakeGateway();
  const c = await connectTo(gw, 'alice');
  t.after(() => c.close());
  const count = { a: 0, b: 0, other: 0 };
  let aView, bView, oView;
  function A() { aView = useDocument('t/sel', (s) => s.a ?? null); count.a++; return null; }
  function B() { bView = useDocument('t/sel', (s) => s.b ?? null); count.b++; return null; }
  function Other() { oView = useDocument('t/other'); count.other++; return null; }
  const r = mount(c, h('div', null, h(A), h(B), h(Other)));
  t.after(() => r.unmount());
  await until(() => aView && bView && oView && aView.status === 'ready' && bView.state === null && oView.state !== null && aView.pending === 0);
  gw.write('t/sel', [{ op: 'add', path: '/a', value: { x: 1 } }]);
  await until(() => aView.state && aView.state.x === 1);
  const snap = { ...count };
  for (let i = 0; i < 20; i++) {
    gw.write('t/sel', [{ op: 'add', path: '/b', value: i }]);
    await until(() => bView.state === i);
  }
  assert.equal(count.a, snap.a, 'A selects /a: no render for 20 changes of /b');
  assert.equal(count.other, snap.other, 'a component of another document: no render');
  assert.ok(count.b > snap.b);
});

test('useStatus and usePresence', async (t) => {
  const gw = new FakeGateway();
  const a = await connectTo(gw, 'alice');
  const b = await connectTo(gw, 'bob');
  t.after(() => { a.close(); b.close(); });
  let status, pres, docStatus;
  function S() { status = useStatus(); pres = usePresence('t/p'); docStatus = useDocument('t/p').status; return null; }
  const r = mount(a, h(S));
  t.after(() => r.unmount());
  await until(() => status === 'ready');
  const hb = b.subscribe('t/p');
  await until(() => hb.state !== null);
  hb.setPresence({ name: 'bob' });
  await until(() => pres.peers.some((p) => p.user === 'bob' && p.body.name === 'bob'));
  hb.signal({ session: b.session, typing: true, where: 'title' });
  await until(() => pres.peers.some((p) => p.user === 'bob' && p.typing));
  a.reconnect();
  await until(() => status !== 'ready');
  await until(() => status === 'ready');
  // useDocument's status follows the connection too (coalesced: the lasting state shows)
  a.close();
  await until(() => status === 'stopped' && docStatus === 'stopped');
});

test('useHistory: unsupported by a gateway without history; pages and past states from one with it', async (t) => {
  const gw = new FakeGateway();
  const c = await connectTo(gw, 'alice');
  t.after(() => c.close());
  const calls = [];
  let served = false;
  const fetch = async (url, init) => {
    calls.push({ url, auth: init.headers.Authorization });
    const u = new URL(url);
    const json = (status, body) => ({ status, text: async () => JSON.stringify(body) });
    if (!served) return u.pathname.endsWith('/history') ? json(404, {}) : json(200, { doc: 't/h', version: 9, state: { now: 1 } });
    if (u.pathname.endsWith('/history')) {
      return json(200, { doc: 't/h', items: [{ version: 1, user: 'bob', ts: 5, commands: [{ op: 'add', path: '/a', value: 1 }] }], next: 2 });
    }
    return json(200, { doc: 't/h', version: Number(u.searchParams.get('version')), state: { a: 1 } });
  };
  const history = new HistoryClient({ baseUrl: 'http://gw:8080', token: 'tok', fetch });
  let hist;
  function H() { hist = useHistory('t/h'); return null; }
  const r = mount(c, h(H), { history });
  t.after(() => r.unmount());
  await until(() => hist);
  assert.equal(hist.status, 'idle');
  await hist.load(1, 10);
  await until(() => hist.status === 'unsupported');
  assert.match(hist.error, /404/);
  assert.equal(calls[0].url, 'http://gw:8080/v1/docs/t/h/history?from_version=1&limit=10');
  assert.equal(calls[0].auth, 'Bearer tok');
  // a gateway that ignores ?version= answers the current state: not taken for the past one
  const wrong = await hist.at(3);
  assert.equal(wrong.status, 'unsupported');
  served = true;
  await hist.load(1, 10);
  await until(() => hist.status === 'ready');
  assert.equal(hist.items[0].user, 'bob');
  assert.equal(hist.next, 2);
  const at = await hist.at(1);
  assert.deepEqual(at, { status: 'ok', version: 1, state: { a: 1 } });
});
