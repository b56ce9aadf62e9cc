// SPDX-License-Identifier: Apache-2.0
// history: a document's past over HTTP, for history sliders and audits (issue 17).
//
// The gateway's contract (docs/gateway.md, schemas/PROTOCOL.md section 11):
//
//   GET /v1/docs/{id}/history?from_version=V&limit=N     Authorization: Bearer <token>
//     200 {"t": "deltas", "doc": id, "from_version": B, "items": [{"version": V, "client_id",
//          "seq", "user": "...", "ts": ms, "commands": [...], "chain"}, ...], "next": V'}
//     each applied change (the delta of PROTOCOL.md) with its version (the document's version
//     after it), the user the gateway stamped, the record's time and the applied commands; at
//     most N, oldest first, from the change that holds version V on. `next` (the from_version
//     of the next page) when more may follow: a full page, or a shorter one where the read
//     reached the gateway's bounds of time or bytes.
//   GET /v1/docs/{id}?version=V                            the same auth
//     200 {"doc": id, "version": V, "chain", "digest", "state": {...}, ...}  the document as it
//     was at V (the form of `flushline at`)
//   Errors: {code, name, reason}; 404 version_mismatch for a version the document has not
//   reached, 503 (Retry-After) when the gateway's history jobs are busy, 504 over its time.
//
// JSON bodies are read with parseJSON (int64 and 1.0 kept). A gateway from before history
// answers 400 "no query string here" for ?version= and takes /history for part of a document
// id (then another document's or the current snapshot): the response is checked for the shape
// above and the asked version, so such a gateway gives 'unsupported' rather than a wrong state.

import { parseJSON } from './codec.js';

/** Turns ws(s)://host/v1/ws into http(s)://host. */
export function httpBase(wsUrl) {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  return `${u.protocol}//${u.host}`;
}

// The reason of a {code, name, reason} body, else the text.
function reasonOf(text) {
  try { const j = JSON.parse(text); return j && j.reason ? `${j.name}: ${j.reason}` : text.trim(); } catch { return text.trim(); }
}

const encodeDoc = (id) => id.split('/').map(encodeURIComponent).join('/');

export class HistoryClient {
  /**
   * @param {{baseUrl?: string, token?: string, client?: import('./flushline.js').Client, fetch?: typeof fetch}} opts
   *   baseUrl (http://host:port) and token, or a client to take both from (its current url
   *   and token, so a refreshed token is used).
   */
  constructor(opts = {}) {
    this.opts = opts;
    this.fetch = opts.fetch || ((...a) => globalThis.fetch(...a));
  }

  base() { return this.opts.baseUrl || (this.opts.client ? httpBase(this.opts.client.url) : ''); }
  token() { return this.opts.token ?? this.opts.client?.token ?? ''; }

  async get(path) {
    let res;
    try {
      res = await this.fetch(`${this.base()}${path}`, { headers: { Authorization: `Bearer ${this.token()}` } });
    } catch (e) {
      return { status: 'error', reason: `network: ${e.message}` };
    }
    if (res.status === 404) {
      // the history's own 404: a version the document has not reached
      const text = await res.text().catch(() => '');
      if (/"version_mismatch"/.test(text)) return { status: 'error', reason: `HTTP 404 ${reasonOf(text)}` };
      return { status: 'unsupported', reason: 'HTTP 404: this gateway serves no history' };
    }
    if (res.status === 405 || res.status === 501) return { status: 'unsupported', reason: `HTTP ${res.status}: this gateway serves no history` };
    if (res.status === 400) {
      // a gateway from before history refuses any query string on /v1/docs/...
      const text = await res.text().catch(() => '');
      if (/query/i.test(text)) return { status: 'unsupported', reason: `HTTP 400: this gateway serves no history (${text.trim()})` };
      return { status: 'error', reason: `HTTP 400 ${text.trim()}` };
    }
    if (res.status === 401 || res.status === 403) return { status: 'error', reason: `HTTP ${res.status}: not allowed` };
    if (res.status !== 200) {
      const text = await res.text().catch(() => '');
      const retry = Number(res.headers?.get?.('retry-after'));
      return { status: 'error', reason: `HTTP ${res.status} ${reasonOf(text)}`.trim(), ...(retry > 0 ? { retryAfterMs: retry * 1000 } : {}) };
    }
    try {
      return { status: 'ok', body: parseJSON(await res.text()) };
    } catch (e) {
      return { status: 'error', reason: `bad JSON: ${e.message}` };
    }
  }

  /**
   * One page of changes from fromVersion on: {status: 'ok', items, next?} or {status:
   * 'unsupported' | 'error', reason}.
   */
  async page(doc, { fromVersion = 1, limit = 100 } = {}) {
    const r = await this.get(`/v1/docs/${encodeDoc(doc)}/history?from_version=${Number(fromVersion)}&limit=${Number(limit)}`);
    if (r.status !== 'ok') return r;
    const b = r.body;
    if (!b || !Array.isArray(b.items)) return { status: 'unsupported', reason: 'this gateway serves no history (no items in the answer)' };
    const items = b.items.map((it) => ({ ...it, version: Number(it.version) }));
    return { status: 'ok', items, next: b.next === undefined ? undefined : Number(b.next) };
  }

  /** The document as it was at version: {status: 'ok', version, state} or {status, reason}. */
  async at(doc, version) {
    const r = await this.get(`/v1/docs/${encodeDoc(doc)}?version=${Number(version)}`);
    if (r.status !== 'ok') return r;
    const b = r.body;
    if (!b || b.state === undefined || Number(b.version) !== Number(version)) {
      return { status: 'unsupported', reason: `this gateway answered version ${b?.version} for ?version=${version}: no history` };
    }
    return { status: 'ok', version: Number(b.version), state: b.state };
  }
}
