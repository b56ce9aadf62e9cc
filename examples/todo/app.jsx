// SPDX-License-Identifier: Apache-2.0
// A shared todo list with the React bindings: create, toggle, delete, per-user counts,
// undo. Open /dist/todo.html?token=JWT[&doc=tenant/todos] on a gateway serving demo/.
// State: {items: {key: {text, done, by}}}; every edit is a keyed map command.
import { useState } from 'react';
import { createRoot } from 'react-dom/client';
import { Client, pointer } from '../../client/js/src/flushline.js';
import { FlushlineProvider, useDocument, useStatus, useClient } from '../../client/js/src/react.js';

const params = new URLSearchParams(location.search);
const docId = params.get('doc') || 'demo/todos';
const client = new Client({ url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`, token: params.get('token') || '' });
// the items map exists before the first create (merge on a missing key makes it, else no-op)
client.on('change', ({ doc, source, handle }) => { if (doc === docId && source === 'snapshot' && !handle.state.items) handle.merge('/items', {}); });

function counts(items) {
  const per = {};
  for (const it of Object.values(items)) {
    const c = (per[it.by] ??= { open: 0, done: 0 });
    if (it.done) c.done++; else c.open++;
  }
  return Object.entries(per).sort();
}

function Todos() {
  const status = useStatus();
  const me = useClient().user;
  const { state, version, edit, undo, canUndo } = useDocument(docId);
  const [text, setText] = useState('');
  if (!state || !state.items) return <p className="muted">{status}…</p>;
  const items = Object.entries(state.items).sort(([a], [b]) => (a < b ? -1 : 1));
  const add = (e) => {
    e.preventDefault();
    if (text.trim()) edit.create('/items', { text: text.trim(), done: false, by: me || '?' });
    setText('');
  };
  return (
    <main>
      <header>
        <h1>Todos</h1>
        <span id="status" data-state={status}>{status}</span> <span id="version">v{version}</span>
        <button id="undo" disabled={!canUndo} onClick={() => undo()}>Undo</button>
      </header>
      <form id="add" onSubmit={add}>
        <input name="text" placeholder="What needs doing?" value={text} onChange={(e) => setText(e.target.value)} autoComplete="off" />
        <button>Add</button>
      </form>
      <ul id="items">
        {items.map(([k, it]) => (
          <li key={k} data-item={k} className={it.done ? 'done' : ''}>
            <label>
              <input type="checkbox" className="toggle" checked={!!it.done}
                onChange={() => edit.replace(pointer('items', k, 'done'), !it.done)} />
              <span className="text">{String(it.text)}</span>
            </label>
            <span className="by">{it.by}</span>
            <button className="delete" title="delete" onClick={() => edit.remove(pointer('items', k))}>✕</button>
          </li>))}
      </ul>
      <table id="counts">
        <thead><tr><th>who</th><th>open</th><th>done</th></tr></thead>
        <tbody>{counts(state.items).map(([who, c]) => (
          <tr key={who} data-user={who}><td>{who}</td><td className="open">{c.open}</td><td className="done">{c.done}</td></tr>))}
        </tbody>
      </table>
    </main>
  );
}

window.todo = { client, docId };
client.connect();
createRoot(document.getElementById('root')).render(<FlushlineProvider client={client}><Todos /></FlushlineProvider>);
