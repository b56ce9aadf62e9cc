// SPDX-License-Identifier: Apache-2.0
// A small in-process gateway for the undo, React and Redux tests: the JS engine behind a
// fake WebSocket class (hello -> welcome with the token as the user, subscribe -> snapshot
// or deltas, flush -> apply (atomic honoured) -> deltas to every subscriber and the outcome
// to the sender, signal -> every subscriber). `hold = true` queues everything it would send
// until release(), in order: a change that reached the processor but not yet the clients;
// `paused = true` queues what the clients send until resume(): a flush still on its way.
import { Client } from '../src/flushline.js';
import { Doc, CODES } from '../src/engine.js';
import { decodeMessage, encodeMessage } from '../src/messages.js';

export class FakeGateway {
  constructor() {
    this.docs = new Map();
    this.history = new Map();
    this.sockets = new Set();
    this.flushes = [];
    this.hold = false;
    this.held = [];
    this.paused = false;
    this.inbox = [];
  }

  /** Takes what the clients sent while paused, in order. */
  resume() {
    this.paused = false;
    const q = this.inbox;
    this.inbox = [];
    for (const [ws, bytes] of q) this.receive(ws, bytes);
  }

  doc(id) {
    if (!this.docs.has(id)) { this.docs.set(id, new Doc(id)); this.history.set(id, []); }
    return this.docs.get(id);
  }

  /** Sends what was held, in order. */
  release() {
    const h = this.held;
    this.held = [];
    for (const [ws, bytes] of h) ws.deliver(bytes);
  }

  out(ws, msg) {
    const bytes = encodeMessage({ v: 1, ...msg });
    if (this.hold) this.held.push([ws, bytes]); else ws.deliver(bytes);
  }

  /** Applies a flush as another writer would (no connection). */
  write(id, commands, user = 'server') {
    const d = this.doc(id);
    const cid = new Uint8Array(16).fill(0xee);
    this.serverSeq = (this.serverSeq || 0) + 1;
    this.commit(id, d.apply({ client_id: cid, seq: this.serverSeq, base_version: d.version, commands }), cid, this.serverSeq, user);
  }

  commit(id, out, cid, seq, user) {
    if (!out.applied.length) return;
    const item = { version: out.version_after, client_id: cid, seq, user, ts: 1, commands: out.applied, chain: out.chain };
    this.history.get(id).push(item);
    for (const s of this.sockets) if (s.subs.has(id)) this.out(s, { t: 'deltas', doc: id, from_version: out.version_before, items: [item] });
  }

  receive(ws, bytes) {
    const m = decodeMessage(bytes, 'c2s');
    if (m.t === 'hello' || m.t === 'auth') {
      ws.user = m.token;
      this.out(ws, { t: 'welcome', user: m.token, server: 'fake',
        limits: { max_frame: 1 << 20, max_commands: 1000, max_subscriptions: 100, rate: 100000, burst: 100000 } });
    } else if (m.t === 'subscribe') {
      ws.subs.add(m.doc);
      const d = this.doc(m.doc);
      if (m.have_version === undefined) this.out(ws, { t: 'snapshot', doc: m.doc, version: d.version, chain: d.chain, state: d.state });
      else if (m.have_version < d.version) {
        const items = this.history.get(m.doc).filter((it) => it.version > m.have_version);
        this.out(ws, { t: 'deltas', doc: m.doc, from_version: m.have_version, items });
      }
    } else if (m.t === 'flush') {
      this.flushes.push(m);
      const out = this.doc(m.doc).apply(m);
      this.commit(m.doc, out, m.client_id, m.seq, ws.user);
      this.out(ws, { t: 'outcome', doc: m.doc, client_id: m.client_id, seq: m.seq, code: CODES[out.code], dup: out.duplicate || undefined,
        version_before: out.version_before, version_after: out.version_after, chain: out.chain,
        results: out.results.map((r) => ({ code: CODES[r.code], version: r.version || undefined, key: r.key })) });
    } else if (m.t === 'signal') {
      for (const s of this.sockets) if (s.subs.has(m.doc)) this.out(s, { t: 'signal', doc: m.doc, from: ws.user, body: m.body });
    }
  }

  get WebSocket() {
    const gw = this;
    return class FakeWS {
      constructor(url) {
        this.url = url; this.readyState = 0; this.subs = new Set();
        gw.sockets.add(this);
        setTimeout(() => { this.readyState = 1; this.onopen?.(); }, 0);
      }
      send(bytes) {
        if (this.readyState !== 1) return;
        if (gw.paused) gw.inbox.push([this, bytes]);
        else setTimeout(() => this.readyState === 1 && gw.receive(this, bytes), 0);
      }
      deliver(bytes) {
        if (this.readyState === 1) {
          setTimeout(() => this.readyState === 1 && this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) }), 0);
        }
      }
      close(code = 1000) {
        if (this.readyState === 3) return;
        this.readyState = 3; gw.sockets.delete(this);
        setTimeout(() => this.onclose?.({ code }), 0);
      }
    };
  }
}

/** A client of gw, connected as user, once ready. */
export async function connectTo(gw, user) {
  const c = new Client({ url: 'ws://fake/v1/ws', token: user, WebSocket: gw.WebSocket, pacing: false }).connect();
  await until(() => c.state === 'ready');
  return c;
}

/** Waits for fn() to be true, polling, within ms. */
export async function until(fn, ms = 5000) {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${fn}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
