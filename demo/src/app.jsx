// SPDX-License-Identifier: Apache-2.0
// The Flushline demo: a shared board (lists and cards: add, edit, move, delete, votes) built
// with the React bindings (@flushline/client/react). Who is here and who is typing
// (signals), undo and redo of your own changes (buttons, Ctrl+Z, Ctrl+Shift+Z / Ctrl+Y),
// rejected changes explained, each card's author, the version and the connection state, and a
// history slider: the board at any past version and who changed what (the gateway's history
// endpoints). Rules: demo/rules.json (authors own their cards, votes go up by one, at most
// 200 cards, the server writes `by` and `at`) is what `scripts/up` puts in force for the
// prefix demo/board; for a document under the prefix given by `rules` (default demo/board)
// the app predicts it on the optimistic state, so a change it forbids is refused on the spot,
// never sent, and shown under "Refused changes" next to the refusals that come from the server.
// Open /?token=JWT[&doc=tenant/board][&rules=prefix]. Built by client/js/scripts/build-web.mjs into
// demo/dist/app.js (scripts/js-test and scripts/up run it; nothing is bundled at run time).
//
// Board state: {lists: {key: {title, pos}}, cards: {key: {title, list, pos, by, votes}}}.
// Every edit is a keyed map command (no array indices), so concurrent edits compose:
// an edit of a card someone deleted is rejected alone (path_not_found) and vanishes.
import { useEffect, useMemo, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { Client, pointer, stringifyJSON, parseJSON, codeName } from '../../client/js/src/flushline.js';
import { compileRules } from '../../client/js/src/rules.js';
import { FlushlineProvider, useDocument, useHistory, usePresence, useStatus } from '../../client/js/src/react.js';

const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
const docId = params.get('doc') || 'demo/board';
const rulesPrefix = params.get('rules') ?? 'demo/board';
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
const client = new Client({ url: wsUrl, token, name: 'flushline-demo/0.2.0' });
const board = client.subscribe(docId);

// The rule set the server has in force for docId's prefix, predicted locally (setRules).
const rulesReady = !rulesPrefix || !docId.startsWith(rulesPrefix) ? Promise.resolve(false)
  : fetch('rules.json').then((r) => r.text()).then((text) => {
    board.setRules(compileRules(parseJSON(text)));
    return true;
  }).catch((e) => { console.warn('flushline demo: no rules predicted:', e); return false; });

const byPos = (m) => Object.entries(m || {}).sort((a, b) => (a[1].pos - b[1].pos) || (a[0] < b[0] ? -1 : 1));
const nextPos = () => Date.now() + Math.random();
const stats = { renders: 0 };

// The first snapshot: lists and cards maps and three lists, once (not undoable: setup).
let initialised = false;
client.on('change', ({ doc, source }) => {
  if (doc !== docId || source !== 'snapshot' || initialised || !board.state) return;
  initialised = true;
  board.merge('/lists', {});
  board.merge('/cards', {});
  if (!board.state.lists || Object.keys(board.state.lists).length === 0) {
    [['todo', 'To do'], ['doing', 'Doing'], ['done', 'Done']].forEach(([k, title], i) => board.merge(pointer('lists', k), { title, pos: i + 1 }));
  }
});

// The board's actions: undoable edits through the document's undo manager.
function makeActions(edit) {
  return {
    addList(title) { return edit.create('/lists', { title, pos: nextPos() }); },
    addCard(list, title) { return edit.create('/cards', { title, list, pos: nextPos(), by: client.user || '?', votes: 0 }); },
    editCard(key, title) { edit.replace(pointer('cards', key, 'title'), title); },
    moveCard(key, list) {
      edit.apply({ op: 'replace', path: pointer('cards', key, 'list'), value: list },
        { op: 'replace', path: pointer('cards', key, 'pos'), value: nextPos() });
    },
    vote(key) { edit.incr(pointer('cards', key, 'votes'), 1); },
    deleteCard(key) { edit.remove(pointer('cards', key)); },
  };
}

// "is typing" signals: at most one a second while typing, and one when it stops.
let lastTyping = 0;
function typing(where, on) {
  const now = Date.now();
  if (on && now - lastTyping < 1000) return;
  lastTyping = on ? now : 0;
  board.signal({ session: client.session, typing: on, where });
}

function Header({ doc }) {
  const status = useStatus();
  return (
    <header>
      <h1>Flushline board</h1>
      <span className="doc" id="doc">{docId}</span>
      <span className="pill" id="status" data-state={status}>{status}</span>
      <span className="version" id="version">v{doc.version}</span>
      <span className="pending" id="pending">{doc.pending ? `${doc.pending} pending` : 'all saved'}</span>
      <span className="tools">
        <button id="undo" title="Undo (Ctrl+Z)" disabled={!doc.canUndo} onClick={() => doc.undo()}>↶ Undo</button>
        <button id="redo" title="Redo (Ctrl+Shift+Z)" disabled={!doc.canRedo} onClick={() => doc.redo()}>↷ Redo</button>
      </span>
      <span className="me" id="me">{client.user ? `signed in as ${client.user}` : ''}</span>
    </header>
  );
}

function People() {
  const { peers, me } = usePresence(docId);
  const typers = [...new Set(peers.filter((p) => p.typing && p.session !== me).map((p) => p.user))];
  return (
    <section className="people">
      <span className="label">Here:</span>{' '}
      <span id="people">{peers.map((p) => (
        <span key={p.session} className="person" data-user={p.user}>{p.session === me ? `${p.user} (you)` : p.user}</span>))}
      </span>
      <span id="typing" className="typing">{typers.length ? `${typers.join(', ')} typing…` : ''}</span>
    </section>
  );
}

function Card({ k, card, lists, listKey, actions, pending }) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState('');
  const i = lists.indexOf(listKey);
  const stop = () => { setEditing(false); typing(k, false); };
  return (
    <div className={`card${pending ? ' pending' : ''}`} data-card={k}>
      {editing
        ? <input autoFocus value={draft} data-fid={`edit-${k}`} onChange={(e) => setDraft(e.target.value)} onBlur={stop}
          onKeyDown={(e) => {
            if (e.key === 'Enter') { actions.editCard(k, draft); stop(); }
            else if (e.key === 'Escape') stop();
            else typing(k, true);
          }} />
        : <div className="title" title="click to edit" onClick={() => { setDraft(String(card.title ?? '')); setEditing(true); }}>{String(card.title ?? '')}</div>}
      <div className="meta">
        <span className="by">by {card.by ?? '?'}</span>
        <button className="vote" title="vote" onClick={() => actions.vote(k)}>▲ {String(card.votes ?? 0)}</button>
        <button className="left" title="move left" disabled={i <= 0} onClick={() => i > 0 && actions.moveCard(k, lists[i - 1])}>◀</button>
        <button className="right" title="move right" onClick={() => i < lists.length - 1 && actions.moveCard(k, lists[i + 1])}>▶</button>
        <button className="delete" title="delete" onClick={() => actions.deleteCard(k)}>✕</button>
      </div>
    </div>
  );
}

function AddCard({ listKey, actions }) {
  const [text, setText] = useState('');
  return (
    <form onSubmit={(e) => { e.preventDefault(); if (text.trim()) actions.addCard(listKey, text.trim()); setText(''); }}>
      <input name="title" placeholder="Add a card" autoComplete="off" value={text} onChange={(e) => setText(e.target.value)} />
      <button>Add</button>
    </form>
  );
}

// Keys of cards with commands not yet acknowledged.
function pendingCards() {
  const keys = new Set();
  const note = (c) => { const m = /^\/cards\/([^/]+)/.exec(c.path); if (m) keys.add(m[1]); };
  for (const f of board.pending) f.commands.forEach(note);
  board.queued.forEach(note);
  return keys;
}

function Board({ doc, actions }) {
  stats.renders++;
  const s = doc.state || {};
  const lists = byPos(s.lists);
  const listKeys = lists.map(([k]) => k);
  const cards = byPos(s.cards);
  const pend = pendingCards();
  return (
    <main id="board">
      {lists.map(([lk, list]) => (
        <div className="list" data-list={lk} key={lk}>
          <h3>{String(list.title ?? lk)}</h3>
          {cards.filter(([, c]) => c.list === lk).map(([ck, c]) => (
            <Card key={ck} k={ck} card={c} lists={listKeys} listKey={lk} actions={actions} pending={pend.has(ck)} />))}
          <AddCard listKey={lk} actions={actions} />
        </div>))}
    </main>
  );
}

// What was refused: a command the predicted rules refused before sending, a rejected
// command of ours (a rule_violation names its rule) or an undo / redo that someone else's
// change blocks.
function useFeedback(doc) {
  const [items, setItems] = useState([]);
  useEffect(() => {
    const add = (text) => setItems((xs) => [...xs.slice(-4), { text, at: Date.now(), id: Math.random() }]);
    const offs = [
      client.on('outcome', ({ doc: d, outcome, commands, tag }) => {
        if (d !== docId || tag === 'undo' || tag === 'redo') return;
        (outcome.results || []).forEach((r, i) => {
          const code = codeName(r.code);
          if (code !== 'ok' && code !== 'aborted') {
            add(`rejected: ${commands?.[i]?.op ?? ''} ${commands?.[i]?.path ?? ''}: ${code}${r.rule ? ` (${r.rule})` : ''}`);
          }
        });
      }),
      client.on('refused', ({ doc: d, command, rule }) => {
        if (d === docId) add(`refused here, not sent: ${command.op} ${command.path}: ${rule}`);
      }),
      client.on('nack', ({ doc: d, code, reason, retrying }) => { if (d === docId && !retrying) add(`refused by the gateway: ${code} ${reason ?? ''}`); }),
      doc.undoManager.on('refused', ({ kind, reason }) => add(`${kind} refused: ${reason}`)),
    ];
    return () => offs.forEach((off) => off());
  }, [doc.undoManager]);
  return [items, () => setItems([])];
}

// The history slider: the board at any past version (GET /v1/docs/{id}?version=V, through
// useHistory's at()) in place of the live one, read-only, and who changed what around it
// (GET /v1/docs/{id}/history). Moving the slider to the newest version goes back to live.
function useHistorySlider(doc) {
  const history = useHistory(docId);
  const [want, setWant] = useState(null); // the version asked for; null: live
  const [past, setPast] = useState(null); // {version, state} shown, or {version, error}
  const { at, load } = history;
  useEffect(() => {
    if (want === null) { setPast(null); window.demo.past = null; return undefined; }
    let live = true;
    const t = setTimeout(async () => {
      const [r] = await Promise.all([at(want), load(Math.max(1, want - 3), 6)]);
      if (!live) return;
      const p = r.status === 'ok' ? { version: r.version, state: r.state } : { version: want, error: r.reason };
      window.demo.past = p;
      setPast(p);
    }, 120); // while the slider moves, ask for where it stops
    return () => { live = false; clearTimeout(t); };
  }, [want, at, load]);
  const go = (v) => setWant(v === null || v >= doc.version ? null : v);
  return { want, past, go, items: history.items };
}

function HistoryPanel({ doc, slider }) {
  const { want, past, go, items } = slider;
  const shown = want ?? doc.version;
  return (
    <section id="history" className={want === null ? '' : 'past'}>
      <h2>History {want === null ? null : <button id="history-live" className="link" onClick={() => go(null)}>back to live</button>}</h2>
      <input id="history-slider" type="range" min="0" max={doc.version} value={shown} aria-label="version"
        onChange={(e) => go(Number(e.target.value))} />
      <p className="muted" id="history-version">
        {want === null ? `live: v${doc.version}` : `v${want} of v${doc.version}${past && past.version === want && !past.error ? '' : '…'}`}
      </p>
      {past?.error ? <p id="history-error" className="error">{past.error}</p> : null}
      {want === null ? null : (
        <ol id="history-changes">{items.map((it) => (
          <li key={it.version} data-version={it.version}
            className={it.version - it.commands.length < want && want <= it.version ? 'here' : ''}>
            v{it.version} <b>{it.user || '?'}</b>: {it.commands.map((c) => `${c.op} ${c.path.replace(/^\/cards\/[^/]+/, '/cards/…')}`).join(', ')}
          </li>))}
        </ol>)}
    </section>
  );
}

// A past board, read-only: the lists and cards of that version.
function PastBoard({ past }) {
  const s = past.state || {};
  const cards = byPos(s.cards);
  return (
    <main id="past-board" className="past" data-version={past.version}>
      <p className="banner">The board at v{past.version} (read-only)</p>
      {byPos(s.lists).map(([lk, list]) => (
        <div className="list" data-list={lk} key={lk}>
          <h3>{String(list.title ?? lk)}</h3>
          {cards.filter(([, c]) => c.list === lk).map(([ck, c]) => (
            <div className="card" data-card={ck} key={ck}>
              <div className="title">{String(c.title ?? '')}</div>
              <div className="meta"><span className="by">by {c.by ?? '?'}</span><span className="votes">▲ {String(c.votes ?? 0)}</span></div>
            </div>))}
        </div>))}
    </main>
  );
}

// The last changes, who made them (its own state: deltas never re-render the board).
function Activity() {
  const [lines, setLines] = useState([]);
  useEffect(() => {
    let buf = [];
    let timer = null;
    const off = client.on('delta', ({ doc: d, delta }) => {
      if (d !== docId) return;
      const what = delta.commands.map((c) => `${c.op} ${c.path.replace(/^\/cards\/[^/]+/, '/cards/…')}`).join(', ');
      buf.push(`v${delta.version} ${delta.user}: ${what}`);
      if (buf.length > 12) buf = buf.slice(-12);
      if (!timer) timer = setTimeout(() => { timer = null; const b = buf; setLines((a) => [...a, ...b].slice(-12)); buf = []; }, 250);
    });
    return () => { off(); clearTimeout(timer); };
  }, []);
  return <ol id="activity">{lines.slice().reverse().map((a, i) => <li key={`${lines.length}-${i}`}>{a}</li>)}</ol>;
}

function App() {
  const doc = useDocument(docId);
  const actions = useMemo(() => makeActions(doc.edit), [doc.edit]);
  const [feedback, clearFeedback] = useFeedback(doc);
  const slider = useHistorySlider(doc);
  const [error, setError] = useState(token ? '' : 'no token: open this page as /?token=<JWT> (scripts/up prints the URL)');
  const docRef = useRef(doc);
  docRef.current = doc;
  useEffect(() => {
    const offs = [
      client.on('status', ({ state, closeCode }) => {
        if (state === 'stopped' && closeCode) setError(`connection refused (close ${closeCode}): check the token in the URL`);
      }),
      client.on('welcome', () => board.setPresence({ name: client.user })),
    ];
    const onKey = (e) => {
      if (!(e.ctrlKey || e.metaKey) || ['INPUT', 'TEXTAREA'].includes(document.activeElement?.tagName)) return;
      const k = e.key.toLowerCase();
      if (k === 'z' && !e.shiftKey) { e.preventDefault(); docRef.current.undo(); }
      else if ((k === 'z' && e.shiftKey) || k === 'y') { e.preventDefault(); docRef.current.redo(); }
    };
    window.addEventListener('keydown', onKey);
    return () => { offs.forEach((off) => off()); window.removeEventListener('keydown', onKey); };
  }, []);
  window.demo.actions = actions;
  return (
    <>
      <Header doc={doc} />
      <People />
      {slider.past && !slider.past.error && slider.want !== null
        ? <PastBoard past={slider.past} /> : <Board doc={doc} actions={actions} />}
      <aside>
        <form id="new-list" onSubmit={(e) => {
          e.preventDefault();
          const input = e.target.elements.title;
          if (input.value.trim()) actions.addList(input.value.trim());
          input.value = '';
        }}><input name="title" placeholder="New list" autoComplete="off" /><button>Add list</button></form>
        <section id="feedback" className={feedback.length ? 'has' : ''}>
          <h2>Refused changes {feedback.length ? <button className="link" onClick={clearFeedback}>clear</button> : null}</h2>
          <ol>{feedback.map((f) => <li key={f.id}>{f.text}</li>)}</ol>
          {feedback.length ? null : <p className="muted">None: every change of yours applied.</p>}
        </section>
        <HistoryPanel doc={doc} slider={slider} />
        <h2>Activity</h2>
        <Activity />
      </aside>
      {error ? <p id="error" className="error">{error}</p> : null}
    </>
  );
}

// For the browser tests and the console: the client, the board handle, the actions (set
// by App) and render counts of the Board component.
// past: the version the history slider shows ({version, state}), null when live.
// rulesReady: resolves true once the rule set is predicted (false: none for this document).
window.demo = { client, board, actions: null, stringifyJSON, stats, Client, docId, past: null, rulesReady };
client.connect();
window.addEventListener('pagehide', () => board.signal({ session: client.session, bye: true }));
createRoot(document.getElementById('root')).render(<FlushlineProvider client={client}><App /></FlushlineProvider>);
