// SPDX-License-Identifier: Apache-2.0
import type { Value } from './codec.js';
import type { Command, CompiledRules } from './engine.js';
export { Doc, pointer, codeName, CODES } from './engine.js';
export type { Command, Op, Outcome, Result } from './engine.js';
export { Float, float, parseJSON, stringifyJSON, equal, clone } from './codec.js';
export type { Value } from './codec.js';

export type State = 'connecting' | 'hello' | 'ready' | 'backoff' | 'stopped';
export const STATES: State[];
export const CLIENT_NAME: string;
/** Pacing margin: flushes are paced at this percentage of the welcome's rate (95). */
export const PACE_RATE_PCT: number;
export function newKey(): string;

export interface ClientOptions {
  /** ws://host:port/v1/ws; required unless urls is given */
  url?: string;
  /**
   * Failover: gateway addresses (replaces url when non-empty). The first connection goes to
   * the first; every reconnect goes to the next one, round robin. In the reconnect-now
   * classes (4200-4299, network errors) each address gets one immediate try before backing off.
   */
  urls?: string[];
  /** JWT; sent in hello */
  token: string;
  /** JSON text frames instead of msgpack binary frames */
  json?: boolean;
  /** WebSocket class (default globalThis.WebSocket) */
  WebSocket?: unknown;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** resend a flush with its seq when no outcome came within this long (10000) */
  ackTimeoutMs?: number;
  /** hello "client" */
  name?: string;
  /**
   * Pace flushes by a token bucket a margin inside the welcome's (PACE_RATE_PCT of its rate,
   * burst - 1, at least 1), so the gateway's rate limit is met rather than hit. Default true;
   * false sends as fast as possible (load tests of the limit).
   */
  pacing?: boolean;
  /** 16 bytes; random by default */
  clientId?: Uint8Array;
}

export interface Peer { session: string; user: string; body: Value; typing: boolean; }
export interface Delta {
  version: number; client_id: Uint8Array; seq: number; user: string; ts: number; commands: Command[]; chain: Uint8Array;
}

export interface Events {
  status: { state: State; closeCode: number };
  /** exp: the accepted token's exp (s since the epoch), leeway: the gateway's (s); it closes with 4004 at exp + leeway. Undefined from older gateways. */
  welcome: { user: string; limits: { max_frame: number; max_commands: number; max_subscriptions: number; rate: number; burst: number }; server: string; exp?: number; leeway?: number };
  change: { doc: string; state: { [key: string]: Value } | null; version: number; source: 'local' | 'remote' | 'snapshot' | 'outcome' | 'nack' | 'rules'; handle: DocHandle };
  delta: { doc: string; delta: Delta; mine: boolean; tag?: string };
  outcome: { doc: string; tag?: string; commands?: Command[]; outcome: { seq: number; code: number; codeName: string; version_before: number; version_after: number; dup?: boolean; results: { code: number; version?: number; key?: string; rule?: string }[] } };
  /** a command the rules predicted on the view (DocHandle.setRules) refused: dropped, never sent */
  refused: { doc: string; command: Command; code: 'rule_violation'; rule: string; local: true };
  /** retrying: the flush stays pending and goes again (after retryAfterMs, or held behind an
   *  earlier nacked flush of its document); false: dropped for good, or not about a pending flush */
  nack: { doc?: string; seq?: number; code: string; retryAfterMs?: number; reason: string; retrying: boolean };
  signal: { doc: string; from: string; body: Value };
  presence: { doc: string; peers: Peer[] };
  changed: { doc: string; version: number };
  error: { code: string; reason: string };
}

/** The command shorthands, one command each through apply(): DocHandle and UndoManager. */
export abstract class Editor {
  apply(...commands: (Command | Command[])[]): void;
  add(path: string, value: Value): void;
  remove(path: string): void;
  replace(path: string, value: Value): void;
  move(from: string, path: string): void;
  copy(from: string, path: string): void;
  incr(path: string, value?: number | bigint): void;
  merge(path: string, value: { [key: string]: Value }): void;
  /** Creates value under a new key (a random proposal unless given) and returns the key. */
  create(path: string, value: Value, key?: string): string;
}

export class DocHandle extends Editor {
  readonly id: string;
  /** The optimistic state: confirmed + pending commands; null before the first snapshot. */
  readonly state: { [key: string]: Value } | null;
  /** The confirmed (server) version. */
  readonly version: number;
  /** Flushes queued or sent and not yet acknowledged. */
  readonly pendingCount: number;
  readonly present: Peer[];
  test(path: string, value: Value): void;
  /**
   * Queues commands like apply(). tag: carried by the flush (and its 'outcome' and own
   * 'delta' events); atomic: a flush of their own, all or nothing (also in the optimistic
   * view). Returns the seq of an atomic flush.
   */
  submit(commands: Command[], opts?: { tag?: string; atomic?: boolean }): number | undefined;
  signal(body: Value): boolean;
  setPresence(body: Value): void;
  /**
   * Predicts a rule set (compileRules) on the optimistic view with the client's user and
   * role ('' = the set's default): a command it refuses is dropped before sending and
   * reported as a 'refused' event. null: no prediction.
   */
  setRules(rules: CompiledRules | null, role?: string): void;
}

export class Client {
  constructor(opts: ClientOptions);
  readonly state: State;
  /** The gateway address of the current (or next) connection attempt. */
  readonly url: string;
  readonly user: string | null;
  readonly session: string;
  readonly pendingCount: number;
  readonly stats: {
    connects: number; welcomes: number; resent: number; resyncs: number; sent: number; received: number;
    /** flushes sent again because no outcome came within ackTimeoutMs */
    timeouts: number;
    /** nacks received */
    nacks: number;
    /** reconnects that went to another address of urls */
    failovers: number;
  };
  on<K extends keyof Events>(name: K, fn: (ev: Events[K]) => void): () => void;
  off<K extends keyof Events>(name: K, fn: (ev: Events[K]) => void): void;
  connect(): this;
  close(): void;
  reconnect(): void;
  setToken(token: string): void;
  subscribe(doc: string): DocHandle;
  doc(doc: string): DocHandle | undefined;
}
export function connect(opts: ClientOptions): Client;
export { clone as cloneValue } from './codec.js';
