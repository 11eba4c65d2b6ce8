import assert from 'node:assert/strict';
import { test } from 'node:test';

import { page, plain } from './helpers.mjs';

const FORM = `
  <input id="text" value="hello">
  <input id="num" type="number" value="42">
  <textarea id="area">line 1
line 2</textarea>
  <select id="one"><option value="a">A</option><option value="b" selected>B</option></select>
  <select id="many" multiple>
    <option value="x" selected>X</option><option value="y">Y</option><option value="z" selected>Z</option>
  </select>
  <select id="none" multiple><option value="x">X</option></select>
  <input id="yes" type="checkbox" checked>
  <input id="no" type="checkbox">
  <input id="size-s" type="radio" name="size" value="s">
  <input id="size-m" type="radio" name="size" value="m" checked>
  <input id="color-r" type="radio" name="color" value="red">
  <form id="f1"><input id="f1-a" type="radio" name="pick" value="one" checked></form>
  <form id="f2"><input id="f2-a" type="radio" name="pick" value="two"></form>
  <input id="outside" type="radio" name="pick" value="three" form="f2" checked>
  <p id="para">Some <b>bold</b> text</p>
  <button id="btn" value="v">Press</button>
  <form id="full">
    <input name="title" value="T">
    <input name="tag" value="a"><input name="tag" value="b"><input name="tag" value="c">
    <input type="checkbox" name="agree" value="on" checked>
    <input type="checkbox" name="spam" value="on">
    <input type="file" name="upload">
    <select name="multi" multiple><option selected>p</option><option selected>q</option></select>
    <input name="__proto__" value="odd">
    <input name="constructor" value="odd too">
    <textarea name="body">b</textarea>
    <button name="go" value="1">Go</button>
  </form>
  <form id="empty"></form>`;

const { RT, document } = page(FORM);
const value = (selector) => plain(RT.fieldValue(document.querySelector(selector)));

test('text-like inputs, textarea and single select give their value', () => {
  assert.equal(value('#text'), 'hello');
  assert.equal(value('#num'), '42');
  assert.equal(value('#area'), 'line 1\nline 2');
  assert.equal(value('#one'), 'b');
});

test('select[multiple] gives the array of selected values', () => {
  assert.deepEqual(value('#many'), ['x', 'z']);
  assert.deepEqual(value('#none'), []);
});

test('a checkbox gives a boolean', () => {
  assert.equal(value('#yes'), true);
  assert.equal(value('#no'), false);
});

test('a radio gives the checked value of its group, or null', () => {
  assert.equal(value('#size-s'), 'm');
  assert.equal(value('#size-m'), 'm');
  assert.equal(value('#color-r'), null);
});

test('a radio group is scoped to its form owner', () => {
  assert.equal(value('#f1-a'), 'one');
  // f2's own radio is unchecked, but the one associated by form="f2" is.
  assert.equal(value('#f2-a'), 'three');
});

test('a form gives its fields: repeated names as arrays, files skipped', () => {
  assert.deepEqual(value('#full'), {
    title: 'T',
    tag: ['a', 'b', 'c'],
    agree: 'on',
    multi: ['p', 'q'],
    ['__proto__']: 'odd', // computed: an own key, as JSON.parse makes it
    constructor: 'odd too',
    body: 'b',
  });
  const raw = RT.fieldValue(document.querySelector('#full'));
  assert.equal(raw.__proto__, 'odd', 'a field, not the prototype');
  assert.deepEqual(value('#empty'), {});
});

test('any other element gives its text', () => {
  assert.equal(value('#para'), 'Some bold text');
  assert.equal(value('#btn'), 'Press');
});

test('gather maps kwargs to values; no match or a bad selector gives null', () => {
  const got = plain(
    RT.gather({ text: '#text', flags: '#many', missing: '#nope', broken: '##[', form: '#full input[name=title]' }),
  );
  assert.deepEqual(got, { text: 'hello', flags: ['x', 'z'], missing: null, broken: null, form: 'T' });
  assert.deepEqual(plain(RT.gather(undefined)), {});
  assert.deepEqual(plain(RT.gather({})), {});
});

test('gather reads the current state, not the markup', () => {
  document.querySelector('#text').value = 'typed';
  document.querySelector('#no').checked = true;
  assert.deepEqual(plain(RT.gather({ t: '#text', c: '#no' })), { t: 'typed', c: true });
  document.querySelector('#text').value = 'hello';
  document.querySelector('#no').checked = false;
});

test('target describes the element that matched the binding', () => {
  const p = page(`
    <button id="save" name="action" value="save" data-item-id="7" data-kind="x">Save</button>
    <div class="row" data-pk="3">Row</div>
    <input name="q" value="query">
    <select id="s"><option value="o" selected>O</option></select>
    <textarea id="ta">t</textarea>`);
  const target = (selector) => plain(p.RT.targetOf(p.document.querySelector(selector)));
  assert.deepEqual(target('#save'), {
    id: 'save', tag: 'button', name: 'action', value: 'save', data: { itemId: '7', kind: 'x' },
  });
  assert.deepEqual(target('.row'), { id: null, tag: 'div', name: null, value: null, data: { pk: '3' } });
  assert.deepEqual(target('input'), { id: null, tag: 'input', name: 'q', value: 'query', data: {} });
  assert.equal(target('#s').value, 'o');
  assert.equal(target('#ta').value, 't');
});
