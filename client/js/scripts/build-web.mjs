// SPDX-License-Identifier: Apache-2.0
// Builds the browser apps with esbuild (a dev dependency): the demo (demo/src/app.jsx ->
// demo/dist/app.js) and the todo example (examples/todo/app.jsx -> demo/dist/todo.js, its
// page examples/todo/index.html -> demo/dist/todo.html), so one static folder (demo/, as
// `--static.dir`) serves both. React and the client are bundled in; nothing is fetched or
// bundled at run time. Run by scripts/js-test and scripts/up: node client/js/scripts/build-web.mjs
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const js = join(dirname(fileURLToPath(import.meta.url)), '..');
const repo = join(js, '../..');
const out = join(repo, 'demo/dist');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(repo, 'demo/src/app.jsx'), todo: join(repo, 'examples/todo/app.jsx') },
  outdir: out,
  bundle: true,
  format: 'esm',
  jsx: 'automatic',
  minify: true,
  sourcemap: true,
  target: 'es2022',
  nodePaths: [join(js, 'node_modules')],
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});
copyFileSync(join(repo, 'examples/todo/index.html'), join(out, 'todo.html'));
console.log(`build-web: ${out}/app.js, todo.js, todo.html`);
