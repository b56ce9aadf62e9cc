// SPDX-License-Identifier: Apache-2.0
import type { Command, CodeName } from './engine.js';
import { Editor } from './flushline.js';
import type { DocHandle } from './flushline.js';
import type { Value } from './codec.js';

/** The guarded inverse of a change: commands for one atomic flush, and the indexes of the
 *  `add`s that put back a removed map member (checked absent by the client before sending). */
export interface Inverse { commands: Command[]; absent: number[]; }
/** Why an undo or redo was refused: `test_failed` / `exists` / `path_not_found` when someone
 *  else changed it since, `empty` when there is nothing to undo, or the gateway's code. */
export interface Refusal { code: CodeName | 'exists' | 'empty'; reason: string; path?: string; index?: number; }
export type UndoResult = { ok: true } | ({ ok: false } & Refusal);

export function invert(state: { [key: string]: Value }, applied: Command[], id?: string): Inverse;
export function check(state: { [key: string]: Value }, inverse: Inverse, id?: string): Refusal | null;

export interface UndoEvents {
  change: { canUndo: boolean; canRedo: boolean; pending: number };
  refused: { kind: 'undo' | 'redo' } & Refusal;
}

export class UndoManager extends Editor {
  constructor(handle: DocHandle, opts?: { limit?: number });
  readonly handle: DocHandle;
  readonly canUndo: boolean;
  readonly canRedo: boolean;
  on<K extends keyof UndoEvents>(name: K, fn: (ev: UndoEvents[K]) => void): () => void;
  dispose(): void;
  /** An undoable change (queued like DocHandle.apply: shows at once, one flush per frame); the
   *  shorthands of Editor make undoable changes too. */
  apply(...commands: (Command | Command[])[]): void;
  undo(): Promise<UndoResult>;
  redo(): Promise<UndoResult>;
}
