// SPDX-License-Identifier: Apache-2.0
// The client against an in-process fake gateway (the JS engine behind a fake WebSocket):
// seq per (client, document) from 1, one flush per turn, optimistic state, resend with the
// same seq after a reconnect (applied once), resubscribe with have_version, close codes;
// failover between two fake gateways over one store, pacing against a strict token bucket,
// no retry storm after rate_limited, and rules predicted on the view (refused before sending).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../src/flushline.js';
import { Doc } from '../src/engine.js';
import { decodeMessage, encodeMessage } from '../src/messages.js';
import { CODES } from '../src/engine.js';
import { compileRules } from '../src/rules.js';

// opts: store (another gateway whose documents and history this one shares: one processor
// behind two gateways), rate/burst (the welcome's; strict: a strict per-connection token
// bucket that nacks rate_limited with retry_after_ms), maxCommands (the welcome's), jitter
// (ms: every other flush frame is delayed by that much on the way, in order).
//
// The bucket counts a frame at the moment it reaches the gateway on a modelled network: the
// moment the client sent it, plus the jitter, never before the previous frame (a stream keeps
// order). Not the moment this process gets round to handling it: on a busy machine the event
// loop stalls for tens of ms at random, which would be a network with that much jitter.
class FakeGateway {
  constructor(opts = {}) {
    const store = opts.store;
    this.docs = store ? store.docs : new Map();
    this.history = store ? store.history : new Map();
    this.sockets = new Set(); this.log = []; this.dropFlushes = false;
    this.rate = opts.rate ?? 100; this.burst = opts.burst ?? 200; this.strict = !!opts.strict;
    this.jitter = opts.jitter ?? 0;
    this.maxCommands = opts.maxCommands ?? 1000;
    this.nacks = []; // {seq, first} per rate_limited nack; first: the seq's first arrival here
    this.arrivals = new Map(); // doc/seq -> times received
  }
  // A strict token bucket per connection: full at the start, refilled at rate per second;
  // t: the frame's arrival on the modelled network.
  take(ws, t) {
    if (!ws.bucket) ws.bucket = { tokens: this.burst, last: t };
    const b = ws.bucket;
    b.tokens = Math.min(this.burst, b.tokens + (t - b.last) * this.rate / 1000);
    b.last = t;
    if (b.tokens >= 1) { b.tokens -= 1; return 0; }
    return Math.ceil((1 - b.tokens) * 1000 / this.rate);
  }
  doc(id) {
    if (!this.docs.has(id)) { this.docs.set(id, new Doc(id)); this.history.set(id, []); }
    return this.docs.get(id);
  }
  // sentAt: when the client sent the frame (performance.now()).
  receive(ws, bytes, sentAt) {
    const m = decodeMessage(bytes, 'c2s');
    this.log.push(m);
    const send = (x) => ws.deliver(encodeMessage({ v: 1, ...x }));
    if (m.t === 'hello' || m.t === 'auth') {
      send({ t: 'welcome', user: 'u1', server: 'fake', limits: { max_frame: 1 << 20, max_commands: this.maxCommands, max_subscriptions: 100, rate: this.rate, burst: this.burst },
        exp: this.exp, leeway: this.leeway });
    }
    if (m.t === 'subscribe') {
      ws.subs.add(m.doc);
      const d = this.doc(m.doc);
      if (m.have_version === undefined) send({ t: 'snapshot', doc: m.doc, version: d.version, chain: d.chain, state: d.state });
      else if (m.have_version < d.version) {
        const items = this.history.get(m.doc).filter((it) => it.version > m.have_version);
        send({ t: 'deltas', doc: m.doc, from_version: m.have_version, items });
      }
    }
    if (m.t === 'flush' && !this.dropFlushes) {
      const k = `${m.doc}/${m.seq}`;
      const n = (this.arrivals.get(k) || 0) + 1;
      this.arrivals.set(k, n);
      ws.flushes = (ws.flushes || 0) + 1;
      const delay = ws.flushes % 2 === 0 ? this.jitter : 0;
      ws.arrival = Math.max(ws.arrival ?? -Infinity, sentAt + delay);
      const wait = this.strict ? this.take(ws, ws.arrival) : 0;
      if (wait) {
        this.nacks.push({ seq: m.seq, first: n === 1 });
        send({ t: 'nack', doc: m.doc, client_id: m.client_id, seq: m.seq, code: CODES.rate_limited, retry_after_ms: wait, reason: 'rate' });
        return;
      }
      const d = this.doc(m.doc);
      const out = d.apply(m);
      if (out.applied.length) {
        const item = { version: out.version_after, client_id: m.client_id, seq: m.seq, user: 'u1', ts: 1, commands: out.applied, chain: out.chain };
        this.history.get(m.doc).push(item);
        for (const s of this.sockets) if (s.subs.has(m.doc)) s.deliver(encodeMessage({ v: 1, t: 'deltas', doc: m.doc, from_version: out.version_before, items: [item] }));
      }
      send({ t: 'outcome', doc: m.doc, client_id: m.client_id, seq: m.seq, code: CODES[out.code], dup: out.duplicate || undefined,
        version_before: out.version_before, version_after: out.version_after, chain: out.chain,
        results: out.results.map((r) => ({ code: CODES[r.code], version: r.version || undefined, key: r.key, rule: r.rule })) });
    }
  }
  // A WebSocket class bound to this gateway.
  get WebSocket() { return fakeNet(() => this); }
}

// A WebSocket class that connects to the gateway pick(url) returns; none: the connection
// fails (close 1006 without open).
function fakeNet(pick) {
  return class FakeWS {
      constructor(url) {
        this.url = url; this.readyState = 0; this.subs = new Set();
        const gw = pick(url);
        this.gw = gw;
        if (!gw) { setTimeout(() => { this.readyState = 3; this.onclose?.({ code: 1006 }); }, 0); return; }
        gw.sockets.add(this);
        setTimeout(() => { this.readyState = 1; this.onopen?.(); }, 0);
      }
      send(bytes) {
        const sentAt = performance.now();
        if (this.readyState === 1) setTimeout(() => this.readyState === 1 && this.gw.receive(this, bytes, sentAt), 0);
      }
      deliver(bytes) { if (this.readyState === 1) setTimeout(() => this.readyState === 1 && this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) }), 0); }
      close(code = 1000) { this.serverClose(code); }
      serverClose(code) {
        if (this.readyState === 3) return;
        this.readyState = 3; this.gw?.sockets.delete(this);
        setTimeout(() => this.onclose?.({ code }), 0);
      }
  };
}

// A deadline for something that must happen, not a pace: a passing run never waits for it,
// and beside CPU hogs this process's timers run late by tens of ms each.
const until = async (fn, ms = 30000) => {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

test('welcome: the token exp and the leeway reach the application; setToken refreshes with auth', async (t) => {
  const gw = new FakeGateway();
  gw.exp = 1700003600; gw.leeway = 30;
  const c = new Client({ url: 'ws://x/v1/ws', token: 't1', WebSocket: gw.WebSocket });
  const welcomes = [];
  c.on('welcome', (w) => welcomes.push(w));
  c.connect();
  t.after(() => c.close());
  await until(() => c.state === 'ready');
  assert.equal(welcomes[0].exp, 1700003600);
  assert.equal(welcomes[0].leeway, 30);
  assert.equal(c.tokenExp, 1700003600);
  gw.exp = 1700007200;
  c.setToken('t2');
  await until(() => welcomes.length === 2);
  assert.equal(gw.log.filter((m) => m.t === 'auth').at(-1).token, 't2');
  assert.equal(welcomes[1].exp, 1700007200);
  assert.equal(c.tokenExp, 1700007200);
  c.close();
});

test('optimistic state, one flush per turn, seq from 1 per document', async (t) => {
  const gw = new FakeGateway();
  const c = new Client({ url: 'ws://x/v1/ws', token: 't', WebSocket: gw.WebSocket }).connect();
  t.after(() => c.close());
  const a = c.subscribe('t/a');
  const b = c.subscribe('t/b');
  await until(() => a.state && b.state);
  a.incr('/n', 1); a.incr('/n', 2); a.add('/s', 'x');
  assert.equal(a.state.n, 3, 'visible at once');
  b.incr('/m', 5);
  await until(() => c.pendingCount === 0);
  const flushes = gw.log.filter((m) => m.t === 'flush');
  assert.deepEqual(flushes.map((f) => [f.doc, f.seq, f.commands.length]), [['t/a', 1, 3], ['t/b', 1, 1]]);
  assert.equal(a.version, 3);
  assert.deepEqual(a.state, { n: 3, s: 'x' });
  a.incr('/n', 1);
  await until(() => c.pendingCount === 0);
  assert.equal(gw.log.filter((m) => m.t === 'flush').at(-1).seq, 2);
  c.close();
});

test('a flush without outcome is resent with its seq after a reconnect and applied once', async (t) => {
  const gw = new FakeGateway();
  const c = new Client({ url: 'ws://x/v1/ws', token: 't', WebSocket: gw.WebSocket }).connect();
  t.after(() => c.close());
  const a = c.subscribe('t/a');
  await until(() => a.state);
  a.incr('/n', 1);
  await until(() => c.pendingCount === 0);
  gw.dropFlushes = true; // the next flush is lost on the way
  a.incr('/n', 10);
  await until(() => gw.log.filter((m) => m.t === 'flush').length === 2);
  assert.equal(a.state.n, 11, 'pending edit shown');
  gw.dropFlushes = false;
  // another writer moves the document meanwhile
  gw.doc('t/a').apply({ client_id: new Uint8Array(16).fill(9), seq: 1, commands: [{ op: 'add', path: '/o', value: true }] });
  gw.history.get('t/a').push({ version: 2, client_id: new Uint8Array(16).fill(9), seq: 1, user: 'u2', ts: 1, commands: [{ op: 'add', path: '/o', value: true }], chain: gw.doc('t/a').chain });
  for (const s of [...gw.sockets]) s.serverClose(4200); // slow_consumer: reconnect now
  await until(() => c.pendingCount === 0 && c.state === 'ready');
  const subs = gw.log.filter((m) => m.t === 'subscribe');
  assert.equal(subs.at(-1).have_version, 1, 'resubscribed with have_version');
  const flushes = gw.log.filter((m) => m.t === 'flush');
  assert.deepEqual(flushes.map((f) => f.seq), [1, 2, 2], 'resent with the same seq');
  assert.deepEqual(gw.doc('t/a').state, { n: 11, o: true });
  assert.deepEqual(a.state, { n: 11, o: true });
  assert.equal(a.version, 3);
  c.close();
});

test('close codes: 4000-4099 stop, 4100-4199 back off, 4200-4299 reconnect now', async (t) => {
  const gw = new FakeGateway();
  // a back-off of 2..4 s: "at once" and "backed off" stay apart however late the timers run
  const c = new Client({ url: 'ws://x/v1/ws', token: 't', WebSocket: gw.WebSocket, backoffInitialMs: 4000 }).connect();
  t.after(() => c.close());
  const states = [];
  c.on('status', (s) => states.push(s));
  await until(() => c.state === 'ready');
  let t0 = Date.now();
  for (const s of [...gw.sockets]) s.serverClose(4201);
  await until(() => c.stats.welcomes === 2);
  assert.ok(Date.now() - t0 < 2000, 'reconnected at once');
  t0 = Date.now();
  for (const s of [...gw.sockets]) s.serverClose(4101);
  await until(() => c.state === 'backoff');
  await until(() => c.stats.welcomes === 3);
  assert.ok(Date.now() - t0 >= 2000, 'backed off (half to all of 4 s)');
  for (const s of [...gw.sockets]) s.serverClose(4001);
  await until(() => c.state === 'stopped');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(c.stats.connects, 3, 'no reconnect after 4001');
  assert.equal(states.at(-1).closeCode, 4001);
  c.close();
});

test('failover: the next address on every reconnect; unanswered flushes resent with their seqs, resubscribe with have_version', async (t) => {
  const ga = new FakeGateway();
  const gb = new FakeGateway({ store: ga }); // the same processor behind both
  const WebSocket = fakeNet((url) => ({ 'ws://a/v1/ws': ga, 'ws://b/v1/ws': gb })[url]);
  const c = new Client({ urls: ['ws://a/v1/ws', 'ws://b/v1/ws'], token: 't', WebSocket, backoffInitialMs: 5000 }).connect();
  t.after(() => c.close());
  const a = c.subscribe('t/a');
  await until(() => a.state);
  assert.equal(c.url, 'ws://a/v1/ws');
  a.incr('/n', 1);
  await until(() => c.pendingCount === 0);
  ga.dropFlushes = true; // the next flushes reach gateway a and go no further
  a.incr('/n', 10);
  await until(() => ga.log.filter((m) => m.t === 'flush').length === 2);
  a.add('/s', 'x');
  await until(() => ga.log.filter((m) => m.t === 'flush').length === 3);
  assert.deepEqual(a.state, { n: 11, s: 'x' }, 'pending edits shown');
  const t0 = Date.now();
  for (const s of [...ga.sockets]) s.serverClose(4201); // going_away: reconnect now, to b
  await until(() => c.pendingCount === 0 && c.state === 'ready');
  assert.ok(Date.now() - t0 < 2500, 'failed over at once (a back-off would be 2.5..5 s)');
  assert.equal(c.url, 'ws://b/v1/ws');
  assert.equal(c.stats.failovers, 1);
  const subs = gb.log.filter((m) => m.t === 'subscribe');
  assert.deepEqual(subs.map((m) => [m.doc, m.have_version]), [['t/a', 1]], 'resubscribed to b with have_version');
  assert.deepEqual(gb.log.filter((m) => m.t === 'flush').map((f) => f.seq), [2, 3], 'resent to b with their original seqs, in order');
  assert.deepEqual(gb.doc('t/a').state, { n: 11, s: 'x' });
  assert.deepEqual(gb.history.get('t/a').map((d) => Number(d.seq)), [1, 2, 3], 'each applied once');
  assert.equal(a.version, 3);
  assert.deepEqual(a.state, { n: 11, s: 'x' });
  // round robin: a dropped connection to b goes back to a, also at once
  ga.dropFlushes = false;
  for (const s of [...gb.sockets]) s.serverClose(1006);
  await until(() => c.stats.welcomes === 3);
  assert.equal(c.url, 'ws://a/v1/ws');
  a.incr('/n', 1);
  await until(() => c.pendingCount === 0);
  assert.equal(ga.log.filter((m) => m.t === 'flush').at(-1).seq, 4);
  assert.equal(a.state.n, 12);
  c.close();
});

test('failover: a refused first address gets the next one at once; back-off only after every address failed', async (t) => {
  const gb = new FakeGateway();
  let up = true;
  const WebSocket = fakeNet((url) => (url === 'ws://b/v1/ws' && up ? gb : undefined));
  const t0 = Date.now();
  // a back-off of 2..4 s: "at once" and "backed off" stay apart however late the timers run
  const c = new Client({ urls: ['ws://dead/v1/ws', 'ws://b/v1/ws'], token: 't', WebSocket, backoffInitialMs: 4000 }).connect();
  t.after(() => c.close());
  await until(() => c.state === 'ready');
  assert.ok(Date.now() - t0 < 2000, 'no back-off before trying the second address');
  assert.equal(c.stats.connects, 2);
  // both down: one immediate try each (b at once after the close, then dead), then back off
  up = false;
  for (const s of [...gb.sockets]) s.serverClose(4200);
  await until(() => c.stats.connects === 4);
  const t1 = Date.now();
  up = true;
  await until(() => c.state === 'ready');
  assert.ok(Date.now() - t1 >= 2000, 'backed off once every address failed');
  assert.equal(c.url, 'ws://b/v1/ws');
  c.close();
});

test('pacing: 3x the burst against a strict token bucket gets no nack', async (t) => {
  // A token is 20 ms: the client's margin (a bucket of burst - 1, 95% of the rate) covers a
  // network that delays every other frame by 15 ms; late timers of a busy machine only
  // delay sends (the client's bucket counts real time), and the gateway counts arrivals on
  // the modelled network, not when this process gets round to them.
  const rate = 50, burst = 10;
  const gw = new FakeGateway({ rate, burst, strict: true, maxCommands: 1, jitter: 15 }); // one command per flush
  const c = new Client({ url: 'ws://x/v1/ws', token: 't', WebSocket: gw.WebSocket }).connect();
  t.after(() => c.close());
  const nacks = [];
  c.on('nack', (n) => nacks.push(n));
  const a = c.subscribe('t/a');
  await until(() => a.state);
  for (let i = 0; i < 3 * burst; i++) a.incr('/n', 1); // 30 flushes in one turn
  // and a few more in later turns
  for (let i = 0; i < 5; i++) { await new Promise((r) => setTimeout(r, 2)); a.incr('/m', 1); }
  await until(() => c.pendingCount === 0);
  assert.equal(nacks.length, 0, 'never refused');
  assert.equal(gw.nacks.length, 0);
  assert.deepEqual(gw.doc('t/a').state, { n: 3 * burst, m: 5 });
  assert.deepEqual(gw.history.get('t/a').map((d) => Number(d.seq)), Array.from({ length: 3 * burst + 5 }, (_, i) => i + 1));
  c.close();
});

test('no retry storm: 100 unpaced flushes against a strict bucket apply once, in order, with about one nack each', async (t) => {
  const rate = 200, burst = 10, N = 100;
  const gw = new FakeGateway({ rate, burst, strict: true, maxCommands: 1 });
  const c = new Client({ url: 'ws://x/v1/ws', token: 't', WebSocket: gw.WebSocket, pacing: false }).connect();
  t.after(() => c.close());
  const a = c.subscribe('t/a');
  await until(() => a.state);
  for (let i = 0; i < N; i++) a.apply({ op: 'add', path: `/k${i}`, value: i });
  await until(() => c.pendingCount === 0, 120000); // ~90 resends one after another
  const history = gw.history.get('t/a');
  assert.deepEqual(history.map((d) => Number(d.seq)), Array.from({ length: N }, (_, i) => i + 1), 'applied once each, in seq order');
  assert.equal(Object.keys(gw.doc('t/a').state).length, N);
  const firstWave = gw.nacks.filter((n) => n.first).length;
  assert.ok(firstWave > 0, 'the burst was refused');
  assert.ok(gw.nacks.length <= 2 * firstWave + 5, `nacks ${gw.nacks.length}, first wave ${firstWave}`);
  assert.equal(c.stats.nacks, gw.nacks.length);
  assert.equal(a.version, N);
  c.close();
});

test('a new connection clears the hold: the backlog goes out at once, paced, without nacks', async (t) => {
  const rate = 50, burst = 5, N = 20;
  const gw = new FakeGateway({ rate, burst, strict: true, maxCommands: 1 });
  const c = new Client({ url: 'ws://x/v1/ws', token: 't', WebSocket: gw.WebSocket, pacing: false }).connect();
  t.after(() => c.close());
  const a = c.subscribe('t/a');
  await until(() => a.state);
  for (let i = 0; i < N; i++) a.incr('/n', 1);
  await until(() => gw.nacks.length > 0); // the burst is being refused: a hold is in place
  const before = gw.nacks.length;
  c.opts.pacing = true; // the next connection paces
  for (const s of [...gw.sockets]) s.serverClose(4200);
  await until(() => c.pendingCount === 0);
  assert.equal(gw.nacks.length, before, 'no nack on the new connection');
  assert.equal(gw.doc('t/a').state.n, N);
  c.close();
});

const VOTES = compileRules({ rules: [
  { name: 'new cards', allow: { ops: ['create'], paths: ['/cards'] } },
  { name: 'setup', allow: { ops: ['merge'], paths: ['/cards'] } },
  { name: 'vote +1', allow: { ops: ['incr'], paths: ['/cards/*/votes'], where: [{ value: '', eq: 1 }] } },
  { name: 'author', stamp: { path: '/cards/*', on: ['create'], set: { by: '$user' } } },
] });

test('rules predicted on the view: a refused command is reported at once and never sent', async (t) => {
  const gw = new FakeGateway();
  const c = new Client({ url: 'ws://x/v1/ws', token: 't', WebSocket: gw.WebSocket }).connect();
  t.after(() => c.close());
  const h = c.subscribe('t/board');
  await until(() => h.state && c.user === 'u1');
  const refused = [];
  c.on('refused', (e) => refused.push(e));
  h.setRules(VOTES);
  h.merge('/cards', {});
  const key = h.create('/cards', { title: 'x', votes: 0 });
  assert.equal(h.state.cards[key].by, 'u1', 'the stamp shows at once');
  h.incr(`/cards/${key}/votes`, 1);
  h.incr(`/cards/${key}/votes`, 2);
  h.replace('/cards', {});
  assert.deepEqual(refused.map((e) => [e.command.op, e.rule, e.code, e.local]),
    [['incr', 'vote +1', 'rule_violation', true], ['replace', 'allow', 'rule_violation', true]]);
  assert.equal(h.state.cards[key].votes, 1);
  await until(() => c.pendingCount === 0);
  const sent = gw.log.filter((m) => m.t === 'flush').flatMap((f) => f.commands.map((x) => (x.op === 'incr' ? `incr ${x.value}` : x.op)));
  assert.deepEqual(sent, ['merge', 'create', 'incr 1'], 'the refused commands never left');
  assert.equal(h.state.cards[key].votes, 1);
  c.close();
});

test('without prediction the server refuses, and the result names the rule', async (t) => {
  const gw = new FakeGateway();
  gw.doc('t/votes').setRules(VOTES);
  const c = new Client({ url: 'ws://x/v1/ws', token: 't', WebSocket: gw.WebSocket }).connect();
  t.after(() => c.close());
  const h = c.subscribe('t/votes');
  await until(() => h.state);
  const outcomes = [];
  c.on('outcome', (e) => outcomes.push(e.outcome));
  h.merge('/cards', { k: { votes: 0 } });
  h.incr('/cards/k/votes', 2);
  await until(() => c.pendingCount === 0);
  const r = outcomes.flatMap((o) => o.results);
  assert.deepEqual(r.map((x) => [x.code, x.rule]), [[CODES.ok, undefined], [CODES.rule_violation, 'vote +1']]);
  assert.equal(h.state.cards.k.votes, 0, 'the optimistic +2 went back');
  c.close();
});
