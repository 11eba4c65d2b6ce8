import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { SOURCE, page, plain } from './helpers.mjs';

const { RT } = page();
const P = RT.PROTOCOL;

// The sections themselves are compared with protocol.as_dict() by tests/test_protocol_sync.py.
test('PROTOCOL has a numeric version and numeric close codes', () => {
  assert.equal(P.version, 1);
  assert.equal(P.configAttribute, 'data-rt-config');
  for (const code of Object.values(P.close)) assert.equal(typeof code, 'number');
  assert.deepEqual(plain(P.close), {
    MAX_AGE: 4000, JOIN_TIMEOUT: 4400, INVALID_TOKEN: 4401, FORBIDDEN: 4403, TOKEN_EXPIRED: 4408,
    VERSION_MISMATCH: 4426, TOO_MANY_CONNECTIONS: 4429, SESSION_ENDED: 4440, ACCESS_REVOKED: 4443,
  });
  assert.equal(P.frames.JOIN, 'join');
  assert.equal(P.keys.TYPE, 't');
});

test('PROTOCOL is frozen all the way down', () => {
  assert.ok(Object.isFrozen(P));
  for (const [name, section] of Object.entries(P)) {
    if (typeof section === 'object') assert.ok(Object.isFrozen(section), name);
  }
  assert.throws(() => {
    'use strict';
    P.frames.JOIN = 'x';
  }, TypeError);
  assert.equal(P.frames.JOIN, 'join');
});

test('dump_protocol.mjs prints the same PROTOCOL without a DOM', () => {
  const script = fileURLToPath(new URL('./dump_protocol.mjs', import.meta.url));
  const out = execFileSync(process.execPath, [script], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), plain(P));
  assert.equal(out.trim().split('\n').length, 1);
});

test('outside PROTOCOL, rt.js spells no protocol value as a string literal', () => {
  const start = SOURCE.indexOf('const PROTOCOL = deepFreeze({');
  const end = SOURCE.indexOf('\n  });', start);
  assert.ok(start > 0 && end > start);
  const rest = SOURCE.slice(0, start) + SOURCE.slice(end);
  const values = new Set();
  const collect = (v) => (v && typeof v === 'object' ? Object.values(v).forEach(collect) : values.add(String(v)));
  collect(P);
  const literals = [...rest.matchAll(/'((?:[^'\\\n]|\\.)*)'|`((?:[^`\\]|\\.)*)`/g)].map((m) => m[1] ?? m[2]);
  assert.ok(literals.length > 10, 'the scan found the literals');
  // DOM names that happen to equal a protocol value: the `name` and `id` attributes.
  const dom = new Set(['name', 'id']);
  const duplicated = literals.filter((lit) => values.has(lit) && !dom.has(lit));
  assert.deepEqual(duplicated, []);
});
