// SPDX-License-Identifier: Apache-2.0
// Packaging: `npm pack` of client/js installs into a fresh folder (npm install of the
// tarball, offline: the package has no dependencies, React is an optional peer), every
// subpath imports at run time from there, and a TypeScript consumer that uses every
// runtime export of every subpath (the names are read from the modules themselves, so a new
// export without a type fails here) passes `tsc --noEmit --strict`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, symlinkSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const js = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(js, 'package.json'), 'utf8'));
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('npm pack installs, every subpath imports, and tsc accepts a consumer of every export', { timeout: 180000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'flushline-pack-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tgz = run('npm', ['pack', '--silent', '--pack-destination', dir], js).trim().split('\n').pop();
  assert.match(tgz, /^flushline-client-.*\.tgz$/);
  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', join(dir, tgz)], app);
  const installed = join(app, 'node_modules/@flushline/client');
  assert.ok(existsSync(join(installed, 'src/react.js')), 'installed from the tarball');
  assert.ok(!existsSync(join(installed, 'test')), 'tests are not packed');
  // the peers and type packages an application brings itself
  for (const p of ['react', '@types/react', 'typescript']) {
    mkdirSync(dirname(join(app, 'node_modules', p)), { recursive: true });
    symlinkSync(join(js, 'node_modules', p), join(app, 'node_modules', p));
  }
  const subpaths = Object.keys(pkg.exports);
  assert.deepEqual(subpaths.sort(), ['.', './codec', './engine', './history', './messages', './react', './redux', './undo']);
  // every runtime export of every subpath, read from the installed package
  const lines = [];
  const names = {};
  for (const sp of subpaths) {
    const spec = sp === '.' ? '@flushline/client' : `@flushline/client/${sp.slice(2)}`;
    const out = run(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(spec)}); console.log(JSON.stringify(Object.keys(m)))`], app);
    names[sp] = JSON.parse(out);
    assert.ok(names[sp].length > 0, spec);
    const alias = `m${lines.length}`;
    lines.push(`import * as ${alias} from '${spec}';`);
    lines.push(`export const use_${alias} = [${names[sp].map((n) => `${alias}.${n}`).join(', ')}];`);
  }
  for (const n of ['FlushlineProvider', 'useDocument', 'useStatus', 'usePresence', 'useHistory']) assert.ok(names['./react'].includes(n), n);
  for (const n of ['UndoManager', 'invert']) assert.ok(names['./undo'].includes(n), n);
  assert.ok(names['./redux'].includes('bindDocument'));
  assert.ok(names['./history'].includes('HistoryClient'));
  // and typed use of the main API, which must type-check as written
  lines.push(`
import { Client, pointer } from '@flushline/client';
import { useDocument, useStatus, usePresence, useHistory, FlushlineProvider } from '@flushline/client/react';
import { bindDocument } from '@flushline/client/redux';
import { UndoManager } from '@flushline/client/undo';
import { HistoryClient } from '@flushline/client/history';
import { createElement } from 'react';
const client = new Client({ url: 'ws://localhost:8080/v1/ws', token: 't' });
export const el = createElement(FlushlineProvider, { client, maxIntervalMs: 100 });
export function Card(props: { id: string }) {
  const { state, version, edit, undo, canUndo } = useDocument('acme/board', (s) => s.cards);
  const title: string = useDocument('acme/board').status;
  const n: number = version + (canUndo ? 1 : 0);
  edit.incr(pointer('cards', props.id, 'votes'), 1);
  const key: string = edit.create('/cards', { title: 'x' });
  void undo().then((r) => (r.ok ? 'ok' : r.reason));
  const s: string = useStatus();
  const { peers, setPresence } = usePresence('acme/board');
  setPresence({ name: peers[0]?.user ?? '' });
  const h = useHistory('acme/board');
  void h.at(3).then((r) => (r.status === 'ok' ? r.state : r.reason));
  return [state, title, n, key, s, h.status];
}
const fl = bindDocument(client, 'acme/board', { commands: { 'card/voted': (a: { key: string }) => [{ op: 'incr', path: pointer('cards', a.key, 'votes'), value: 1 }] } });
export const slice = fl.reducer(undefined, { type: 'init' });
export const um: UndoManager = fl.undo;
export const hc = new HistoryClient({ client }).page('acme/board', { fromVersion: 1, limit: 10 });
`);
  writeFileSync(join(app, 'consumer.ts'), lines.join('\n'));
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'], skipLibCheck: false, types: [] },
    files: ['consumer.ts'],
  }));
  try {
    run(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', app], app);
  } catch (e) {
    assert.fail(`tsc --noEmit failed:\n${e.stdout}${e.stderr}`);
  }
});
