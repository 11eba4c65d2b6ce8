// Bound values (RTView.bind): sent again after every join, and owned by the user while typed into.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { region, started } from './helpers.mjs';

const SEARCH = { e: 'input', s: '#q', h: 'rt_set_query', g: { value: '#q' }, sync: true };

test('after every join a bound value is sent with what its element holds', () => {
  const p = started('<input id="q" value="from url">', { events: [SEARCH] });
  p.ws().join('tok1');
  assert.deepEqual(p.ws().events().map((f) => [f.h, f.g]), [['rt_set_query', { value: 'from url' }]]);
  // The socket drops; the user types meanwhile; the rejoin tells the new view instance.
  p.document.querySelector('#q').value = 'typed offline';
  p.ws().serverClose(1006);
  p.rt.connect();
  p.ws().join('tok2');
  assert.deepEqual(p.ws().events().map((f) => f.g), [{ value: 'typed offline' }]);
});

test('a binding without sync is not sent on join, and a missing element sends nothing', () => {
  const p = started('<input id="other">', {
    events: [{ ...SEARCH, sync: undefined }, { ...SEARCH, s: '#absent', h: 'rt_set_gone' }],
  });
  p.ws().join('tok1');
  assert.deepEqual(p.ws().events(), []);
});

test('the focused bound field keeps its value whatever the server renders into it', () => {
  const p = started(`${region('1', '<input id="q" value="a"><input id="x" value="d">')}`, {
    events: [SEARCH],
  });
  p.ws().join('tok1');
  const q = p.document.querySelector('#q');
  q.focus();
  q.value = 'apr'; // typed on while the render of "ap" (its new markup) travelled
  p.document.querySelector('#x').value = 'typed x';
  p.RT.applyPatch([{ o: 'region', id: '1', html: '<input id="q" value="ap"><input id="x" value="d2">' }]);
  assert.equal(p.document.querySelector('#q').value, 'apr');
  assert.equal(p.document.activeElement.id, 'q');
  // Any other field keeps the usual rule: the server changed its markup, the server wins.
  assert.equal(p.document.querySelector('#x').value, 'd2');
  // Once the user left the field, the server's render applies again.
  p.document.querySelector('#q').blur();
  p.RT.applyPatch([{ o: 'region', id: '1', html: '<input id="q" value=""><input id="x" value="d2">' }]);
  assert.equal(p.document.querySelector('#q').value, '');
});
