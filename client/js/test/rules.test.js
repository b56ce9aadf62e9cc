// SPDX-License-Identifier: Apache-2.0
// Rules in the JS engine (schemas/RULES.md) against every file under schemas/vectors/rules/
// (the same vectors the C engine passes), and the optimistic layer refusing what the
// processor will refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { parseJSON, stringifyJSON, toHex, fromHex, equal, clone } from '../src/codec.js';
import { Doc } from '../src/engine.js';
import { compileRules, checkDoc, RulesError } from '../src/rules.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '../../../schemas/vectors/rules');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
const toFlush = (f) => ({ ...f, client_id: fromHex(f.client_id) });

test('there are rules vectors', () => {
  const n = files.reduce((s, f) => s + parseJSON(readFileSync(join(dir, f), 'utf8')).cases.length, 0);
  assert.ok(files.length >= 5 && n >= 80, `${files.length} files, ${n} cases`);
});

for (const file of files) {
  test(`rules/${file}`, async (t) => {
    const { cases } = parseJSON(readFileSync(join(dir, file), 'utf8'));
    for (const c of cases) {
      await t.test(c.name, () => {
        const doc = new Doc(c.doc, { state: clone(c.state), version: c.version, config: c.config || {} });
        doc.setRules(compileRules(c.rules), c.role || '');
        const replica = new Doc(c.doc, { state: clone(c.state), version: c.version, config: c.config || {} });
        let out;
        for (const f of [...(c.before || []), c.flush]) {
          out = doc.apply(toFlush(f));
          // deltas carry the stamped values: a replica without rules follows them
          if (!out.duplicate && out.applied.length) replica.applyApplied(out.version_before, out.applied, out.chain);
        }
        const e = c.expect;
        assert.equal(out.code, e.code, 'flush code');
        assert.equal(out.duplicate, e.duplicate, 'duplicate');
        assert.equal(out.version_before, e.version_before, 'version_before');
        assert.equal(out.version_after, e.version_after, 'version_after');
        assert.deepEqual(out.results, e.results, 'results');
        assert.ok(equal(doc.state, e.state), `state: ${stringifyJSON(doc.state)} != ${stringifyJSON(e.state)}`);
        assert.equal(doc.version, e.version, 'version');
        assert.equal(toHex(doc.chain), e.chain, 'chain');
        assert.equal(toHex(doc.digest()), e.digest, 'digest');
        assert.ok(equal(replica.state, e.state), 'replica state');
        assert.equal(toHex(replica.chain), e.chain, 'replica chain');
      });
    }
  });
}

const board = () => parseJSON(readFileSync(join(dir, 'allow.json'), 'utf8')).cases[0].rules;

test('the optimistic layer refuses a vote of +2 and an edit of another user\'s card', () => {
  const doc = new Doc('t/board', {
    state: { cards: { a: { title: 'A', by: 'ann', votes: 0 }, b: { title: 'B', by: 'bob', votes: 0 } } },
  });
  doc.setRules(compileRules(board()));
  const codes = doc.applyLocal([
    { op: 'incr', path: '/cards/b/votes', value: 2 },
    { op: 'replace', path: '/cards/b/title', value: 'mine' },
    { op: 'incr', path: '/cards/b/votes', value: 1 },
    { op: 'create', path: '/cards', value: { title: 'new', by: 'mallory' } },
  ], { user: 'ann', ts: 7 });
  assert.deepEqual(codes, ['rule_violation', 'rule_violation', 'ok', 'ok']);
  assert.deepEqual(doc.lastRules, ['vote +1', 'own cards', null, null]);
  assert.equal(doc.state.cards.b.votes, 1);
  const created = Object.values(doc.state.cards).find((x) => x.title === 'new');
  assert.equal(created.by, 'ann', 'the stamp wins over the forged author');
  assert.equal(created.at, 7);
});

test('compileRules names the JSON path of a problem', () => {
  assert.throws(() => compileRules({ rules: [{ name: 'x', allow: { ops: ['frob'], paths: ['/a'] } }] }),
    (e) => e instanceof RulesError && e.message === 'rules[0].allow.ops[0]: unknown op "frob"');
  assert.throws(() => compileRules({ rules: [{ name: 'x', allow: { ops: ['add'], paths: ['a'] } }] }),
    (e) => e instanceof RulesError && e.message.startsWith('rules[0].allow.paths[0]: bad pointer pattern'));
});

test('checkDoc lists the locations that break a constraint', () => {
  const rules = compileRules({ rules: [{ name: 'short', constraint: { path: '/t/*', schema: { maxLength: 2 } } }] });
  assert.deepEqual(checkDoc(rules, { t: { a: 'ok', 'b/c': 'long' } }), [{ rule: 'short', where: '/t/b~1c' }]);
});
