// SPDX-License-Identifier: Apache-2.0
import type { Value } from './codec.js';
export type Op = 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test' | 'incr' | 'merge' | 'create';
export interface Command { op: Op; path: string; from?: string; value?: Value; key?: string; }
export type CodeName = 'ok' | 'path_not_found' | 'type_mismatch' | 'test_failed' | 'too_large' | 'invalid' |
  'forbidden' | 'version_mismatch' | 'gap' | 'aborted' | 'key_exists' | 'rule_violation' | string;
/** rule: the name of the rule a rule_violation broke (schemas/RULES.md). */
export interface Result { code: CodeName; version: number; key?: string; rule?: string; }
export interface Outcome {
  code: CodeName; duplicate: boolean; version_before: number; version_after: number;
  results: Result[]; applied: Command[]; chain: Uint8Array;
}
export interface Flush {
  client_id: Uint8Array; seq: number; base_version?: number; if_version?: number; atomic?: boolean; commands: Command[];
  /** The record context rules use: the user from the token and the record timestamp (ms). */
  user?: string; ts?: number;
}
/** A compiled rule set (rules.js compileRules). */
export interface CompiledRules { readonly defaultRole: string; }
/** The context of an optimistic apply under rules. */
export interface RulesContext { user?: string; role?: string; ts?: number; }
export interface EngineConfig { max_state_bytes?: number; max_depth?: number; max_dedup?: number; }
export const CODES: Record<string, number>;
export function codeName(n: number): string;
export const ZERO_CHAIN: Uint8Array;
export function parsePointer(p: string): string[] | null;
/** A pointer from unescaped tokens: pointer('cards', key, 'title'). */
export function pointer(...tokens: (string | number)[]): string;
export function chainHash(prev: Uint8Array, before: number, after: number, commands: Command[]): Uint8Array;
/** One document with the engine's semantics (schemas/ENGINE.md). */
export class Doc {
  constructor(id: string, opts?: { state?: { [key: string]: Value }; version?: number; chain?: Uint8Array; config?: EngineConfig });
  readonly id: string;
  state: { [key: string]: Value };
  version: number;
  chain: Uint8Array;
  copy(): Doc;
  digest(): Uint8Array;
  /** Applies a flush (dedup, if_version, atomic) and returns its outcome. */
  apply(flush: Flush): Outcome;
  /** Applies a delta's commands at version `before`; throws on any failure or chain mismatch. */
  applyApplied(before: number, commands: Command[], chain?: Uint8Array): void;
  /** Applies a rule set from now on (null: none); role '' means the set's default role. */
  setRules(rules: CompiledRules | null, role?: string): void;
  /** Applies commands optimistically (no dedup or chain); returns each command's code.
   * Under rules, ctx gives user, role and ts, and lastRules the rule each command broke. */
  applyLocal(commands: Command[], ctx?: RulesContext | null): CodeName[];
  lastRules?: (string | null)[];
}
// (typed for the package's every-export check, client/js/test/package.test.js)
export const CODE_NAMES: Record<number, string>;
export const DEFAULT_CONFIG: Required<EngineConfig>;
export function sizeOf(x: Value): number;
export function depthOf(x: Value): number;
export function escapeToken(t: string | number): string;
export function chainCommand(cmd: Command): Command;
export { Float } from './codec.js';
