// SPDX-License-Identifier: Apache-2.0
// Browser end to end for the React kit (scripts/js-test starts a gateway and a processor and
// exports FLUSHLINE_GW_URL, the tokens and FLUSHLINE_CLI), in Debian's Chromium:
//   - undo on one page while the other edits: the undo applies where nobody else wrote, and
//     is refused (Ctrl+Z, with the reason on screen) once the other page changed the card;
//     both pages converge on the processor's state;
//   - the todo example (examples/todo) in two pages: create, toggle, delete, per-user counts;
//   - a burst of 10,000 deltas on one document renders the demo's useDocument Board
//     component fewer than 60 times (frames coalesce), and it ends on the final version;
//   - the history slider shows the board exactly as `flushline at --version V` prints it, for
//     three versions, with who changed what; the history client's pages and refusals;
//   - screenshots of the demo for the README (FLUSHLINE_SCREENSHOT, when set: the board there,
//     and the history slider at a past version next to it, *-history.png).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '../../client/js/package.json'));
const { chromium } = require('playwright-core');
const { parseJSON, stringifyJSON } = await import('../../client/js/src/codec.js');

const GW = process.env.FLUSHLINE_GW_URL;
const TOKENS = { alice: process.env.FLUSHLINE_TOKEN_ALICE, bob: process.env.FLUSHLINE_TOKEN_BOB };
const CLI = process.env.FLUSHLINE_CLI;
const ART = process.env.FLUSHLINE_ARTIFACTS || tmpdir();
const skip = !GW || !TOKENS.alice || !TOKENS.bob ? 'needs FLUSHLINE_GW_URL and tokens (run scripts/js-test)' : false;

let browser;
let profile;

before(async () => {
  if (skip) return;
  profile = mkdtempSync(join(tmpdir(), 'flushline-chromium-'));
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--disk-cache-dir=${profile}/cache`],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function open(user, path, ready) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(`${GW}${path}`);
  await page.waitForFunction(ready, null, { timeout: 30000 });
  return { page, context, errors, user };
}

const q = (user, doc) => `token=${encodeURIComponent(TOKENS[user])}&doc=${encodeURIComponent(doc)}`;
const openBoard = (user, doc) => open(user, `/index.html?${q(user, doc)}`, () => window.demo && demo.actions
  && demo.client.state === 'ready' && demo.board.state && demo.board.state.lists && Object.keys(demo.board.state.lists).length >= 3);

function processorState(doc, version) {
  const out = execFileSync(CLI, ['at', '--doc', doc, '--version', String(version), '--quiet'], { encoding: 'utf8' });
  const at = parseJSON(out);
  assert.equal(Number(at.version), version);
  return stringifyJSON(at.state);
}

// Every page ready, nothing pending, the same version for half a second; returns it.
async function settled(pages, probe, timeout = 60000) {
  const start = Date.now();
  for (;;) {
    const vs = await Promise.all(pages.map((p) => p.page.evaluate(probe)));
    if (vs.every((v) => v.state === 'ready' && v.pending === 0 && v.version === vs[0].version)) {
      await new Promise((r) => setTimeout(r, 500));
      const again = await Promise.all(pages.map((p) => p.page.evaluate(probe)));
      if (again.every((v) => v.version === vs[0].version)) return vs[0].version;
    }
    if (Date.now() - start > timeout) throw new Error(`pages did not settle: ${JSON.stringify(vs)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const boardProbe = () => ({ state: demo.client.state, pending: demo.client.pendingCount, version: demo.board.version });

test('undo on one page while the other edits; refused once the other page changed it', { skip, timeout: 180000 }, async () => {
  const doc = `e2e/undo-${Date.now().toString(36)}`;
  const a = await openBoard('alice', doc);
  const b = await openBoard('bob', doc);
  // alice adds a card and renames it through the UI
  const list = a.page.locator('.list').first();
  await list.locator('input[name=title]').fill('draft');
  await list.locator('input[name=title]').press('Enter');
  const card = a.page.locator('.card', { hasText: 'draft' });
  await card.waitFor();
  const key = await card.getAttribute('data-card');
  const mine = a.page.locator(`.card[data-card="${key}"]`);
  await mine.locator('.title').click();
  await mine.locator('input').fill('final title');
  await mine.locator('input').press('Enter');
  await mine.locator('.title', { hasText: 'final title' }).waitFor();
  // bob keeps editing other cards meanwhile
  const bobs = b.page.evaluate(async () => {
    const keys = [];
    for (let i = 0; i < 30; i++) {
      if (i % 3 === 0) keys.push(demo.actions.addCard('doing', `bob ${i}`));
      else demo.actions.vote(keys[keys.length - 1]);
      await new Promise((r) => setTimeout(r, 30));
    }
  });
  // alice undoes her rename with the button while bob edits
  await a.page.waitForFunction(() => demo.board.pendingCount === 0);
  await a.page.locator('#undo').click();
  await mine.locator('.title', { hasText: 'draft' }).waitFor({ timeout: 15000 });
  await bobs;
  let version = await settled([a, b], boardProbe);
  let sa = await a.page.evaluate(() => demo.stringifyJSON(demo.board.state));
  assert.equal(sa, await b.page.evaluate(() => demo.stringifyJSON(demo.board.state)));
  assert.equal(sa, processorState(doc, version));
  assert.equal(parseJSON(sa).cards[key].title, 'draft', 'the undo applied');
  assert.equal(Object.values(parseJSON(sa).cards).filter((c) => String(c.title).startsWith('bob')).length, 10, "bob's work stays");
  // redo, then bob renames alice's card: her undo is refused, his title stays
  await a.page.locator('#redo').click();
  await mine.locator('.title', { hasText: 'final title' }).waitFor({ timeout: 15000 });
  await settled([a, b], boardProbe);
  await b.page.evaluate((k) => demo.actions.editCard(k, 'bob was here'), key);
  await mine.locator('.title', { hasText: 'bob was here' }).waitFor({ timeout: 15000 });
  await a.page.evaluate(() => document.activeElement?.blur()); // the shortcut is for the board, not an input
  await a.page.keyboard.press('Control+z');
  await a.page.locator('#feedback li', { hasText: /undo refused: changed by someone else since/ }).waitFor({ timeout: 15000 });
  version = await settled([a, b], boardProbe);
  sa = await a.page.evaluate(() => demo.stringifyJSON(demo.board.state));
  assert.equal(parseJSON(sa).cards[key].title, 'bob was here');
  assert.equal(sa, processorState(doc, version));
  await a.page.screenshot({ path: join(ART, 'react-undo-alice.png') });
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.context.close();
  await b.context.close();
});

test('the todo example works in two pages', { skip, timeout: 180000 }, async () => {
  const doc = `e2e/todo-${Date.now().toString(36)}`;
  const ready = () => window.todo && todo.client.state === 'ready' && document.querySelector('#add');
  const a = await open('alice', `/dist/todo.html?${q('alice', doc)}`, ready);
  const b = await open('bob', `/dist/todo.html?${q('bob', doc)}`, ready);
  const add = async (p, text) => {
    await p.page.locator('#add input').fill(text);
    await p.page.locator('#add input').press('Enter');
    await p.page.locator('#items li', { hasText: text }).waitFor();
  };
  await add(a, 'buy milk');
  await add(a, 'write tests');
  await add(b, 'walk the dog');
  // each sees the others' items
  await b.page.locator('#items li', { hasText: 'buy milk' }).waitFor({ timeout: 15000 });
  await a.page.locator('#items li', { hasText: 'walk the dog' }).waitFor({ timeout: 15000 });
  await b.page.locator('#items li', { hasText: 'buy milk' }).locator('.toggle').click();
  await a.page.locator('#items li', { hasText: 'walk the dog' }).locator('.delete').click();
  await a.page.locator('#items li.done', { hasText: 'buy milk' }).waitFor({ timeout: 15000 });
  await b.page.locator('#items li', { hasText: 'walk the dog' }).waitFor({ state: 'detached', timeout: 15000 });
  const probe = () => {
    const h = todo.client.doc(todo.docId);
    return { state: todo.client.state, pending: todo.client.pendingCount, version: h.version };
  };
  const version = await settled([a, b], probe);
  const states = await Promise.all([a, b].map((p) => p.page.evaluate(() => JSON.stringify(todo.client.doc(todo.docId).state))));
  assert.equal(states[0], states[1]);
  const st = parseJSON(processorState(doc, version));
  assert.deepEqual(Object.values(st.items).map((i) => [i.text, i.done, i.by]).sort(),
    [['buy milk', true, 'alice'], ['write tests', false, 'alice']]);
  // per-user counts on both pages
  for (const p of [a, b]) {
    assert.equal(await p.page.locator('#counts tr[data-user="alice"] .open').innerText(), '1');
    assert.equal(await p.page.locator('#counts tr[data-user="alice"] .done').innerText(), '1');
    assert.equal(await p.page.locator('#counts tr[data-user="bob"]').count(), 0);
  }
  await a.page.screenshot({ path: join(ART, 'todo-alice.png') });
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.context.close();
  await b.context.close();
});

test('a 10,000-delta burst renders a useDocument component fewer than 60 times', { skip, timeout: 300000 }, async (t) => {
  const doc = `e2e/burst-${Date.now().toString(36)}`;
  const viewer = await openBoard('alice', doc);
  const sender = await open('bob', `/index.html?${q('bob', `e2e/other-${Date.now().toString(36)}`)}`, () => window.demo && demo.client.state === 'ready');
  await viewer.page.waitForFunction(() => demo.board.pendingCount === 0);
  const start = await viewer.page.evaluate(() => ({ renders: demo.stats.renders, version: demo.board.version, deltas: 0 }));
  await viewer.page.evaluate(() => {
    window.deltaCount = 0;
    demo.client.on('delta', () => { window.deltaCount++; });
  });
  // 50 raw WebSocket connections (JSON frames), 200 flushes of one incr each: 10,000 flushes,
  // each applied as its own delta. The gateway's bucket is 200 per connection; a nack is
  // resent with its seq after retry_after_ms.
  const t0 = Date.now();
  const sent = await sender.page.evaluate(async ({ doc, token, conns, per }) => {
    const url = `ws://${location.host}/v1/ws`;
    const one = (n) => new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const id = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
      const done = new Set();
      const flush = (seq) => ws.send(JSON.stringify({ v: 1, t: 'flush', doc, client_id: id, seq, base_version: 0,
        commands: [{ op: 'incr', path: '/burst', value: 1 }] }));
      ws.onopen = () => ws.send(JSON.stringify({ v: 1, t: 'hello', token, client: `burst-${n}` }));
      ws.onmessage = (ev) => {
        const m = JSON.parse(ev.data);
        if (m.t === 'welcome') for (let s = 1; s <= per; s++) flush(s);
        else if (m.t === 'outcome') {
          if (m.code !== 0) return reject(new Error(`outcome ${JSON.stringify(m)}`));
          done.add(m.seq);
          if (done.size === per) { ws.close(1000); resolve(per); }
        } else if (m.t === 'nack') {
          if (m.retry_after_ms === undefined) return reject(new Error(`nack ${JSON.stringify(m)}`));
          setTimeout(() => flush(m.seq), m.retry_after_ms);
        } else if (m.t === 'error') reject(new Error(`error ${JSON.stringify(m)}`));
      };
      ws.onerror = () => reject(new Error('websocket error'));
    });
    const n = await Promise.all(Array.from({ length: conns }, (_, i) => one(i)));
    return n.reduce((x, y) => x + y, 0);
  }, { doc, token: TOKENS.bob, conns: 50, per: 200 });
  assert.equal(sent, 10000);
  await viewer.page.waitForFunction((v) => demo.board.version >= v + 10000 && demo.board.state.burst === 10000,
    start.version, { timeout: 240000, polling: 200 });
  // the last notification renders the final version
  await viewer.page.waitForFunction((v) => document.getElementById('version').textContent === `v${v}`,
    start.version + 10000, { timeout: 10000 });
  const end = await viewer.page.evaluate(() => ({ renders: demo.stats.renders, deltas: window.deltaCount }));
  const renders = end.renders - start.renders;
  t.diagnostic(`measured: burst of ${end.deltas} deltas in ${Date.now() - t0} ms, ${renders} renders of the Board component`);
  assert.equal(end.deltas, 10000, 'every flush arrived as its own delta');
  assert.ok(renders >= 1, 'the board rendered');
  assert.ok(renders < 60, `${renders} renders for 10,000 deltas`);
  assert.deepEqual(viewer.errors, []);
  await viewer.context.close();
  await sender.context.close();
});

// Edits of the board, one flush each (each waits for its outcome): cards added, voted,
// renamed, moved and deleted by alice and bob.
async function editHistory(a, b) {
  const step = async (p, fn, arg) => {
    const r = await p.page.evaluate(fn, arg);
    await p.page.waitForFunction(() => demo.board.pendingCount === 0 && demo.board.queued.length === 0);
    return r;
  };
  const k1 = await step(a, () => demo.actions.addCard('todo', 'Sketch the onboarding flow'));
  const k2 = await step(a, () => demo.actions.addCard('todo', 'Pick a date for the offsite'));
  await step(b, (k) => demo.actions.vote(k), k1);
  const k3 = await step(b, () => demo.actions.addCard('doing', 'Presence and typing'));
  await step(a, (k) => demo.actions.editCard(k, 'Offsite: 14 May'), k2);
  await step(a, (k) => demo.actions.moveCard(k, 'doing'), k1);
  await step(b, (k) => demo.actions.vote(k), k3);
  await step(a, () => demo.actions.addCard('done', 'React bindings'));
  await step(b, (k) => demo.actions.deleteCard(k), k2);
  await step(a, (k) => demo.actions.vote(k), k1);
}

// Moves the slider to v and waits until the page shows the board at v; returns what it shows.
async function slideTo(p, v) {
  await p.page.locator('#history-slider').fill(String(v));
  await p.page.locator(`#past-board[data-version="${v}"]`).waitFor({ timeout: 20000 });
  return p.page.evaluate(() => ({ state: demo.stringifyJSON(demo.past.state), version: demo.past.version }));
}

test('the history slider shows the board of `flushline at --version V`, for three versions', { skip, timeout: 180000 }, async () => {
  const doc = `e2e/history-${Date.now().toString(36)}`;
  const a = await openBoard('alice', doc);
  const b = await openBoard('bob', doc);
  await editHistory(a, b);
  const version = await settled([a, b], boardProbe);
  assert.ok(version >= 12, `version ${version}`);
  for (const v of [3, Math.floor(version / 2) + 1, version - 1]) {
    const shown = await slideTo(a, v);
    assert.equal(shown.version, v);
    assert.equal(shown.state, processorState(doc, v), `the slider at v${v}`);
    // the page draws that state: its cards, in their lists, with their votes
    const st = parseJSON(shown.state);
    const drawn = await a.page.locator('#past-board .card').evaluateAll((cs) => cs.map((c) => [
      c.dataset.card, c.closest('.list').dataset.list, c.querySelector('.title').textContent,
      c.querySelector('.votes').textContent]));
    assert.deepEqual(drawn.sort(), Object.entries(st.cards || {}).map(([k, c]) => [k, c.list, String(c.title), `▲ ${c.votes}`]).sort());
    // who changed what: the change that made v, with its user
    const here = a.page.locator('#history-changes li.here');
    await here.waitFor({ timeout: 10000 });
    assert.match(await here.innerText(), /^v\d+ (alice|bob): /);
    await a.page.screenshot({ path: join(ART, `react-history-v${v}.png`) });
  }
  // the live board comes back, still editable
  await a.page.locator('#history-live').click();
  await a.page.locator('#board').waitFor();
  assert.equal(await a.page.locator('#past-board').count(), 0);
  // the history client itself: a page of changes with the users, and a future version refused
  const { HistoryClient } = await import('../../client/js/src/history.js');
  const hc = new HistoryClient({ baseUrl: GW, token: TOKENS.alice });
  const page = await hc.page(doc, { fromVersion: 1, limit: 4 });
  assert.equal(page.status, 'ok', JSON.stringify(page));
  assert.equal(page.items.length, 4);
  assert.ok(page.next > page.items[3].version - 1);
  assert.deepEqual(new Set((await hc.page(doc, { fromVersion: 1, limit: 100 })).items.map((i) => i.user)), new Set(['alice', 'bob']));
  const future = await hc.at(doc, version + 5);
  assert.equal(future.status, 'error');
  assert.match(future.reason, /404 version_mismatch/);
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.context.close();
  await b.context.close();
});

test('a screenshot of the demo', { skip: skip || (!process.env.FLUSHLINE_SCREENSHOT && 'set FLUSHLINE_SCREENSHOT=path to refresh docs/demo.png'), timeout: 120000 }, async () => {
  const doc = `e2e/shot-${Date.now().toString(36)}`;
  const a = await openBoard('alice', doc);
  const b = await openBoard('bob', doc);
  await a.page.evaluate(async () => {
    const { actions } = demo;
    const k1 = actions.addCard('todo', 'Sketch the onboarding flow');
    const k2 = actions.addCard('todo', 'Pick a date for the offsite');
    const k3 = actions.addCard('doing', 'Undo and redo in the board');
    actions.addCard('done', 'React bindings');
    for (let i = 0; i < 3; i++) actions.vote(k3);
    actions.vote(k1);
    void k2;
  });
  await b.page.evaluate(() => { const k = demo.actions.addCard('doing', 'Presence and typing'); demo.actions.vote(k); });
  await settled([a, b], boardProbe);
  await b.page.locator('.card .title').first().click();
  await b.page.locator('.card input').first().press('End');
  await b.page.locator('.card input').first().press('x');
  await a.page.waitForFunction(() => /bob typing/.test(document.getElementById('typing').textContent), null, { timeout: 10000 });
  await a.page.screenshot({ path: process.env.FLUSHLINE_SCREENSHOT });
  // the history slider, a few changes back, with who changed what
  await b.page.locator('.card input').first().press('Escape');
  const byTitle = (t) => Object.entries(demo.board.state.cards).find(([, c]) => c.title === t)[0];
  const step = async (p, fn) => {
    await p.page.evaluate(`(${fn})(${byTitle})`);
    await p.page.waitForFunction(() => demo.board.pendingCount === 0 && demo.board.queued.length === 0);
    return settled([a, b], boardProbe);
  };
  const past = await step(b, (key) => demo.actions.vote(key('Pick a date for the offsite')));
  await step(a, (key) => demo.actions.editCard(key('Pick a date for the offsite'), 'Offsite: 14 May'));
  await step(b, (key) => demo.actions.moveCard(key('Presence and typing'), 'done'));
  await step(a, () => { demo.actions.addCard('doing', 'History slider'); });
  await slideTo(a, past);
  await a.page.locator('#history-changes li.here').waitFor({ timeout: 10000 });
  await a.page.evaluate(() => document.activeElement?.blur());
  await a.page.screenshot({ path: process.env.FLUSHLINE_SCREENSHOT.replace(/(\.png)?$/, '-history.png') });
  await a.context.close();
  await b.context.close();
});
