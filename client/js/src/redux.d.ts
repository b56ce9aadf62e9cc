// SPDX-License-Identifier: Apache-2.0
import type { Client, DocHandle, State } from './flushline.js';
import type { Command } from './engine.js';
import type { Value } from './codec.js';
import type { UndoManager } from './undo.js';

export const REMOTE: 'flushline/remote';
export const SYNC: 'flushline/sync';
export const REJECTED: 'flushline/rejected';
export const STATUS: 'flushline/status';
export const UNDO: 'flushline/undo';
export const REDO: 'flushline/redo';
export const UNDONE: 'flushline/undone';
export const REFUSED: 'flushline/refused';

export interface DocSlice { state: { [key: string]: Value } | null; version: number; status: State; pending: number; }

export type FlushlineAction =
  | { type: 'flushline/remote'; doc: string; version: number; user: string; seq: number; commands: Command[] }
  | { type: 'flushline/sync'; doc: string; state: { [key: string]: Value } | null; version: number; status: State; pending: number; source: string }
  | { type: 'flushline/rejected'; doc: string; seq: number; code: string; results: { code: number; version?: number; key?: string }[]; commands?: Command[] }
  | { type: 'flushline/status'; state: State; closeCode: number }
  | { type: 'flushline/undone' | 'flushline/refused'; doc: string; kind: 'undo' | 'redo'; ok: boolean; code?: string; reason?: string };

interface AnyAction { type: string; [extra: string]: any }
interface MiddlewareAPI { dispatch(action: any): any; getState(): any; }
export type FlushlineMiddleware = ((api: MiddlewareAPI) => (next: (action: unknown) => unknown) => (action: unknown) => unknown) & { dispose(): void };

export interface Binding {
  reducer(slice: DocSlice | undefined, action: AnyAction): DocSlice;
  middleware: FlushlineMiddleware;
  handle: DocHandle;
  undo: UndoManager;
}

export function bindDocument(client: Client, doc: string, opts: {
  /** The allow-list: action type -> the commands of its flush (given the action and the store's state before it). */
  commands: Record<string, (action: any, state: any) => Command[] | null | undefined>;
}): Binding;
