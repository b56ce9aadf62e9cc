// SPDX-License-Identifier: Apache-2.0
// The Flushline demo: a shared board (lists and cards: add, edit, move, delete, votes),
// who is here and who is typing (signals), each card's author, the document version and
// the connection state. Open /?token=JWT[&doc=tenant/board].
//
// Board state: {lists: {key: {title, pos}}, cards: {key: {title, list, pos, by, votes}}}.
// Every edit is a keyed map command (no array indices), so concurrent edits compose:
// an edit of a card someone deleted is rejected alone (path_not_found) and vanishes.
import { Client, pointer, stringifyJSON } from './lib/flushline.js';

const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
const docId = params.get('doc') || 'demo/board';
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;

const client = new Client({ url: wsUrl, token, name: 'flushline-demo/0.1.0' });
const board = client.subscribe(docId);
const activity = [];
const drafts = new Map(); // data-fid -> text being typed
let editing = null;       // card key whose title is being edited
let pressing = false;     // a pointer is down on the board (see draw)
let lastTyping = 0;
let initialised = false;

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
};

// ------------------------------------------------------------------ actions

const byPos = (m) => Object.entries(m || {}).sort((a, b) => (a[1].pos - b[1].pos) || (a[0] < b[0] ? -1 : 1));
const nextPos = () => Date.now() + Math.random();

function ensureBoard() {
  const s = board.state;
  if (!s || initialised) return;
  initialised = true;
  // merge on a missing key creates it and leaves an existing one alone
  board.merge('/lists', {});
  board.merge('/cards', {});
  if (!s.lists || Object.keys(s.lists).length === 0) {
    [['todo', 'To do'], ['doing', 'Doing'], ['done', 'Done']].forEach(([k, title], i) =>
      board.merge(pointer('lists', k), { title, pos: i + 1 }));
  }
}

const actions = {
  addList(title) { return board.create('/lists', { title, pos: nextPos() }); },
  addCard(list, title) {
    return board.create('/cards', { title, list, pos: nextPos(), by: client.user || '?', votes: 0 });
  },
  editCard(key, title) { board.replace(pointer('cards', key, 'title'), title); },
  moveCard(key, list) {
    board.apply({ op: 'replace', path: pointer('cards', key, 'list'), value: list },
      { op: 'replace', path: pointer('cards', key, 'pos'), value: nextPos() });
  },
  vote(key) { board.incr(pointer('cards', key, 'votes'), 1); },
  deleteCard(key) { board.remove(pointer('cards', key)); },
};

function typing(where, on) {
  const now = Date.now();
  if (on && now - lastTyping < 1000) return;
  lastTyping = on ? now : 0;
  board.signal({ session: client.session, typing: on, where });
}

// ------------------------------------------------------------------ rendering

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; draw(); });
}

function draw() {
  const focus = document.activeElement?.dataset?.fid;
  const sel = focus ? [document.activeElement.selectionStart, document.activeElement.selectionEnd] : null;
  $('doc').textContent = docId;
  $('status').textContent = client.state;
  $('status').dataset.state = client.state;
  $('version').textContent = `v${board.version}`;
  $('pending').textContent = board.pendingCount ? `${board.pendingCount} pending` : 'all saved';
  $('me').textContent = client.user ? `signed in as ${client.user}` : '';

  const peers = board.present;
  $('people').replaceChildren(...peers.map((p) => el('span', { class: 'person', dataset: { user: p.user } },
    p.session === client.session ? `${p.user} (you)` : p.user)));
  const typers = peers.filter((p) => p.typing && p.session !== client.session).map((p) => p.user);
  $('typing').textContent = typers.length ? `${[...new Set(typers)].join(', ')} typing…` : '';

  // While a card title is being edited the board is left as it is (rebuilding it would
  // take the input away); it catches up when the edit ends. So while a pointer is down on
  // it: a button rebuilt between press and release would never see the click (the release
  // lands on the new button), and a vote made as a change arrived would be lost.
  const active = document.activeElement;
  if (pressing || (editing && active && active.dataset?.fid === `edit-${editing}` && document.getElementById('board').contains(active))) {
    $('activity').replaceChildren(...activity.slice(-12).reverse().map((a) => el('li', {}, a)));
    return;
  }
  const s = board.state || {};
  const pendingKeys = pendingCards();
  const cols = byPos(s.lists).map(([lk, list]) => {
    const cards = byPos(s.cards).filter(([, c]) => c.list === lk).map(([ck, c]) => cardView(ck, c, lk, s, pendingKeys));
    const fid = `new-${lk}`;
    const form = el('form', { onsubmit: (e) => {
      e.preventDefault();
      const input = e.target.elements.title;
      if (input.value.trim()) actions.addCard(lk, input.value.trim());
      drafts.delete(fid); input.value = '';
    } }, el('input', { name: 'title', placeholder: 'Add a card', autocomplete: 'off', dataset: { fid } }), el('button', {}, 'Add'));
    return el('div', { class: 'list', dataset: { list: lk } }, el('h3', {}, String(list.title ?? lk)), ...cards, form);
  });
  $('board').replaceChildren(...cols);
  for (const input of document.querySelectorAll('[data-fid]')) {
    if (drafts.has(input.dataset.fid)) input.value = drafts.get(input.dataset.fid);
    input.addEventListener('input', () => drafts.set(input.dataset.fid, input.value));
  }
  if (editing && !focus) document.querySelector(`[data-fid="edit-${CSS.escape(editing)}"]`)?.focus();
  if (focus) {
    const again = document.querySelector(`[data-fid="${CSS.escape(focus)}"]`);
    if (again) { again.focus(); if (sel && again.setSelectionRange) again.setSelectionRange(sel[0], sel[1]); }
  }
  $('activity').replaceChildren(...activity.slice(-12).reverse().map((a) => el('li', {}, a)));
}

function pendingCards() {
  const keys = new Set();
  for (const f of board.pending) for (const c of f.commands) { const m = /^\/cards\/([^/]+)/.exec(c.path); if (m) keys.add(m[1]); }
  for (const c of board.queued) { const m = /^\/cards\/([^/]+)/.exec(c.path); if (m) keys.add(m[1]); }
  return keys;
}

function cardView(key, c, listKey, s, pendingKeys) {
  const lists = byPos(s.lists).map(([k]) => k);
  const i = lists.indexOf(listKey);
  const fid = `edit-${key}`;
  const title = editing === key
    ? el('input', { value: drafts.get(fid) ?? String(c.title ?? ''), dataset: { fid },
      onkeydown: (e) => {
        if (e.key === 'Enter') { actions.editCard(key, e.target.value); editing = null; drafts.delete(fid); typing(key, false); render(); }
        else if (e.key === 'Escape') { editing = null; drafts.delete(fid); typing(key, false); render(); }
        else typing(key, true);
      },
      onblur: () => { if (editing === key) { editing = null; drafts.delete(fid); typing(key, false); render(); } } })
    : el('div', { class: 'title', title: 'click to edit', onclick: () => { editing = key; render(); } }, String(c.title ?? ''));
  return el('div', { class: `card${pendingKeys.has(key) ? ' pending' : ''}`, dataset: { card: key } },
    title,
    el('div', { class: 'meta' },
      el('span', { class: 'by' }, `by ${c.by ?? '?'}`),
      el('button', { class: 'vote', title: 'vote', onclick: () => actions.vote(key) }, `▲ ${c.votes ?? 0}`),
      el('button', { class: 'left', title: 'move left', disabled: i <= 0 ? '' : null, onclick: () => i > 0 && actions.moveCard(key, lists[i - 1]) }, '◀'),
      el('button', { class: 'right', title: 'move right', onclick: () => i < lists.length - 1 && actions.moveCard(key, lists[i + 1]) }, '▶'),
      el('button', { class: 'delete', title: 'delete', onclick: () => actions.deleteCard(key) }, '✕')));
}

// ------------------------------------------------------------------ wiring

// The click comes right after the release, before the next frame's rebuild.
$('board').addEventListener('pointerdown', () => { pressing = true; });
const released = () => { if (pressing) { pressing = false; render(); } };
window.addEventListener('pointerup', released, true);
window.addEventListener('pointercancel', released, true);

$('new-list').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = e.target.elements.title;
  if (input.value.trim()) actions.addList(input.value.trim());
  input.value = '';
});

client.on('status', ({ state, closeCode }) => {
  if (state === 'stopped' && closeCode) showError(`connection refused (close ${closeCode}): check the token in the URL`);
  render();
});
client.on('welcome', () => board.setPresence({ name: client.user }));
client.on('change', ({ source }) => { if (source === 'snapshot') ensureBoard(); render(); });
client.on('presence', render);
client.on('delta', ({ delta }) => {
  const what = delta.commands.map((c) => `${c.op} ${c.path.replace(/^\/cards\/[^/]+/, '/cards/…')}`).join(', ');
  activity.push(`v${delta.version} ${delta.user}: ${what}`);
  if (activity.length > 50) activity.shift();
});
client.on('error', ({ code, reason }) => console.warn('flushline', code, reason));

function showError(text) { $('error').textContent = text; $('error').hidden = false; }

if (!token) showError('no token: open this page as /?token=<JWT> (scripts/up prints the URL)');
client.connect();
window.addEventListener('pagehide', () => board.signal({ session: client.session, bye: true }));
render();

// For the browser tests and the console: the client, the board handle and the actions.
window.demo = { client, board, actions, stringifyJSON };
