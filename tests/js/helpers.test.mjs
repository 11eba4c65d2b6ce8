import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CLIENT, fakeLocation, page } from './helpers.mjs';

const { RT } = page();

test('keyMatches compares event.key case-insensitively', () => {
  assert.ok(RT.keyMatches({ key: 'Enter' }, 'enter'));
  assert.ok(RT.keyMatches({ key: 'enter' }, 'ENTER'));
  assert.ok(RT.keyMatches({ key: 'a' }, 'a'));
  assert.ok(RT.keyMatches({ key: 'A' }, 'a'), 'shift does not matter');
  assert.ok(!RT.keyMatches({ key: 'Tab' }, 'enter'));
  assert.ok(!RT.keyMatches({ key: 'Enter' }, 'ent'));
});

test('keyMatches understands the aliases', () => {
  assert.ok(RT.keyMatches({ key: 'Escape' }, 'esc'));
  assert.ok(RT.keyMatches({ key: 'Escape' }, 'escape'));
  assert.ok(RT.keyMatches({ key: ' ' }, 'space'));
  assert.ok(RT.keyMatches({ key: 'ArrowUp' }, 'up'));
  assert.ok(RT.keyMatches({ key: 'ArrowDown' }, 'down'));
  assert.ok(RT.keyMatches({ key: 'ArrowLeft' }, 'left'));
  assert.ok(RT.keyMatches({ key: 'ArrowRight' }, 'right'));
  assert.ok(RT.keyMatches({ key: 'ArrowRight' }, 'arrowright'));
  assert.ok(!RT.keyMatches({ key: 'ArrowUp' }, 'down'));
  assert.ok(!RT.keyMatches({ key: 'u' }, 'up'));
});

test('keyMatches rejects events without a key (autofill keydown, clicks)', () => {
  assert.ok(!RT.keyMatches({}, 'enter'));
  assert.ok(!RT.keyMatches({ key: undefined }, 'enter'));
  assert.ok(!RT.keyMatches({ key: 'Enter' }, 'constructor'));
  assert.ok(!RT.keyMatches({ key: 'constructor' }, 'toString'));
});

test('backoffDelay: full jitter over an exponential window capped at 8 s, floor 50 ms', () => {
  assert.equal(RT.backoffDelay(0, 1), 250);
  assert.equal(RT.backoffDelay(1, 1), 500);
  assert.equal(RT.backoffDelay(2, 1), 1000);
  assert.equal(RT.backoffDelay(5, 1), 8000);
  assert.equal(RT.backoffDelay(50, 1), 8000);
  assert.equal(RT.backoffDelay(3, 0.5), 1000);
  assert.equal(RT.backoffDelay(0, 0), 50);
  assert.equal(RT.backoffDelay(5, 0.001), 50);
  for (let attempt = 0; attempt < 12; attempt++) {
    for (let i = 0; i < 50; i++) {
      const delay = RT.backoffDelay(attempt);
      assert.ok(delay >= 50 && delay <= Math.min(8000, 250 * 2 ** attempt), `${attempt}: ${delay}`);
    }
  }
});

test('wsUrl turns a path into a same-host ws(s) URL and keeps absolute ones', () => {
  assert.equal(RT.wsUrl('/rt/ws/', fakeLocation('https://app.test:8443/x/')), 'wss://app.test:8443/rt/ws/');
  assert.equal(RT.wsUrl('/rt/ws/', fakeLocation('http://localhost:8000/')), 'ws://localhost:8000/rt/ws/');
  assert.equal(RT.wsUrl('wss://rt.example.com/ws/', fakeLocation('http://app.test/')), 'wss://rt.example.com/ws/');
  assert.equal(RT.wsUrl('ws://127.0.0.1:9000/ws/', fakeLocation('https://app.test/')), 'ws://127.0.0.1:9000/ws/');
});

test('window.DjangoRT exposes the API', () => {
  for (const name of ['start', 'gather', 'fieldValue', 'targetOf', 'keyMatches', 'applyCommands', 'backoffDelay', 'wsUrl']) {
    assert.equal(typeof RT[name], 'function', name);
  }
  assert.equal(RT.client, null, 'no config script, no client');
});

test('loading rt.js twice keeps the first client', () => {
  const p = page();
  const first = p.window.DjangoRT;
  p.window.eval(CLIENT);
  assert.equal(p.window.DjangoRT, first);
});
