// SPDX-License-Identifier: Apache-2.0
// bench/peers/sharedb-server.js PORT: the ShareDB peer of `bench/run
// contention`. A ShareDB 7 backend with its default in-memory database and
// pub/sub, json0 ops, served over WebSocket on 127.0.0.1:PORT (one JSON
// stream per connection, as ShareDB's own examples do). `GET /stats`
// answers what the server saw: ops committed, ops that had to be transformed
// over concurrent ones (and over how many), and commit retries (rejected
// submits are counted by the clients, which get the error). Prints "listening PORT" on stdout once it accepts connections;
// SIGTERM stops it.
'use strict';

const http = require('http');
const ShareDB = require('sharedb');
const WebSocket = require('ws');
const WebSocketJSONStream = require('@teamwork/websocket-json-stream');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  process.stderr.write('usage: sharedb-server.js PORT\n');
  process.exit(2);
}

const backend = new ShareDB();
const stats = {committed: 0, transformed: 0, transformed_over: 0, commit_retries: 0};

// The version an op was written against, before the server transformed it.
backend.use('submit', (ctx, next) => {
  ctx.flBaseVersion = ctx.op.v;
  next();
});
backend.use('afterWrite', (ctx, next) => {
  stats.committed++;
  if (ctx.flBaseVersion != null && ctx.op.v > ctx.flBaseVersion) {
    stats.transformed++;
    stats.transformed_over += ctx.op.v - ctx.flBaseVersion;
  }
  stats.commit_retries += ctx.retries;
  next();
});

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, {'Content-Type': 'application/json'});
    res.end(JSON.stringify(stats));
    return;
  }
  res.writeHead(404);
  res.end();
});
const wss = new WebSocket.Server({server, perMessageDeflate: false});
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  backend.listen(new WebSocketJSONStream(ws));
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
