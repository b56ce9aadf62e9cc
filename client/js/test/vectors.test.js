// SPDX-License-Identifier: Apache-2.0
// Conformance: the JS codec, messages and engine against every file under schemas/vectors/
// (the same vectors the C codec and engine pass).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import {
  parseJSON, stringifyJSON, encode, decode, toHex, fromHex, equal, clone, CodecError,
} from '../src/codec.js';
import {
  decodeMessage, decodeMessageJSON, encodeMessage, encodeMessageJSON, messageToJSONValue, check,
} from '../src/messages.js';
import { Doc, parsePointer } from '../src/engine.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../../schemas/vectors');
const load = (p) => parseJSON(readFileSync(join(root, p), 'utf8'));
const hex = (b) => toHex(b);

function codeOf(fn) {
  try { fn(); } catch (e) { if (e instanceof CodecError) return e.code; throw e; }
  return 'accepted';
}

// Every file must be covered by a test below: new vector files fail here until they are.
test('every vector file is known', () => {
  const files = [
    ...readdirSync(join(root, 'messages')).map((f) => `messages/${f}`),
    ...readdirSync(join(root, 'engine')).filter((f) => f.endsWith('.json')).map((f) => `engine/${f}`),
  ].sort();
  const known = ['messages/client.json', 'messages/records.json', 'messages/server.json', 'messages/values.json'];
  for (const f of files) assert.ok(known.includes(f) || f.startsWith('engine/'), f);
});

test('values.json', async (t) => {
  const { cases } = load('messages/values.json');
  for (const c of cases) {
    await t.test(c.name, () => {
      if (c.error) {
        assert.equal(codeOf(() => decode(fromHex(c.msgpack_hex))), c.error);
        return;
      }
      if (c.input_hex) {
        assert.equal(hex(encode(decode(fromHex(c.input_hex)))), c.msgpack_hex);
        return;
      }
      assert.equal(hex(encode(c.json)), c.msgpack_hex);
      const back = decode(fromHex(c.msgpack_hex));
      assert.ok(equal(back, c.json), 'decoded value equals the JSON form');
      assert.equal(hex(encode(back)), c.msgpack_hex);
      assert.ok(equal(parseJSON(stringifyJSON(back)), c.json), 'JSON round trip');
    });
  }
});

for (const file of ['client', 'server', 'records']) {
  test(`${file}.json`, async (t) => {
    const { dir, cases } = load(`messages/${file}.json`);
    for (const c of cases) {
      await t.test(c.name, () => {
        if (c.error) {
          const got = c.json_text !== undefined
            ? codeOf(() => decodeMessageJSON(c.json_text, dir))
            : codeOf(() => decodeMessage(fromHex(c.msgpack_hex), dir));
          assert.equal(got, c.error);
          return;
        }
        // JSON form -> message -> exact bytes
        const fromJson = check(c.json, dir, true);
        assert.equal(hex(encodeMessage(fromJson)), c.msgpack_hex);
        // bytes -> message -> same bytes and same JSON
        const msg = decodeMessage(fromHex(c.msgpack_hex), dir);
        assert.equal(hex(encodeMessage(msg)), c.msgpack_hex);
        assert.ok(equal(messageToJSONValue(msg), c.json), 'same JSON');
        // JSON text round trip
        const again = decodeMessageJSON(encodeMessageJSON(msg), dir);
        assert.equal(hex(encodeMessage(again)), c.msgpack_hex);
      });
    }
  });
}

function toFlush(f) {
  return { ...f, client_id: fromHex(f.client_id) };
}

const engineFiles = readdirSync(join(root, 'engine')).filter((f) => f.endsWith('.json')).sort();
for (const file of engineFiles) {
  test(`engine/${file}`, async (t) => {
    const { cases } = load(`engine/${file}`);
    for (const c of cases) {
      await t.test(c.name, () => {
        const doc = new Doc(c.doc, { state: clone(c.state), version: c.version, config: c.config || {} });
        for (const b of c.before || []) doc.apply(toFlush(b));
        const out = doc.apply(toFlush(c.flush));
        const e = c.expect;
        assert.equal(out.code, e.code, 'flush code');
        assert.equal(out.duplicate, e.duplicate, 'duplicate');
        assert.equal(out.version_before, e.version_before, 'version_before');
        assert.equal(out.version_after, e.version_after, 'version_after');
        assert.deepEqual(out.results, e.results, 'results');
        assert.ok(equal(doc.state, e.state), `state: ${stringifyJSON(doc.state)} != ${stringifyJSON(e.state)}`);
        assert.equal(doc.version, e.version, 'version');
        assert.equal(hex(doc.chain), e.chain, 'chain');
        assert.equal(hex(doc.digest()), e.digest, 'digest');
        // The applied commands replayed on the state before give the same state and chain
        // (what a client does with a delta).
        if (!c.before && out.applied.length) {
          const replay = new Doc(c.doc, { state: clone(c.state), version: c.version, config: c.config || {} });
          replay.applyApplied(out.version_before, out.applied, out.chain);
          assert.ok(equal(replay.state, e.state), 'replayed state');
          assert.equal(hex(replay.chain), e.chain, 'replayed chain');
        }
      });
    }
  });
}

test('pointer syntax', () => {
  assert.deepEqual(parsePointer(''), []);
  assert.deepEqual(parsePointer('/a~1b/~0/'), ['a/b', '~', '']);
  assert.equal(parsePointer('a'), null);
  assert.equal(parsePointer('/a~2'), null);
  assert.equal(parsePointer('/a~'), null);
});
