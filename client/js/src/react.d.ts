// SPDX-License-Identifier: Apache-2.0
import type { ReactNode, ReactElement } from 'react';
import type { Client, DocHandle, Editor, State, Peer } from './flushline.js';
import type { Value } from './codec.js';
import type { UndoManager, UndoResult } from './undo.js';
import type { HistoryClient, HistoryItem, HistoryAt } from './history.js';

export type DocState = { [key: string]: Value };

export class FlushlineKit {
  constructor(client: Client, opts?: { maxIntervalMs?: number; history?: HistoryClient | { baseUrl?: string; token?: string } });
  readonly client: Client;
  readonly maxIntervalMs: number;
  /** Notifications sent to components so far (all documents). */
  readonly notifications: number;
}

export interface FlushlineProviderProps {
  client: Client;
  /** The longest gap between renders of a document under a storm of changes (1000 ms). */
  maxIntervalMs?: number;
  history?: HistoryClient | { baseUrl?: string; token?: string };
  children?: ReactNode;
}
export function FlushlineProvider(props: FlushlineProviderProps): ReactElement;
export function useFlushline(): FlushlineKit;
export function useClient(): Client;
export function useStatus(): State;

/** The edit API of a document: the command shorthands of DocHandle. */
export type DocEdit = Editor;

export interface DocumentView<S> {
  /** The optimistic state (or the selected slice); null before the first snapshot. */
  state: S | null;
  version: number;
  status: State;
  /** Flushes not yet acknowledged. */
  pending: number;
  canUndo: boolean;
  canRedo: boolean;
  handle: DocHandle;
  /** Undoable edits. */
  edit: DocEdit;
  undo(): Promise<UndoResult>;
  redo(): Promise<UndoResult>;
  undoManager: UndoManager;
}
export function useDocument(id: string): DocumentView<DocState>;
export function useDocument<S>(id: string, selector: (state: DocState) => S, isEqual?: (a: S | null, b: S | null) => boolean): DocumentView<S>;

export interface PresenceView {
  peers: Peer[];
  /** This client's session id. */
  me: string;
  setPresence(body: Value): void;
  signal(body: Value): boolean;
  typing(where: string, on?: boolean): boolean;
}
export function usePresence(id: string): PresenceView;

export interface HistoryView {
  status: 'idle' | 'loading' | 'ready' | 'unsupported' | 'error';
  items: HistoryItem[];
  next?: number;
  error: string | null;
  load(fromVersion?: number, limit?: number): Promise<unknown>;
  at(version: number): Promise<HistoryAt>;
}
export function useHistory(id: string): HistoryView;
