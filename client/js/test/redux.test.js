// SPDX-License-Identifier: Apache-2.0
// The Redux binding (src/redux.js) in a real redux store over real clients and the fake
// gateway: the allow-list (a listed action becomes a flush, shows at once, and still reaches
// the reducers; any other action stays local), remote changes as actions of their own, the
// slice rebased after a remote change under a pending local one, rolled back after a
// rejection (with a flushline/rejected action), and undo / redo as actions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStore, combineReducers, applyMiddleware } from 'redux';
import { bindDocument, REMOTE, REJECTED, SYNC, UNDONE, REFUSED } from '../src/redux.js';
import { pointer } from '../src/flushline.js';
import { equal } from '../src/codec.js';
import { FakeGateway, connectTo, until } from './fake-gateway.js';

function setup(client, doc) {
  const fl = bindDocument(client, doc, {
    commands: {
      'card/added': (a) => [{ op: 'merge', path: '/cards', value: { [a.key]: { title: a.title, votes: 0 } } }],
      'card/voted': (a) => [{ op: 'incr', path: pointer('cards', a.key, 'votes'), value: 1 }],
      'card/renamed': (a) => [{ op: 'replace', path: pointer('cards', a.key, 'title'), value: a.title }],
    },
  });
  const seen = [];
  const ui = (s = { opened: 0, votesSeen: 0 }, a) => {
    if (a.type === 'ui/opened') return { ...s, opened: s.opened + 1 };
    if (a.type === 'card/voted') return { ...s, votesSeen: s.votesSeen + 1 };
    return s;
  };
  const spy = () => (next) => (a) => { seen.push(a); return next(a); };
  const store = createStore(combineReducers({ board: fl.reducer, ui }), applyMiddleware(fl.middleware, spy));
  return { fl, store, seen, board: () => store.getState().board };
}

test('allow-list: listed actions become flushes, others stay local; both reach the reducers', async (t) => {
  const gw = new FakeGateway();
  const c = await connectTo(gw, 'alice');
  t.after(() => c.close());
  const { store, seen, board } = setup(c, 't/rx');
  await until(() => board().state !== null && board().status === 'ready');
  store.dispatch({ type: 'card/added', key: 'k1', title: 'one' });
  assert.ok(equal(board().state, { cards: { k1: { title: 'one', votes: 0 } } }), 'optimistic at once');
  store.dispatch({ type: 'card/voted', key: 'k1' });
  store.dispatch({ type: 'ui/opened' });
  assert.equal(board().state.cards.k1.votes, 1);
  assert.equal(store.getState().ui.opened, 1);
  assert.equal(store.getState().ui.votesSeen, 1, 'the listed action reached the reducers too');
  await until(() => board().pending === 0 && board().version === 2);
  assert.equal(gw.flushes.length, 1, 'one frame, one flush');
  assert.deepEqual(gw.flushes[0].commands.map((x) => x.op), ['merge', 'incr']);
  assert.ok(!gw.flushes.some((f) => f.commands.some((x) => JSON.stringify(x).includes('opened'))));
  assert.ok(seen.some((a) => a.type === SYNC && a.source === 'local'));
});

test('remote changes arrive as actions; the slice is rebased under a pending change', async (t) => {
  const gw = new FakeGateway();
  const a = await connectTo(gw, 'alice');
  const b = await connectTo(gw, 'bob');
  t.after(() => { a.close(); b.close(); });
  const { store, seen, board } = setup(a, 't/rebase');
  await until(() => board().state !== null);
  store.dispatch({ type: 'card/added', key: 'k', title: 'x' });
  await until(() => board().pending === 0 && board().version === 1);
  const hb = b.subscribe('t/rebase');
  await until(() => hb.version === 1);
  // alice votes while her flush is held; bob's vote lands first
  gw.hold = true;
  store.dispatch({ type: 'card/voted', key: 'k' });
  assert.equal(board().state.cards.k.votes, 1);
  await until(() => gw.flushes.length === 2);
  hb.incr('/cards/k/votes', 10);
  hb.replace('/cards/k/title', 'bob');
  await until(() => gw.flushes.length === 3);
  // the processor applied alice's vote first (seq order on arrival), then bob's change
  gw.hold = false;
  gw.release();
  await until(() => board().pending === 0 && board().version === 4);
  assert.ok(equal(board().state.cards.k, { title: 'bob', votes: 11 }), JSON.stringify(board().state));
  const remote = seen.filter((x) => x.type === REMOTE);
  assert.equal(remote.length, 1);
  assert.equal(remote[0].user, 'bob');
  assert.deepEqual(remote[0].commands.map((x) => x.op), ['incr', 'replace']);
  // now a remote change under a pending local one: the view is remote + local on top
  gw.paused = true;
  store.dispatch({ type: 'card/voted', key: 'k' });
  await until(() => gw.inbox.length === 1);
  gw.write('t/rebase', [{ op: 'add', path: '/cards/k/tag', value: 'red' }], 'carol');
  await until(() => board().state.cards.k.tag === 'red');
  assert.equal(board().version, 5);
  assert.equal(board().state.cards.k.votes, 12, 'her pending vote stays on top of the rebased view');
  assert.equal(board().pending, 1);
  gw.resume();
  await until(() => board().pending === 0 && board().version === 6);
  assert.equal(board().state.cards.k.votes, 12);
  assert.ok(equal(board().state, gw.doc('t/rebase').state));
});

test('a rejected command is rolled back and reported as an action', async (t) => {
  const gw = new FakeGateway();
  const a = await connectTo(gw, 'alice');
  t.after(() => a.close());
  const { store, seen, board } = setup(a, 't/reject');
  await until(() => board().state !== null);
  store.dispatch({ type: 'card/added', key: 'k', title: 'x' });
  await until(() => board().pending === 0 && board().version === 1);
  // the card is removed by someone else; alice's rename has not seen it
  gw.hold = true;
  gw.write('t/reject', [{ op: 'remove', path: '/cards/k' }], 'bob');
  store.dispatch({ type: 'card/renamed', key: 'k', title: 'renamed' });
  assert.equal(board().state.cards.k.title, 'renamed', 'optimistic');
  await until(() => gw.flushes.length === 2);
  gw.hold = false;
  gw.release();
  await until(() => board().pending === 0 && board().version === 2);
  assert.ok(equal(board().state, { cards: {} }), 'rolled back: the rename is gone with the card');
  const rej = seen.filter((x) => x.type === REJECTED);
  assert.equal(rej.length, 1);
  assert.equal(rej[0].commands[0].op, 'replace');
  assert.equal(rej[0].results[0].code, 1, 'path_not_found');
});

test('undo and redo as actions', async (t) => {
  const gw = new FakeGateway();
  const a = await connectTo(gw, 'alice');
  t.after(() => a.close());
  const { store, seen, board } = setup(a, 't/rundo');
  await until(() => board().state !== null);
  store.dispatch({ type: 'card/added', key: 'k', title: 'x' });
  store.dispatch({ type: 'flushline/undo', doc: 't/rundo' });
  await until(() => seen.some((x) => x.type === UNDONE));
  await until(() => board().pending === 0 && equal(board().state, {}));
  store.dispatch({ type: 'flushline/redo', doc: 't/rundo' });
  await until(() => seen.filter((x) => x.type === UNDONE).length === 2);
  await until(() => board().pending === 0 && board().state.cards?.k?.title === 'x');
  gw.write('t/rundo', [{ op: 'replace', path: '/cards/k/title', value: 'bob' }], 'bob');
  await until(() => board().state.cards.k.title === 'bob');
  store.dispatch({ type: 'flushline/undo', doc: 't/rundo' });
  await until(() => seen.some((x) => x.type === REFUSED));
  const r = seen.find((x) => x.type === REFUSED);
  assert.equal(r.code, 'test_failed');
  assert.match(r.reason, /someone else/);
});
