// SPDX-License-Identifier: Apache-2.0
// @flushline/client/react: React 18 and 19 bindings (a peer dependency), Suspense-free.
//
//   <FlushlineProvider client={client}> ... </FlushlineProvider>
//   const { state, version, status, pending, edit, undo } = useDocument('acme/board');
//   const title = useDocument('acme/board', (s) => s.cards?.[key]?.title).state;
//   const status = useStatus();                 // 'connecting' | 'hello' | 'ready' | ...
//   const { peers, setPresence, signal } = usePresence('acme/board');
//   const history = useHistory('acme/board');   // the gateway's history endpoints (history.js)
//
// No re-render storms: each document has one store (useSyncExternalStore) whose snapshot is
// rebuilt and whose listeners are told at most once per animation frame, however many deltas
// arrived in it. While changes keep coming faster than that (each notification takes in
// several), the gap between notifications doubles, from one frame up to maxIntervalMs (1000
// by default: a document under a sustained storm renders about once a second); as soon as
// they come one at a time again it halves back to one frame. This client's own edits render
// on the next frame regardless, so typing never waits behind a storm. A component re-renders
// only for the documents it uses; the selector form only when the selected slice (compared
// by value) or the status changes.

import {
  createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore,
} from 'react';
import { equal } from './codec.js';
import { UndoManager } from './undo.js';
import { HistoryClient } from './history.js';

const Ctx = createContext(null);

const raf = (fn) => (typeof requestAnimationFrame === 'function' ? requestAnimationFrame(fn) : setTimeout(fn, 16));

// One store per subscribed document: a snapshot object that changes identity only when the
// listeners are told (so React sees one change per notification).
class DocStore {
  constructor(kit, id) {
    this.kit = kit;
    this.id = id;
    this.handle = kit.client.subscribe(id);
    this.listeners = new Set();
    this.undo = this.handle.undoManager || new UndoManager(this.handle);
    this.snap = this.make();
    this.scheduled = false;
    this.lastNotify = 0;
    this.interval = 0;   // the least gap before the next notification (ms)
    this.count = 0;      // change events since the last notification
    this.stale = false;
    this.urgent = false;
    this.timer = null;
    this.offs = [];
  }

  make() {
    const h = this.handle;
    return {
      state: h.state, version: h.version, status: this.kit.client.state, pending: h.pendingCount,
      canUndo: this.undo.canUndo, canRedo: this.undo.canRedo,
    };
  }

  subscribe(fn) {
    this.listeners.add(fn);
    if (this.listeners.size === 1) {
      const c = this.kit.client;
      this.offs.push(c.on('change', (ev) => { if (ev.doc === this.id) this.changed(ev.source === 'local'); }));
      this.offs.push(this.undo.on('change', () => this.changed(true)));
      this.offs.push(c.on('status', () => this.changed(true)));
      // a change between the first render and this subscription
      if (this.snap.version !== this.handle.version || this.snap.state !== this.handle.state) this.changed(true);
    }
    return () => {
      this.listeners.delete(fn);
      if (!this.listeners.size) { for (const off of this.offs) off(); this.offs = []; }
    };
  }

  // Coalesces: one notification per frame at most. A notification that took in more than
  // one change event means changes come faster than frames: the next one waits twice as
  // long (up to maxIntervalMs); one that took in a single change halves the wait again.
  changed(urgent) {
    this.stale = true;
    this.count++;
    if (urgent) this.urgent = true;
    if (this.scheduled) {
      if (urgent && this.timer) { clearTimeout(this.timer); this.timer = null; raf(() => this.notify()); }
      return;
    }
    this.scheduled = true;
    const wait = this.urgent ? 0 : Math.max(0, this.lastNotify + this.interval - Date.now());
    if (wait > 0) this.timer = setTimeout(() => { this.timer = null; raf(() => this.notify()); }, wait);
    else raf(() => this.notify());
  }

  notify() {
    if (!this.scheduled) return;
    this.scheduled = false;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (!this.stale) return;
    this.stale = false;
    if (this.count > 1) this.interval = Math.min(this.kit.maxIntervalMs, Math.max(16, this.interval * 2));
    else this.interval = this.interval > 32 ? this.interval / 2 : 0;
    this.count = 0;
    this.urgent = false;
    this.lastNotify = Date.now();
    this.snap = this.make();
    this.kit.notifications++;
    for (const fn of [...this.listeners]) fn();
  }
}

// One status store per provider.
class StatusStore {
  constructor(client) {
    this.client = client;
    this.snap = client.state;
    this.listeners = new Set();
    this.off = null;
  }
  subscribe(fn) {
    this.listeners.add(fn);
    if (!this.off) {
      this.off = this.client.on('status', ({ state }) => {
        this.snap = state;
        for (const l of [...this.listeners]) l();
      });
      this.snap = this.client.state;
    }
    return () => {
      this.listeners.delete(fn);
      if (!this.listeners.size && this.off) { this.off(); this.off = null; }
    };
  }
}

/** The kit behind a provider: the client, the stores, the history client. */
export class FlushlineKit {
  /**
   * @param {import('./flushline.js').Client} client
   * @param {{maxIntervalMs?: number, history?: HistoryClient | {baseUrl?: string, token?: string}}} [opts]
   */
  constructor(client, opts = {}) {
    this.client = client;
    this.maxIntervalMs = opts.maxIntervalMs ?? 1000;
    this.stores = new Map();
    this.status = new StatusStore(client);
    this.history = opts.history instanceof HistoryClient ? opts.history : new HistoryClient({ client, ...(opts.history || {}) });
    this.notifications = 0;
  }
  store(id) {
    let s = this.stores.get(id);
    if (!s) { s = new DocStore(this, id); this.stores.set(id, s); }
    return s;
  }
}

/**
 * Makes a client available to the hooks below.
 * props: client (a Client, connected by the application), maxIntervalMs (1000: the longest
 * gap between renders of a document under a storm of changes), history (a HistoryClient, or
 * {baseUrl, token} for one; by default derived from the client's url and token).
 */
export function FlushlineProvider({ client, maxIntervalMs, history, children }) {
  const kit = useMemo(() => new FlushlineKit(client, { maxIntervalMs, history }), [client, maxIntervalMs, history]);
  return createElement(Ctx.Provider, { value: kit }, children);
}

/** The kit of the nearest provider (throws outside one). */
export function useFlushline() {
  const kit = useContext(Ctx);
  if (!kit) throw new Error('flushline: use these hooks inside <FlushlineProvider client={...}>');
  return kit;
}

/** The client of the nearest provider. */
export function useClient() { return useFlushline().client; }

/** The connection state: 'connecting' | 'hello' | 'ready' | 'backoff' | 'stopped'. */
export function useStatus() {
  const s = useFlushline().status;
  const sub = useCallback((fn) => s.subscribe(fn), [s]);
  return useSyncExternalStore(sub, () => s.snap, () => s.snap);
}

const identity = (x) => x;

/**
 * One document: {state, version, status, pending, canUndo, canRedo, handle, edit, undo, redo}.
 * state is null until the first snapshot. edit changes the document through its undo
 * manager (undoable: apply, add, remove, replace, move, copy, incr, merge, create); for a
 * change that must not be undone use handle.apply(). undo() and redo() resolve
 * {ok, code?, reason?}.
 * With a selector, state is selector(document state) (called only with a non-null state;
 * null before) and the component re-renders only when that slice changes by value (or the
 * status, pending count or undo availability); version is then the one of the last render.
 */
export function useDocument(id, selector, isEqual = equal) {
  const kit = useFlushline();
  const store = kit.store(id);
  const sub = useCallback((fn) => store.subscribe(fn), [store]);
  const memo = useRef(null);
  const select = selector || identity;
  const getSnapshot = () => {
    const snap = store.snap;
    const m = memo.current;
    if (m && m.snap === snap && m.select === select) return m.out;
    const state = snap.state === null ? null : select(snap.state);
    if (m && selector && m.store === store && isEqual(m.out.state, state) && m.out.status === snap.status
      && m.out.pending === snap.pending && m.out.canUndo === snap.canUndo && m.out.canRedo === snap.canRedo) {
      memo.current = { ...m, snap, select };
      return m.out;
    }
    const out = { ...snap, state };
    memo.current = { snap, select, out, store };
    return out;
  };
  const snap = useSyncExternalStore(sub, getSnapshot, getSnapshot);
  const api = useMemo(() => {
    const u = store.undo;
    const edit = {
      apply: (...c) => u.apply(...c),
      add: (p, v) => u.add(p, v), remove: (p) => u.remove(p), replace: (p, v) => u.replace(p, v),
      move: (f, p) => u.move(f, p), copy: (f, p) => u.copy(f, p), incr: (p, v) => u.incr(p, v),
      merge: (p, v) => u.merge(p, v), create: (p, v, k) => u.create(p, v, k),
    };
    return { handle: store.handle, edit, undo: () => u.undo(), redo: () => u.redo(), undoManager: u };
  }, [store]);
  return useMemo(() => ({ ...snap, ...api }), [snap, api]);
}

/**
 * Who is here (signals): {peers, setPresence(body), signal(body), typing(where, on)}.
 * peers: [{session, user, body, typing}] (this client included once it set a presence).
 */
export function usePresence(id) {
  const kit = useFlushline();
  const handle = kit.store(id).handle;
  const [peers, setPeers] = useState(() => handle.present);
  useEffect(() => {
    setPeers(handle.present);
    return kit.client.on('presence', (ev) => { if (ev.doc === id) setPeers(ev.peers); });
  }, [kit, id, handle]);
  return useMemo(() => ({
    peers,
    me: kit.client.session,
    setPresence: (body) => handle.setPresence(body),
    signal: (body) => handle.signal(body),
    typing: (where, on = true) => handle.signal({ session: kit.client.session, typing: on, where }),
  }), [peers, handle, kit]);
}

/**
 * The document's history over HTTP (history.js): {status, items, error, load(fromVersion,
 * limit), at(version)}. status: 'idle' | 'loading' | 'ready' | 'unsupported' (a gateway
 * without history endpoints) | 'error'. at(version) resolves {version, state}.
 */
export function useHistory(id) {
  const kit = useFlushline();
  const [st, setSt] = useState({ status: 'idle', items: [], error: null });
  const alive = useRef(true);
  useEffect(() => { alive.current = true; return () => { alive.current = false; }; }, []);
  const load = useCallback(async (fromVersion = 1, limit = 100) => {
    setSt((s) => ({ ...s, status: 'loading' }));
    const r = await kit.history.page(id, { fromVersion, limit });
    if (!alive.current) return r;
    if (r.status === 'ok') setSt({ status: 'ready', items: r.items, next: r.next, error: null });
    else setSt({ status: r.status, items: [], error: r.reason });
    return r;
  }, [kit, id]);
  const at = useCallback((version) => kit.history.at(id, version), [kit, id]);
  return useMemo(() => ({ ...st, load, at }), [st, load, at]);
}
