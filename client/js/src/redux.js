// SPDX-License-Identifier: Apache-2.0
// @flushline/client/redux: a document mirrored into a Redux store slice, and an allow-list
// of action types that become flushes. No dependency on redux itself: a middleware and a
// reducer, usable with createStore/configureStore alike.
//
//   const fl = bindDocument(client, 'acme/board', {
//     commands: { 'card/voted': (a) => [{ op: 'incr', path: `/cards/${a.key}/votes`, value: 1 }] },
//   });
//   const store = createStore(combineReducers({ board: fl.reducer, ui }), applyMiddleware(fl.middleware));
//
// A dispatched action whose type is in `commands` becomes a flush (its commands are queued
// on the document; they show in the slice at once, optimistically) and then goes on down the
// chain like any action; every other action stays local. The slice is
// {state, version, status, pending}: the client's optimistic view (confirmed state plus this
// client's unacknowledged commands), rebased on every remote change and rolled back when a
// command is rejected, exactly as the client does it (the binding only mirrors it).
//
// Actions the binding dispatches, so that reducers and middleware see remote changes too:
//   flushline/remote   {doc, version, user, seq, commands}  one per applied change by
//                       someone else (each delta not from this client), before the sync;
//   flushline/sync     {doc, state, version, status, pending, source}  the slice's new value
//                       (source: 'local' | 'remote' | 'snapshot' | 'outcome' | 'nack');
//   flushline/rejected {doc, seq, code, results, commands}  a flush of ours with a rejected
//                       command (its effect is already rolled back in the next sync);
//   flushline/status   {state, closeCode}  the connection state;
//   flushline/undone, flushline/refused  {doc, kind, ok, code?, reason?}  after the undo
//                       and redo actions below.
// Actions the binding handles itself (not passed on): flushline/undo {doc}, flushline/redo
// {doc} (undo.js; only listed actions' changes are undoable).

import { UndoManager } from './undo.js';

export const REMOTE = 'flushline/remote';
export const SYNC = 'flushline/sync';
export const REJECTED = 'flushline/rejected';
export const STATUS = 'flushline/status';
export const UNDO = 'flushline/undo';
export const REDO = 'flushline/redo';
export const UNDONE = 'flushline/undone';
export const REFUSED = 'flushline/refused';

/**
 * Binds one document.
 * @param {import('./flushline.js').Client} client
 * @param {string} doc
 * @param {{commands: Record<string, (action: any, state: any) => object[]>}} opts
 *   commands: the allow-list: action type -> (action, the store's state before it) -> the
 *   commands of its flush (an empty list sends nothing).
 * @returns {{reducer, middleware, handle, undo}}
 */
export function bindDocument(client, doc, { commands = {} } = {}) {
  const handle = client.subscribe(doc);
  const undo = handle.undoManager || new UndoManager(handle);
  const initial = { state: handle.state, version: handle.version, status: client.state, pending: handle.pendingCount };

  function reducer(slice = initial, action) {
    if (action.doc !== doc) return slice;
    if (action.type === SYNC) {
      return { state: action.state, version: action.version, status: action.status, pending: action.pending };
    }
    return slice;
  }

  const offs = [];
  const middleware = (api) => {
    const sync = (source) => api.dispatch({
      type: SYNC, doc, state: handle.state, version: handle.version, status: client.state, pending: handle.pendingCount, source,
    });
    offs.push(client.on('delta', ({ doc: d, delta, mine }) => {
      if (d !== doc || mine) return;
      api.dispatch({ type: REMOTE, doc, version: Number(delta.version), user: delta.user, seq: Number(delta.seq), commands: delta.commands });
    }));
    offs.push(client.on('change', ({ doc: d, source }) => { if (d === doc) sync(source); }));
    offs.push(client.on('status', ({ state, closeCode }) => {
      api.dispatch({ type: STATUS, state, closeCode });
      sync('status');
    }));
    offs.push(client.on('outcome', ({ doc: d, outcome, commands: cmds }) => {
      if (d !== doc || !outcome.results || outcome.results.every((r) => Number(r.code) === 0)) return;
      api.dispatch({ type: REJECTED, doc, seq: Number(outcome.seq), code: outcome.codeName, results: outcome.results, commands: cmds });
    }));
    queueMicrotask(() => sync('bind'));
    const run = async (kind) => {
      const r = await (kind === 'undo' ? undo.undo() : undo.redo());
      api.dispatch({ type: r.ok ? UNDONE : REFUSED, doc, kind, ...r });
    };
    return (next) => (action) => {
      if (action && action.doc === doc && (action.type === UNDO || action.type === REDO)) {
        run(action.type === UNDO ? 'undo' : 'redo');
        return undefined;
      }
      const map = action && Object.prototype.hasOwnProperty.call(commands, action.type) ? commands[action.type] : null;
      if (!map) return next(action);
      const cmds = map(action, api.getState());
      const result = next(action);
      // the commands go after reducers saw the action (so a 'sync' follows it)
      if (cmds && cmds.length) undo.apply(cmds);
      return result;
    };
  };
  /** Stops mirroring (the listeners on the client and the undo manager go). */
  middleware.dispose = () => { for (const off of offs.splice(0)) off(); undo.dispose(); };
  return { reducer, middleware, handle, undo };
}
