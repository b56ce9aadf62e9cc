// SPDX-License-Identifier: Apache-2.0
// bench/peers/sharedb-clients.js PORT DOC WORKLOAD WRITERS SECONDS: the
// closed-loop writers of `bench/run contention` against the ShareDB server
// (sharedb-server.js), in a process of their own.
//
// Each writer is a ShareDB client on its own WebSocket connection, subscribed
// to the one document (ShareDB's clients always are: a client submits ops
// against its subscribed copy and receives every other client's op). Each
// keeps exactly one op outstanding: submitOp, wait for the server's ack (the
// callback), submit the next. WORKLOAD is `incr` ({p:['c0'], na:1}) or
// `replace-append` (replace the field t, append the writer's index to list;
// one op of two json0 components). Latency is from submitOp to its ack.
// After SECONDS the writers stop submitting, outstanding ops are awaited,
// and a fresh connection fetches the document: its counter (incr) or list
// length (replace-append) must equal the acknowledged ops. Prints one JSON
// line on stdout.
'use strict';

const ShareDB = require('sharedb/lib/client');
const WebSocket = require('ws');

const [portArg, docId, workload, writersArg, secondsArg] = process.argv.slice(2);
const port = Number(portArg);
const nwriters = Number(writersArg);
const seconds = Number(secondsArg);
if (!docId || !['incr', 'replace-append'].includes(workload) || !(nwriters >= 1) ||
    !(seconds > 0)) {
  process.stderr.write('usage: sharedb-clients.js PORT DOC incr|replace-append WRITERS SECONDS\n');
  process.exit(2);
}
const url = `ws://127.0.0.1:${port}`;
const COLLECTION = 'bench';

function connect() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {perMessageDeflate: false});
    ws.on('error', reject);
    ws.on('open', () => {
      ws.removeListener('error', reject);
      resolve(new ShareDB.Connection(ws));
    });
  });
}

function subscribe(doc) {
  return new Promise((resolve, reject) => doc.subscribe((err) => err ? reject(err) : resolve()));
}

function fetchDoc(doc) {
  return new Promise((resolve, reject) => doc.fetch((err) => err ? reject(err) : resolve()));
}

// Log-bucket histogram of nanoseconds (the same resolution as the C side:
// exact below 128, then 64 buckets per power of two).
class Hist {
  constructor() {
    this.counts = new Map();
    this.n = 0;
    this.max = 0;
  }
  static index(v) {
    if (v < 128) return v;
    let e = Math.floor(Math.log2(v));
    if (2 ** e > v) e--;
    else if (2 ** (e + 1) <= v) e++;
    const shift = e - 6;
    return 128 + (e - 7) * 64 + (Math.floor(v / 2 ** shift) - 64);
  }
  static high(i) {
    if (i < 128) return i;
    const g = Math.floor((i - 128) / 64);
    const sub = ((i - 128) % 64) + 64;
    const shift = g + 1;
    return sub * 2 ** shift + 2 ** shift - 1;
  }
  add(v) {
    v = Math.max(0, Math.round(v));
    const i = Hist.index(v);
    this.counts.set(i, (this.counts.get(i) || 0) + 1);
    this.n++;
    if (v > this.max) this.max = v;
  }
  quantile(q) {
    if (!this.n) return 0;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (const i of [...this.counts.keys()].sort((a, b) => a - b)) {
      seen += this.counts.get(i);
      if (seen >= rank) return Math.min(Hist.high(i), this.max);
    }
    return this.max;
  }
}

async function main() {
  // The document: created once, before the writers start.
  const setup = await connect();
  const init = setup.get(COLLECTION, docId);
  await fetchDoc(init);
  if (init.type === null) {
    await new Promise((resolve, reject) =>
      init.create({c0: 0, t: 0, list: []}, (err) => err ? reject(err) : resolve()));
  }
  const start = {c0: init.data.c0, list: init.data.list.length};

  const writers = [];
  for (let w = 0; w < nwriters; w++) {
    const conn = await connect();
    const doc = conn.get(COLLECTION, docId);
    await subscribe(doc);
    writers.push({conn, doc, w});
  }

  const hist = new Hist();
  let acked = 0;
  let rejected = 0;
  let remote = 0;
  let stopping = false;
  let running = 0;
  const t0 = process.hrtime.bigint();
  let tLastAck = t0;
  let resolveDone;
  const done = new Promise((resolve) => { resolveDone = resolve; });

  for (const wr of writers) wr.doc.on('op', (op, source) => { if (!source) remote++; });

  function submit(wr) {
    if (stopping) {
      if (--running === 0) resolveDone();
      return;
    }
    let op;
    if (workload === 'incr') {
      op = [{p: ['c0'], na: 1}];
    } else {
      const now = Number(process.hrtime.bigint() - t0);
      op = [{p: ['t'], od: wr.doc.data.t, oi: now},
        {p: ['list', wr.doc.data.list.length], li: wr.w}];
    }
    const t = process.hrtime.bigint();
    wr.doc.submitOp(op, (err) => {
      const now = process.hrtime.bigint();
      if (err) {
        rejected++;
      } else {
        acked++;
        tLastAck = now;
        hist.add(Number(now - t));
      }
      submit(wr);
    });
  }
  running = writers.length;
  for (const wr of writers) submit(wr);
  setTimeout(() => { stopping = true; }, seconds * 1000);
  await done;

  const elapsed = Number(tLastAck - t0) / 1e9;
  const check = await connect();
  const fin = check.get(COLLECTION, docId);
  await fetchDoc(fin);
  const counted = workload === 'incr' ? fin.data.c0 - start.c0 : fin.data.list.length - start.list;
  const ms = (ns) => Math.round(ns / 1e3) / 1e3;
  process.stdout.write(JSON.stringify({
    system: 'sharedb', workload, writers: nwriters, elapsed_s: elapsed, acked, rejected,
    ops_per_s: acked / elapsed, remote_ops_received: remote,
    latency_ms: {count: hist.n, p50: ms(hist.quantile(0.5)), p99: ms(hist.quantile(0.99)),
      p999: ms(hist.quantile(0.999)), max: ms(hist.max)},
    final: {version: fin.version, counted, ok: counted === acked},
  }) + '\n');
  for (const wr of writers) wr.conn.close();
  setup.close();
  check.close();
  process.exit(0);
}

main().catch((err) => {
  process.stderr.write(`sharedb-clients: ${err && err.stack || err}\n`);
  process.exit(1);
});
