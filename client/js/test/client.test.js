// SPDX-License-Identifier: Apache-2.0
// The client against an in-process fake gateway (the JS engine behind a fake WebSocket):
// seq per (client, document) from 1, one flush per turn, optimistic state, resend with the
// same seq after a reconnect (applied once), resubscribe with have_version, close codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../src/flushline.js';
import { Doc } from '../src/engine.js';
import { decodeMessage, encodeMessage } from '../src/messages.js';
import { CODES } from '../src/engine.js';

class FakeGateway {
  constructor() { this.docs = new Map(); this.sockets = new Set(); this.log = []; this.dropFlushes = false; this.history = new Map(); }
  doc(id) {
    if (!this.docs.has(id)) { this.docs.set(id, new Doc(id)); this.history.set(id, []); }
    return this.docs.get(id);
  }
  receive(ws, bytes) {
    const m = decodeMessage(bytes, 'c2s');
    this.log.push(m);
    const send = (x) => ws.deliver(encodeMessage({ v: 1, ...x }));
    if (m.t === 'hello') send({ t: 'welcome', user: 'u1', server: 'fake', limits: { max_frame: 1 << 20, max_commands: 1000, max_subscriptions: 100, rate: 100, burst: 200 } });
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
      const d = this.doc(m.doc);
      const out = d.apply(m);
      if (out.applied.length) {
        const item = { version: out.version_after, client_id: m.client_id, seq: m.seq, user: 'u1', ts: 1, commands: out.applied, chain: out.chain };
        this.history.get(m.doc).push(item);
        for (const s of this.sockets) if (s.subs.has(m.doc)) s.deliver(encodeMessage({ v: 1, t: 'deltas', doc: m.doc, from_version: out.version_before, items: [item] }));
      }
      send({ t: 'outcome', doc: m.doc, client_id: m.client_id, seq: m.seq, code: CODES[out.code], dup: out.duplicate || undefined,
        version_before: out.version_before, version_after: out.version_after, chain: out.chain,
        results: out.results.map((r) => ({ code: CODES[r.code], version: r.version || undefined, key: r.key })) });
    }
  }
  // A WebSocket class bound to this gateway.
  get WebSocket() {
    const gw = this;
    return class FakeWS {
      constructor(url) {
        this.url = url; this.readyState = 0; this.subs = new Set();
        gw.sockets.add(this);
        setTimeout(() => { this.readyState = 1; this.onopen?.(); }, 0);
      }
      send(bytes) { if (this.readyState === 1) setTimeout(() => this.readyState === 1 && gw.receive(this, bytes), 0); }
      deliver(bytes) { if (this.readyState === 1) setTimeout(() => this.readyState === 1 && this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) }), 0); }
      close(code = 1000) { this.serverClose(code); }
      serverClose(code) {
        if (this.readyState === 3) return;
        this.readyState = 3; gw.sockets.delete(this);
        setTimeout(() => this.onclose?.({ code }), 0);
      }
    };
  }
}

const until = async (fn, ms = 3000) => {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

test('optimistic state, one flush per turn, seq from 1 per document', async () => {
  const gw = new FakeGateway();
  const c = new Client({ url: 'ws://x/v1/ws', token: 't', WebSocket: gw.WebSocket }).connect();
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

test('a flush without outcome is resent with its seq after a reconnect and applied once', async () => {
  const gw = new FakeGateway();
  const c = new Client({ url: 'ws://x/v1/ws', token: 't', WebSocket: gw.WebSocket }).connect();
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

test('close codes: 4000-4099 stop, 4100-4199 back off, 4200-4299 reconnect now', async () => {
  const gw = new FakeGateway();
  const c = new Client({ url: 'ws://x/v1/ws', token: 't', WebSocket: gw.WebSocket, backoffInitialMs: 200 }).connect();
  const states = [];
  c.on('status', (s) => states.push(s));
  await until(() => c.state === 'ready');
  let t0 = Date.now();
  for (const s of [...gw.sockets]) s.serverClose(4201);
  await until(() => c.stats.welcomes === 2);
  assert.ok(Date.now() - t0 < 150, 'reconnected at once');
  t0 = Date.now();
  for (const s of [...gw.sockets]) s.serverClose(4101);
  await until(() => c.state === 'backoff');
  await until(() => c.stats.welcomes === 3);
  assert.ok(Date.now() - t0 >= 100, 'backed off (half to all of 200 ms)');
  for (const s of [...gw.sockets]) s.serverClose(4001);
  await until(() => c.state === 'stopped');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(c.stats.connects, 3, 'no reconnect after 4001');
  assert.equal(states.at(-1).closeCode, 4001);
  c.close();
});
