// SPDX-License-Identifier: Apache-2.0
import type { Command } from './engine.js';
import type { Value } from './codec.js';
import type { Client } from './flushline.js';

export interface HistoryItem { version: number; user: string; ts: number; seq?: number; commands: Command[]; }
export type HistoryFailure = { status: 'unsupported' | 'error'; reason: string; retryAfterMs?: number };
export type HistoryPage = { status: 'ok'; items: HistoryItem[]; next?: number } | HistoryFailure;
export type HistoryAt = { status: 'ok'; version: number; state: { [key: string]: Value } } | HistoryFailure;

export function httpBase(wsUrl: string): string;

export class HistoryClient {
  constructor(opts?: { baseUrl?: string; token?: string; client?: Client; fetch?: typeof fetch });
  /** GET /v1/docs/{id}/history?from_version=V&limit=N */
  page(doc: string, opts?: { fromVersion?: number; limit?: number }): Promise<HistoryPage>;
  /** GET /v1/docs/{id}?version=V */
  at(doc: string, version: number): Promise<HistoryAt>;
}
