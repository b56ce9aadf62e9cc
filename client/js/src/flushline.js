// SPDX-License-Identifier: Apache-2.0
// flushline: the Flushline client for browsers (and Node with a WebSocket class), no build step.
//
// One Client holds one WebSocket to a gateway (/v1/ws; or to one of a list of addresses,
// `urls`, tried round robin: failover): hello with a token, then subscribe with
// have_version and send flushes. For each subscribed document it keeps
//   - the confirmed copy (engine.js Doc): snapshot + deltas, each delta checked by its chain
//     hash (a mismatch or a gap resubscribes from scratch);
//   - the pending flushes: seq per (client, document) counting from 1, kept until their
//     outcome (and their delta) arrived, resent with their seq after a reconnect, a gap
//     outcome, a nack with retry_after_ms, or ack_timeout_ms without an answer; a flush
//     goes out only once every earlier unanswered flush of its document is in flight;
//   - the view: the confirmed state with every pending command applied on top with the
//     engine (optimistic state), rebuilt on every outcome, delta and snapshot.
// Commands given in one turn are batched into one flush per animation frame (setTimeout 0
// where there is no requestAnimationFrame). Reconnects follow PROTOCOL.md section 7:
// 4000-4099 stop, 4100-4199 exponential back-off with jitter, 4200-4299 and network errors
// reconnect at once (then back off while attempts keep failing). With several addresses
// every reconnect goes to the next one, and in the reconnect-now classes each address gets
// one immediate try before the back-off starts; the new gateway gets the resubscribes (with
// have_version) and every unanswered flush again, in seq order, with its original seq.
//
// Pacing (as the C client): flushes leave through a token bucket a margin inside the one the
// welcome announces (PACE_RATE_PCT of its rate, a bucket of burst - 1, at least 1), so the
// gateway's rate limit is met rather than hit even when timers fire late or frames arrive
// bunched. No retry storm: after a rate_limited or unavailable nack only the first nacked
// flush of a document waits for its retry_after_ms; later flushes of that document are
// held, and the nacked backlog goes out one flush at a time in seq order (each once the
// previous one is answered). A new connection clears the hold (its bucket is fresh).
//
// Token time: the gateway closes the connection with 4004 when its clock reaches the token's
// exp + leeway; the welcome announces both (exp and leeway on the 'welcome' event and on the
// client, undefined from an older gateway). The client fetches no tokens: the application
// calls setToken() with a fresh one before exp (e.g. on a timer set from the 'welcome' event);
// the answer to the resulting auth is another welcome.
//
// Events (client.on(name, fn)): 'status' {state, closeCode}, 'welcome' {user, limits, server, exp, leeway},
// 'change' {doc, state, version, source}, 'delta' {doc, delta, mine}, 'outcome' {doc, outcome},
// 'nack' {doc, seq, code, retryAfterMs, reason, retrying}, 'refused' {doc, command, code, rule, local} (a command
// the rules predicted on the view refused before sending: DocHandle.setRules), 'signal' {doc, from, body},
// 'presence' {doc, peers}, 'error' {code, reason}.

import { Doc, CODES, codeName, pointer } from './engine.js';
import { toHex, clone } from './codec.js';
import { decodeMessage, decodeMessageJSON, encodeMessage, encodeMessageJSON } from './messages.js';

export { Doc, pointer, codeName, CODES } from './engine.js';
export { Float, float, parseJSON, stringifyJSON, equal, clone } from './codec.js';

export const CLIENT_NAME = 'flushline-js/0.1.0';
/** Connection states, as the C client names them. */
export const STATES = ['connecting', 'hello', 'ready', 'backoff', 'stopped'];

const PRESENCE_EVERY_MS = 5000;
/** Pacing margin: flushes are paced at this percentage of the welcome's rate. */
export const PACE_RATE_PCT = 95;
const DEFAULT_RETRY_MS = 1000;
const now = () => (globalThis.performance ? globalThis.performance.now() : Date.now());
const PRESENCE_TTL_MS = 12000;

function randomId() {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return b;
}

/** A random create key proposal (16 lowercase base32 characters, like derived keys). */
export function newKey() {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  const A = 'abcdefghijklmnopqrstuvwxyz234567';
  return Array.from(b, (x) => A[x & 31]).join('');
}

const nextFrame = (fn) => (typeof requestAnimationFrame === 'function'
  ? requestAnimationFrame(() => fn()) : setTimeout(fn, 0));

class Emitter {
  constructor() { this.handlers = new Map(); }
  /** Adds a listener; returns a function that removes it. */
  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(fn);
    return () => this.off(name, fn);
  }
  off(name, fn) { this.handlers.get(name)?.delete(fn); }
  emit(name, ev) {
    for (const fn of [...(this.handlers.get(name) || [])]) {
      try { fn(ev); } catch (e) { console.error(`flushline: ${name} listener`, e); }
    }
  }
}

/**
 * The command shorthands, one command each through this.apply(): shared by DocHandle and
 * UndoManager (undo.js), which define apply().
 */
export class Editor {
  add(path, value) { this.apply({ op: 'add', path, value }); }
  remove(path) { this.apply({ op: 'remove', path }); }
  replace(path, value) { this.apply({ op: 'replace', path, value }); }
  move(from, path) { this.apply({ op: 'move', from, path }); }
  copy(from, path) { this.apply({ op: 'copy', from, path }); }
  incr(path, value = 1) { this.apply({ op: 'incr', path, value }); }
  merge(path, value) { this.apply({ op: 'merge', path, value }); }
  /** Creates value under a new key of the map at path (a random proposal unless given); returns it. */
  create(path, value, key = newKey()) {
    this.apply({ op: 'create', path, value, key });
    return key;
  }
}

/**
 * One subscribed document: confirmed copy, pending flushes and the optimistic view.
 */
export class DocHandle extends Editor {
  constructor(client, id) {
    super();
    this.client = client;
    this.id = id;
    this.confirmed = null; // Doc once a snapshot arrived
    this.seq = 0;          // last seq given out
    this.queued = [];      // commands not yet in a flush
    this.queuedTag = null; // the tag of the queued commands' flush (undo.js marks undoable ones)
    // {seq, commands, base_version, st: 'queued'|'inflight'|'retry', nacked, sentAt, sentOnce,
    //  outcome, inConfirmed, retryAt, order}, in seq order
    this.pending = [];
    this.view = null;
    this.peers = new Map(); // session -> {user, body, at}
    this.subscribed = false;
    this.rules = null;     // a compiled rule set the view predicts (setRules)
    this.role = '';
  }

  /**
   * Predicts a rule set (schemas/RULES.md) on the optimistic view: `rules` is compiled by
   * compileRules() (rules.js) from the rules document the server has in force for this
   * document, `role` the token's `role` claim ('' = the set's default role). From now on the
   * view applies the rules with the client's user and the local time (stamps show at once),
   * and a command they refuse is not sent: it is dropped before any round trip and reported
   * as a 'refused' event {doc, command, code: 'rule_violation', rule, local: true}. The
   * processor stays the authority (its refusals come as outcomes, each result naming its
   * rule). null: no prediction. Atomic flushes (undo, redo) are sent as before.
   */
  setRules(rules, role = '') {
    this.rules = rules;
    this.role = role || '';
    this.rebase();
    this.changed('rules');
  }

  // The context the view's rules are evaluated with.
  ruleCtx() {
    return this.rules ? { user: this.client.user ?? '', ts: Date.now(), role: this.role } : null;
  }

  // Applies commands to the view and returns those to send: the ones the predicted rules
  // refuse are dropped and reported.
  applyToView(cmds) {
    if (!this.view) return cmds;
    const codes = this.view.applyLocal(cmds, this.ruleCtx());
    if (!this.rules) return cmds;
    const rules = this.view.lastRules;
    const keep = [];
    cmds.forEach((command, i) => {
      if (codes[i] !== 'rule_violation') keep.push(command);
      else this.client.emit('refused', { doc: this.id, command, code: 'rule_violation', rule: rules[i], local: true });
    });
    return keep;
  }

  /** The optimistic state (confirmed + pending), or null before the first snapshot. */
  get state() { return this.view ? this.view.state : null; }
  /** The confirmed version (the server's), 0 before the first snapshot. */
  get version() { return this.confirmed ? this.confirmed.version : 0; }
  /** Flushes sent or queued and not yet acknowledged (outcome + delta). */
  get pendingCount() { return this.pending.length + (this.queued.length ? 1 : 0); }

  /** Queues commands ({op, path, from?, value?, key?}); they show in state at once. */
  apply(...commands) {
    this.submit(commands.flat());
  }

  /**
   * Queues commands like apply(), with options:
   *   tag: attached to the flush that carries them (several tagged batches in one frame
   *        share one flush and the last tag); the flush's 'outcome' and own 'delta' events
   *        carry it (undo.js tags the changes it may undo);
   *   atomic: the commands go in a flush of their own, all-or-nothing (the processor's
   *        `atomic`); the optimistic view applies them all or none. Commands queued before
   *        go in an earlier flush, so the order holds.
   * Returns the seq of an atomic flush (undefined otherwise).
   */
  submit(cmds, { tag, atomic = false } = {}) {
    if (!cmds.length) return undefined;
    let seq;
    if (atomic) {
      this.client.flushDoc(this);
      seq = this.pushFlush(cmds, { atomic: true, tag });
      if (this.view) applyAtomic(this.view, cmds, this.ruleCtx());
    } else {
      const send = this.applyToView(cmds);
      if (!send.length) {
        this.changed('local');
        return undefined;
      }
      this.queued.push(...send);
      if (tag !== undefined) this.queuedTag = tag;
    }
    this.client.scheduleFlush();
    this.changed('local');
    return seq;
  }

  pushFlush(commands, { atomic = false, tag } = {}) {
    this.pending.push({ seq: ++this.seq, commands, base_version: this.version, st: 'queued', nacked: false, sentAt: 0, sentOnce: false,
      outcome: null, inConfirmed: false, retryAt: 0, order: ++this.client.order, atomic, tag });
    return this.seq;
  }
  test(path, value) { this.apply({ op: 'test', path, value }); }

  /** Sends an ephemeral signal to the document's subscribers (dropped when not ready). */
  signal(body) { return this.client.send({ v: 1, t: 'signal', doc: this.id, body }); }

  /** Announces this client's presence body now and every few seconds while connected. */
  setPresence(body) {
    this.presence = body;
    this.sendPresence();
  }
  sendPresence() {
    if (this.presence !== undefined) this.signal({ presence: this.presence, session: this.client.session });
  }

  /** Presence of the others (and this client): [{session, user, body, typing}]. */
  get present() {
    const now = Date.now();
    return [...this.peers.entries()].filter(([, p]) => now - p.at < PRESENCE_TTL_MS)
      .map(([session, p]) => ({ session, user: p.user, body: p.body, typing: p.typing && now - p.typingAt < 4000 }));
  }

  changed(source) {
    this.client.emit('change', { doc: this.id, state: this.state, version: this.version, source, handle: this });
  }

  // The view: confirmed state + every pending command not yet in it.
  rebase() {
    if (!this.confirmed) { this.view = null; return; }
    const v = this.confirmed.copy();
    v.setRules(this.rules, this.role);
    const ctx = this.ruleCtx();
    for (const f of this.pending) {
      if (!this.inView(f)) continue;
      if (f.atomic) applyAtomic(v, f.commands, ctx); else v.applyLocal(f.commands, ctx);
    }
    if (this.queued.length) v.applyLocal(this.queued, ctx);
    v.version = this.confirmed.version;
    this.view = v;
  }
  inView(f) {
    if (f.inConfirmed) return false;
    if (f.outcome) return this.confirmed && this.confirmed.version < f.outcome.version_after;
    return true;
  }
  // Drops flushes that are answered and reflected in the confirmed copy.
  settle() {
    this.pending = this.pending.filter((f) => !(f.outcome && (f.inConfirmed || !this.confirmed ||
      this.confirmed.version >= f.outcome.version_after || f.outcome.version_after === f.outcome.version_before)));
  }
}

/**
 * A connection to a gateway.
 */
export class Client extends Emitter {
  /**
   * @param {object} opts
   * @param {string} [opts.url] ws://host:port/v1/ws (required unless urls is given)
   * @param {string[]} [opts.urls] failover: gateway addresses, round robin on every reconnect
   * @param {string} opts.token JWT
   * @param {boolean} [opts.json] JSON text frames instead of msgpack binary frames
   * @param {typeof WebSocket} [opts.WebSocket] the WebSocket class (default globalThis.WebSocket)
   * @param {number} [opts.backoffInitialMs] 250
   * @param {number} [opts.backoffMaxMs] 30000
   * @param {number} [opts.ackTimeoutMs] 10000
   * @param {string} [opts.name] hello "client"
   * @param {boolean} [opts.pacing] pace flushes by the welcome's rate and burst (default true)
   */
  constructor(opts) {
    super();
    this.opts = { backoffInitialMs: 250, backoffMaxMs: 30000, ackTimeoutMs: 10000, name: CLIENT_NAME, ...opts };
    this.urls = Array.isArray(opts.urls) && opts.urls.length ? [...opts.urls] : [opts.url];
    if (!this.urls.every((u) => typeof u === 'string' && u)) throw new TypeError('flushline: url or urls required');
    this.urlIndex = 0;
    this.WS = opts.WebSocket || globalThis.WebSocket;
    this.token = opts.token || '';
    this.clientId = opts.clientId || randomId();
    this.session = toHex(this.clientId).slice(0, 8);
    this.docs = new Map();
    this.state = 'stopped';
    this.closeCode = 0;
    this.attempts = 0;
    this.ws = null;
    this.user = null;
    this.limits = null;
    this.flushScheduled = false;
    this.timer = null;
    this.ticker = null;
    this.stopped = true;
    this.order = 0;         // creation order of flushes over every document
    this.pace = null;       // {rate (tokens/ms), burst, tokens, last} while paced
    this.paceTimer = null;
    this.stats = { connects: 0, welcomes: 0, resent: 0, resyncs: 0, sent: 0, received: 0, timeouts: 0, nacks: 0, failovers: 0 };
  }

  /** The gateway address of the current (or next) connection attempt. */
  get url() { return this.urls[this.urlIndex]; }

  /** Starts connecting (again). */
  connect() {
    this.stopped = false;
    if (!this.ticker) this.ticker = setInterval(() => this.tick(), 1000);
    this.open();
    return this;
  }

  /** Closes for good (1000); pending flushes stay pending. */
  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.ticker); this.ticker = null;
    if (this.ws) { const ws = this.ws; this.ws = null; ws.onclose = null; ws.close(1000); }
    this.dropConnection();
    this.setState('stopped', 1000);
  }

  /** Drops the connection and reconnects at once (as after 4201 going_away). */
  reconnect() {
    if (this.ws) this.ws.close(3000);
  }

  /** Replaces the token (auth when ready; the next hello otherwise). */
  setToken(token) {
    this.token = token;
    if (this.state === 'ready') this.send({ v: 1, t: 'auth', token });
    else if (this.stopped && [4001, 4004].includes(this.closeCode)) this.connect();
  }

  /** Subscribes to a document; returns its handle (the same one when already subscribed). */
  subscribe(id) {
    let h = this.docs.get(id);
    if (h) return h;
    h = new DocHandle(this, id);
    this.docs.set(id, h);
    if (this.state === 'ready') this.sendSubscribe(h);
    return h;
  }

  /** The handle of a subscribed document, or undefined. */
  doc(id) { return this.docs.get(id); }

  setState(state, closeCode = 0) {
    if (this.state === state && !closeCode) return;
    this.state = state;
    this.closeCode = closeCode;
    this.emit('status', { state, closeCode });
  }

  open() {
    if (this.stopped) return;
    this.stats.connects++;
    this.setState('connecting');
    let ws;
    try {
      ws = new this.WS(this.url);
    } catch (e) {
      this.scheduleReconnect(0);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.setState('hello');
      this.send({ v: 1, t: 'hello', token: this.token, client: this.opts.name });
    };
    ws.onmessage = (ev) => { if (this.ws === ws) this.onFrame(ev.data); };
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onClosed(ev.code || 0);
    };
  }

  // The connection is gone: every unanswered flush goes back to queued and the holds after
  // nacks are cleared (the next gateway's bucket is fresh, and pacing meets it).
  dropConnection() {
    clearTimeout(this.paceTimer); this.paceTimer = null;
    this.pace = null;
    for (const h of this.docs.values()) {
      h.subscribed = false;
      for (const f of h.pending) {
        clearTimeout(f.retryTimer);
        f.nacked = false;
        if (!f.outcome) f.st = 'queued';
      }
    }
  }

  onClosed(code) {
    this.dropConnection();
    if (code >= 4000 && code <= 4099) {
      this.stopped = true;
      this.setState('stopped', code);
      return;
    }
    this.scheduleReconnect(code);
  }

  scheduleReconnect(code) {
    if (this.stopped) return;
    const atOnce = (code >= 4200 && code <= 4299) || [0, 1000, 1001, 1005, 1006, 3000].includes(code);
    const n = this.attempts++;
    // reconnect-now classes: each address gets one immediate try, then back off
    const step = atOnce ? n - this.urls.length : n;
    let delay = 0;
    if (step >= 0) {
      const base = Math.min(this.opts.backoffMaxMs, this.opts.backoffInitialMs * 2 ** Math.min(step, 20));
      delay = base / 2 + Math.random() * base / 2; // jitter: half to all of the step
    }
    if (this.urls.length > 1) {
      // failover: the next attempt goes to the next address
      this.urlIndex = (this.urlIndex + 1) % this.urls.length;
      this.stats.failovers++;
    }
    this.setState('backoff', code);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delay);
  }

  send(msg) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    if (msg.t !== 'hello' && this.state !== 'ready' && msg.t !== 'auth') return false;
    this.ws.send(this.opts.json ? encodeMessageJSON(msg) : encodeMessage(msg));
    this.stats.sent++;
    return true;
  }

  onFrame(data) {
    this.stats.received++;
    let msg;
    try {
      msg = typeof data === 'string' ? decodeMessageJSON(data, 's2c', { max_frame: 16 << 20, max_commands: 100000, max_body: 4096, max_token: 8192 })
        : decodeMessage(new Uint8Array(data), 's2c', { max_frame: 16 << 20, max_commands: 100000, max_body: 4096, max_token: 8192 });
    } catch (e) {
      this.emit('error', { code: e.code || 'bad_frame', reason: String(e.message) });
      if (e.code !== 'unknown_type') this.ws?.close(3000);
      return;
    }
    const h = msg.doc !== undefined ? this.docs.get(msg.doc) : undefined;
    switch (msg.t) {
      case 'welcome': return this.onWelcome(msg);
      case 'snapshot': if (h) this.onSnapshot(h, msg); return;
      case 'deltas': if (h) this.onDeltas(h, msg); return;
      case 'outcome': if (h && toHex(msg.client_id) === toHex(this.clientId)) this.onOutcome(h, msg); return;
      case 'nack': return this.onNack(h, msg);
      case 'signal': if (h) this.onSignal(h, msg); return;
      case 'changed': if (h) this.emit('changed', { doc: h.id, version: msg.version }); return;
      case 'error': this.emit('error', { code: codeName(msg.code), reason: msg.reason }); return;
      default: return;
    }
  }

  onWelcome(msg) {
    const first = this.state !== 'ready';
    this.user = msg.user;
    this.limits = msg.limits;
    this.tokenExp = msg.exp === undefined ? undefined : Number(msg.exp); // seconds since the epoch
    this.leeway = msg.leeway === undefined ? undefined : Number(msg.leeway); // seconds
    this.stats.welcomes++;
    this.attempts = 0;
    this.setPacing(msg.limits, first);
    this.setState('ready');
    this.emit('welcome', { user: msg.user, limits: msg.limits, server: msg.server, exp: this.tokenExp, leeway: this.leeway });
    if (!first) { this.pump(); return; } // an auth answer
    for (const h of this.docs.values()) {
      this.sendSubscribe(h);
      h.sendPresence();
    }
    // every unanswered flush goes again, in seq order, with its seq
    this.pump();
    this.scheduleFlush();
  }

  // The pacing bucket, a margin inside the welcome's: PACE_RATE_PCT of its rate, burst - 1.
  setPacing(limits, fresh) {
    const rate = Number(limits?.rate ?? 0);
    const burst = Number(limits?.burst ?? 0);
    if (this.opts.pacing === false || !(rate > 0)) { this.pace = null; return; }
    const b = burst > 1 ? burst - 1 : 1;
    const r = (rate * PACE_RATE_PCT) / 100 / 1000; // tokens per ms
    if (fresh || !this.pace) this.pace = { rate: r, burst: b, tokens: b, last: now() }; // a new connection's bucket is full
    else { this.paceRefill(); this.pace.rate = r; this.pace.burst = b; this.pace.tokens = Math.min(this.pace.tokens, b); }
  }

  paceRefill() {
    const p = this.pace, t = now();
    p.tokens = Math.min(p.burst, p.tokens + (t - p.last) * p.rate);
    p.last = t;
  }

  // Takes a token, or arms the pace timer and says no.
  paceTake() {
    if (!this.pace) return true;
    this.paceRefill();
    if (this.pace.tokens >= 1) { this.pace.tokens -= 1; return true; }
    if (!this.paceTimer) {
      const wait = (1 - this.pace.tokens) / this.pace.rate;
      this.paceTimer = setTimeout(() => { this.paceTimer = null; this.pump(); }, Math.max(1, Math.ceil(wait)));
    }
    return false;
  }

  sendSubscribe(h) {
    const m = { v: 1, t: 'subscribe', doc: h.id };
    if (h.confirmed) m.have_version = h.confirmed.version;
    h.subscribed = this.send(m);
  }

  resync(h, why) {
    this.stats.resyncs++;
    this.emit('error', { code: 'resync', reason: `${h.id}: ${why}` });
    h.confirmed = null;
    this.sendSubscribe(h);
  }

  onSnapshot(h, msg) {
    h.confirmed = new Doc(h.id, { state: msg.state, version: Number(msg.version), chain: msg.chain });
    for (const f of h.pending) if (f.outcome && f.outcome.version_after <= h.confirmed.version) f.inConfirmed = true;
    h.settle();
    h.rebase();
    h.changed('snapshot');
  }

  onDeltas(h, msg) {
    if (!h.confirmed) return;
    const mine = toHex(this.clientId);
    let at = Number(msg.from_version);
    for (const d of msg.items) {
      const before = Number(d.version) - d.commands.length;
      at = Number(d.version);
      if (at <= h.confirmed.version) continue; // already have it
      if (before !== h.confirmed.version) return this.resync(h, `gap: delta from ${before}, have ${h.confirmed.version}`);
      const own = toHex(d.client_id) === mine;
      const f = own ? h.pending.find((p) => p.seq === Number(d.seq)) : undefined;
      // a tagged flush of ours: its listener sees the confirmed copy as it was before
      // (undo.js computes the exact inverse from it); it must not change it
      if (f && f.tag !== undefined && h.onOwnDelta) {
        try { h.onOwnDelta(f, d, h.confirmed); } catch (e) { console.error('flushline: onOwnDelta', e); }
      }
      try {
        h.confirmed.applyApplied(before, d.commands, d.chain);
      } catch (e) {
        return this.resync(h, e.message);
      }
      if (f) f.inConfirmed = true;
      this.emit('delta', { doc: h.id, delta: d, mine: own, tag: f?.tag });
    }
    h.settle();
    h.rebase();
    h.changed('remote');
  }

  onOutcome(h, msg) {
    const f = h.pending.find((p) => p.seq === Number(msg.seq));
    this.emit('outcome', { doc: h.id, outcome: { ...msg, codeName: codeName(msg.code) }, tag: f?.tag, commands: f?.commands });
    if (!f) return;
    if (msg.code === CODES.gap && !f.outcome && h.pending.some((p) => p.seq < f.seq && !p.outcome)) {
      // an earlier seq has not reached the processor: send this one again once the
      // earlier ones are on their way
      f.st = 'queued';
      this.pump();
      return;
    }
    clearTimeout(f.retryTimer);
    f.nacked = false;
    f.outcome = { version_before: Number(msg.version_before), version_after: Number(msg.version_after), code: msg.code };
    if (msg.dup && msg.version_after <= h.version) f.inConfirmed = true;
    h.settle();
    h.rebase();
    h.changed('outcome');
    this.pump(); // flushes held behind a nacked one may go now
  }

  onNack(h, msg) {
    this.stats.nacks++;
    const f = h && msg.seq !== undefined ? h.pending.find((p) => p.seq === Number(msg.seq) && !p.outcome) : undefined;
    const retry = [CODES.unavailable, CODES.rate_limited].includes(msg.code) || msg.retry_after_ms !== undefined;
    this.emit('nack', { doc: msg.doc, seq: msg.seq, code: codeName(msg.code), retryAfterMs: msg.retry_after_ms, reason: msg.reason,
      retrying: !!(f && retry) });
    if (!f) return;
    if (retry) {
      clearTimeout(f.retryTimer);
      const held = h.pending.some((p) => p.seq < f.seq && !p.outcome && p.nacked);
      f.nacked = true;
      if (held) {
        // held behind the earlier nacked flush: resent in seq order once that one is
        // answered (a timer of its own would resend the whole backlog at once)
        f.st = 'queued';
        f.retryAt = 0;
      } else {
        const ms = Number(msg.retry_after_ms ?? DEFAULT_RETRY_MS);
        f.st = 'retry';
        f.retryAt = Date.now() + ms;
        f.retryTimer = setTimeout(() => {
          if (f.st === 'retry' && !f.outcome && h.pending.includes(f)) { f.st = 'queued'; this.pump(); }
        }, ms);
      }
    } else {
      // final: the flush will never apply (doc_forbidden, limit, ...); drop it
      clearTimeout(f.retryTimer);
      h.pending = h.pending.filter((p) => p !== f);
      h.rebase();
      h.changed('nack');
      if (h.onDropped) h.onDropped(f, codeName(msg.code));
      this.pump();
    }
  }

  onSignal(h, msg) {
    const b = msg.body;
    if (b && typeof b === 'object' && typeof b.session === 'string') {
      const p = h.peers.get(b.session) || { user: msg.from, at: 0 };
      p.user = msg.from;
      p.at = Date.now();
      if (b.presence !== undefined) p.body = b.presence;
      if (b.typing !== undefined) { p.typing = !!b.typing; p.typingAt = Date.now(); p.typingWhere = b.where; }
      if (b.bye) h.peers.delete(b.session); else h.peers.set(b.session, p);
      this.emit('presence', { doc: h.id, peers: h.present });
    }
    this.emit('signal', { doc: h.id, from: msg.from, body: b });
  }

  scheduleFlush() {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    nextFrame(() => {
      this.flushScheduled = false;
      for (const h of this.docs.values()) this.flushDoc(h);
      this.pump();
    });
  }

  flushDoc(h) {
    if (!h.queued.length) return;
    const max = this.limits?.max_commands || 1000;
    const tag = h.queuedTag ?? undefined;
    h.queuedTag = null;
    while (h.queued.length) h.pushFlush(h.queued.splice(0, max), { tag });
  }

  // The next flush to write: of each document the first queued flush whose earlier
  // unanswered siblings are all in flight, none of them a nacked one still waiting for its
  // answer (the refused backlog goes one at a time) and none waiting for a retry; the
  // oldest of those over the documents.
  nextFlush() {
    let best = null;
    for (const h of this.docs.values()) {
      for (const f of h.pending) {
        if (f.outcome) continue;
        if (f.st === 'inflight') { if (f.nacked) break; continue; }
        if (f.st === 'queued' && (!best || f.order < best.f.order)) best = { h, f };
        break;
      }
    }
    return best;
  }

  // Writes queued flushes while the connection is ready, the order allows and pacing has
  // tokens (else the pace timer calls again).
  pump() {
    while (this.state === 'ready' && this.ws && this.ws.readyState === 1) {
      const next = this.nextFlush();
      if (!next || !this.paceTake()) return;
      const { h, f } = next;
      const ok = this.send({
        v: 1, t: 'flush', doc: h.id, client_id: this.clientId, seq: f.seq, base_version: f.base_version,
        commands: f.commands, ...(f.atomic ? { atomic: true } : {}),
      });
      if (!ok) return;
      f.st = 'inflight';
      f.sentAt = Date.now();
      if (f.sentOnce) this.stats.resent++;
      f.sentOnce = true;
    }
  }

  tick() {
    const now = Date.now();
    for (const h of this.docs.values()) {
      if (this.state === 'ready') {
        for (const f of h.pending) {
          if (!f.outcome && f.st === 'inflight' && now - f.sentAt > this.opts.ackTimeoutMs) {
            f.st = 'queued'; // no outcome in time: again with its seq (dedup makes it safe)
            this.stats.timeouts++;
          }
        }
        if (h.presence !== undefined && (!h.presenceAt || now - h.presenceAt >= PRESENCE_EVERY_MS)) {
          h.presenceAt = now;
          h.sendPresence();
        }
      }
      // expire quiet peers
      let gone = false;
      for (const [s, p] of h.peers) if (now - p.at >= PRESENCE_TTL_MS) { h.peers.delete(s); gone = true; }
      if (gone) this.emit('presence', { doc: h.id, peers: h.present });
    }
    this.pump();
  }

  /** Sum of pending flushes over the documents (0 when everything is acknowledged). */
  get pendingCount() {
    let n = 0;
    for (const h of this.docs.values()) n += h.pendingCount;
    return n;
  }
}

// All or nothing on the optimistic view (an atomic flush): applied on a copy, kept only when
// every command succeeded. Returns true when applied.
function applyAtomic(view, commands, ctx = null) {
  const tryDoc = view.copy();
  if (!tryDoc.applyLocal(commands, ctx).every((c) => c === 'ok')) return false;
  view.state = tryDoc.state;
  view.size = tryDoc.size;
  view.version = tryDoc.version;
  return true;
}

/** Convenience: a connected client. */
export function connect(opts) { return new Client(opts).connect(); }

export { clone as cloneValue };
