// Region and list patch ops, applied through DjangoRT.applyPatch (synchronous without a morph).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { item, page, region } from './helpers.mjs';

const setup = (body, options) => {
  const p = page(body, options);
  const apply = (...ops) => p.RT.applyPatch(ops, { debug: false });
  const $ = (selector) => p.document.querySelector(selector);
  const $$ = (selector) => [...p.document.querySelectorAll(selector)];
  return { ...p, apply, $, $$ };
};

// The comment data between two nodes and their text, to compare whole regions at a glance.
const between = (start, end) => {
  const out = [];
  for (let n = start.nextSibling; n && n !== end; n = n.nextSibling) {
    out.push(n.nodeType === 8 ? `<!--${n.data}-->` : n.nodeType === 1 ? n.outerHTML : n.textContent);
  }
  return out.join('');
};
const inner = (p, id) => between(...p.RT.findRegion(id));
const listText = (p, selector = 'li') => p.$$(selector).map((el) => el.textContent).join(' ');

test('findRegion returns the two marker comments, or null', () => {
  const p = setup(`<div>${region('1', '<b>x</b>')}</div><p>${region('2.1')}</p>`);
  const [start, end] = p.RT.findRegion('1');
  assert.equal(start.data, 'rt:1');
  assert.equal(end.data, '/rt:1');
  assert.equal(start.nextSibling.outerHTML, '<b>x</b>');
  assert.equal(p.RT.findRegion(1)[0], start, 'a numeric id is the same id');
  assert.deepEqual([...p.RT.findRegion('2.1')].map((n) => n.data), ['rt:2.1', '/rt:2.1']);
  assert.equal(p.RT.findRegion('3'), null);
  assert.equal(p.RT.findRegion('2'), null, 'no prefix match');
});

test('findRegion wants the end marker as a sibling of the start', () => {
  const p = setup('<div><!--rt:1--><p>x<!--/rt:1--></p></div><div><!--rt:2-->y</div>');
  assert.equal(p.RT.findRegion('1'), null);
  assert.equal(p.RT.findRegion('2'), null);
});

test('findRegion finds regions that appeared after the last scan, and drops replaced ones', () => {
  const p = setup(`<div id="box">${region('1', 'a')}</div>`);
  const first = p.RT.findRegion('1')[0];
  // Markup changed behind the index's back, as a reply command would change it.
  p.$('#box').innerHTML = region('1', 'b') + region('2', 'c');
  const [start] = p.RT.findRegion('1');
  assert.notEqual(start, first);
  assert.ok(start.isConnected);
  assert.equal(inner(p, '2'), 'c');
  p.$('#box').innerHTML = '';
  assert.equal(p.RT.findRegion('1'), null);
});

test('a region op replaces what lies between the markers and keeps the markers', () => {
  const p = setup(`<p id="p">before ${region('1', 'old <b>bold</b>')} after</p>`);
  const [start, end] = p.RT.findRegion('1');
  assert.equal(p.apply({ o: 'region', id: '1', html: 'new <i>text</i>' }), true);
  assert.equal(p.$('#p').innerHTML, 'before <!--rt:1-->new <i>text</i><!--/rt:1--> after');
  assert.deepEqual([...p.RT.findRegion('1')], [start, end]);
  assert.equal(p.apply({ o: 'region', id: '1', html: '' }), true, 'and again, down to nothing');
  assert.equal(p.$('#p').innerHTML, 'before <!--rt:1--><!--/rt:1--> after');
  assert.equal(p.apply({ o: 'region', id: '1', html: 'back' }), true);
  assert.equal(p.$('#p').textContent, 'before back after');
});

test('table rows, options and list items parse in their context', () => {
  const p = setup(
    `<table><tbody>${region('t', '<tr><td>old</td></tr>')}</tbody></table>` +
      `<select id="s">${region('s', '<option>a</option>')}</select>` +
      `<ul>${region('u', '<li>old</li>')}</ul>`,
  );
  assert.equal(
    p.apply(
      { o: 'region', id: 't', html: '<tr><td>1</td></tr><tr><td>2</td></tr>' },
      { o: 'region', id: 's', html: '<option value="x">x</option><option value="y" selected>y</option>' },
      { o: 'region', id: 'u', html: '<li>one</li><li>two</li>' },
    ),
    true,
  );
  const rows = p.$$('tbody > tr');
  assert.deepEqual(rows.map((tr) => tr.textContent), ['1', '2']);
  assert.equal(p.$('tbody').innerHTML, '<!--rt:t--><tr><td>1</td></tr><tr><td>2</td></tr><!--/rt:t-->');
  assert.deepEqual(p.$$('#s > option').map((o) => o.value), ['x', 'y']);
  assert.equal(p.$('#s').value, 'y');
  assert.equal(listText(p), 'one two');
});

test('scripts in a region are inserted inert, never run', () => {
  const p = setup(`<div>${region('1')}</div>`, { runScripts: 'dangerously' });
  p.window.ran = false;
  p.apply({ o: 'region', id: '1', html: '<script>window.ran = true</script>' });
  assert.equal(p.$('div script').textContent, 'window.ran = true');
  assert.equal(p.window.ran, false);
  // The control: this page does run scripts that are inserted as such.
  const script = p.document.createElement('script');
  script.textContent = 'window.ran = true';
  p.document.body.append(script);
  assert.equal(p.window.ran, true);
});

test('nested regions: both levels patch, before and after the outer one is replaced', () => {
  const p = setup(`<div>${region('3', `<p>${region('3.1', 'a')}</p>${region('3.2', 'b')}`)}</div>`);
  assert.equal(p.apply({ o: 'region', id: '3.1', html: 'A' }, { o: 'region', id: '3.2', html: 'B' }), true);
  assert.equal(p.$('div').textContent, 'AB');
  const oldInner = p.RT.findRegion('3.1')[0];
  p.apply({ o: 'region', id: '3', html: `<p>${region('3.1', 'x')}</p><em>${region('3.2', 'y')}</em>` });
  assert.equal(p.$('div').textContent, 'xy');
  const [start] = p.RT.findRegion('3.1');
  assert.notEqual(start, oldInner, 'the index follows the new markers');
  assert.ok(start.isConnected);
  assert.equal(p.apply({ o: 'region', id: '3.1', html: '1' }, { o: 'region', id: '3.2', html: '2' }), true);
  assert.equal(p.$('div').innerHTML, '<!--rt:3--><p><!--rt:3.1-->1<!--/rt:3.1--></p><em><!--rt:3.2-->2<!--/rt:3.2--></em><!--/rt:3-->');
});

test('an unknown region, a half region or a bad op make applyPatch report a miss, and the rest applies', () => {
  const p = setup(`<div>${region('1', 'a')}<!--rt:2-->b</div>`);
  assert.equal(p.apply({ o: 'region', id: '9', html: 'x' }, { o: 'region', id: '1', html: 'A' }), false);
  assert.equal(p.$('div').textContent, 'Ab');
  assert.equal(p.apply({ o: 'region', id: '2', html: 'x' }), false);
  assert.equal(p.apply(null, { o: 'region', id: '1', html: 'B' }), false);
  assert.equal(p.apply({ o: 'nope', id: '1', html: 'x' }), false, 'an op the client does not know');
  assert.equal(p.$('div').textContent, 'Bb');
  assert.equal(p.RT.applyPatch([], {}), true);
  assert.equal(p.RT.applyPatch(undefined, {}), true);
});

// --- what the user is doing survives a replacement

test('the focused input and its caret survive a replacement, found by id', () => {
  const p = setup(`<form>${region('1', '<label>Name <input id="name" value="Ada"></label>')}</form>`);
  const input = p.$('#name');
  input.focus();
  input.setSelectionRange(1, 2);
  p.apply({ o: 'region', id: '1', html: '<label>Your name <input id="name" value="Ada"></label> <span>!</span>' });
  const now = p.$('#name');
  assert.notEqual(now, input, 'a new element');
  assert.equal(p.document.activeElement, now);
  assert.deepEqual([now.selectionStart, now.selectionEnd], [1, 2]);
  assert.equal(p.$('label').textContent, 'Your name ');
});

test('without an id, the counterpart is the element with the same tag, type and name, in order', () => {
  const p = setup(`<form>${region('1', '<input name="q" value="a"><input name="q" value="b"><textarea name="q">c</textarea>')}</form>`);
  const second = p.$$('input')[1];
  second.focus();
  second.value = 'bee';
  second.setSelectionRange(3, 3);
  p.apply({ o: 'region', id: '1', html: '<input name="q" value="a"><input name="q" value="b"><textarea name="q">c</textarea>' });
  const inputs = p.$$('input');
  assert.equal(p.document.activeElement, inputs[1]);
  assert.deepEqual(inputs.map((i) => i.value), ['a', 'bee']);
  assert.deepEqual([inputs[1].selectionStart, inputs[1].selectionEnd], [3, 3]);
});

test('focus and caret in a textarea survive too', () => {
  const p = setup(`<div>${region('1', '<textarea id="t">hello</textarea>')}</div>`);
  const area = p.$('#t');
  area.focus();
  area.value = 'hello world';
  area.setSelectionRange(2, 5);
  p.apply({ o: 'region', id: '1', html: '<textarea id="t">hello</textarea><p>count: 5</p>' });
  assert.equal(p.document.activeElement, p.$('#t'));
  assert.equal(p.$('#t').value, 'hello world');
  assert.deepEqual([p.$('#t').selectionStart, p.$('#t').selectionEnd], [2, 5]);
});

test('focus outside the region stays put; a focused element without counterpart is let go', () => {
  const p = setup(`<input id="out">${region('1', '<input id="gone">')}`);
  p.$('#out').focus();
  p.apply({ o: 'region', id: '1', html: '<input id="gone2">' });
  assert.equal(p.document.activeElement, p.$('#out'));
  p.$('#gone2').focus();
  p.apply({ o: 'region', id: '1', html: '<p>no input</p>' });
  assert.equal(p.document.activeElement, p.document.body);
});

test('a typed value is kept when the server did not change the default, replaced when it did', () => {
  const p = setup(`<form>${region('1', '<input id="a" value="x"><input name="b" value="y"><textarea id="c">z</textarea>')}</form>`);
  p.$('#a').value = 'typed a';
  p.$('[name=b]').value = 'typed b';
  p.$('#c').value = 'typed c';
  p.apply({ o: 'region', id: '1', html: '<input id="a" value="x"><input name="b" value="NEW"><textarea id="c">z</textarea>' });
  assert.equal(p.$('#a').value, 'typed a', 'same default: the user wins');
  assert.equal(p.$('[name=b]').value, 'NEW', 'the server changed it: the server wins');
  assert.equal(p.$('#c').value, 'typed c');
  assert.equal(p.$('#a').defaultValue, 'x', 'the markup stays the server\'s');
  // An untouched field simply takes the server's new default.
  p.apply({ o: 'region', id: '1', html: '<input id="a" value="x2"><input name="b" value="NEW2"><textarea id="c">z2</textarea>' });
  assert.deepEqual([p.$('#a').value, p.$('[name=b]').value, p.$('#c').value], ['x2', 'NEW2', 'z2']);
});

test('checkboxes, radios and selects keep the user\'s choice under the same rule', () => {
  const p = setup(
    `<form>${region(
      '1',
      '<input type="checkbox" id="cb"><input type="checkbox" id="cb2" checked>' +
        '<input type="radio" name="r" value="1" checked><input type="radio" name="r" value="2">' +
        '<select id="s"><option>a</option><option>b</option></select>' +
        '<select id="s2"><option>a</option><option selected>b</option></select>',
    )}</form>`,
  );
  p.$('#cb').checked = true;
  p.$('#cb2').checked = false;
  p.$('[name=r][value="2"]').checked = true;
  p.$('#s').value = 'b';
  p.$('#s2').value = 'a';
  p.apply({
    o: 'region',
    id: '1',
    html:
      '<input type="checkbox" id="cb"><input type="checkbox" id="cb2">' +
      '<input type="radio" name="r" value="1" checked><input type="radio" name="r" value="2">' +
      '<select id="s"><option>a</option><option>b</option></select>' +
      '<select id="s2"><option>a</option><option>b</option><option selected>c</option></select>',
  });
  assert.equal(p.$('#cb').checked, true, 'default unchanged: the user\'s tick stays');
  assert.equal(p.$('#cb2').checked, false, 'the server unticked it: unticked');
  assert.equal(p.$('[name=r]:checked').value, '2');
  assert.equal(p.$('#s').value, 'b');
  assert.equal(p.$('#s2').value, 'c', 'the server changed the default selection');
});

test('a select nobody touched is not mistaken for a choice: it shows the new default', () => {
  const p = setup(`<form>${region('1', '<select id="s"><option>a</option><option>b</option></select>')}</form>`);
  assert.equal(p.$('#s').value, 'a', 'the first option, with no selected attribute');
  p.apply({ o: 'region', id: '1', html: '<select id="s"><option>z</option><option>a</option></select>' });
  assert.equal(p.$('#s').value, 'z');
});

// --- keyed lists

const LIST = (...keys) => `<ul>${region('4', keys.map((k) => item('4', k, `<li>${k}</li>`)).join(''))}</ul>`;
const li = (k) => `<li>${k}</li>`;

test('list: insert at the start, in the middle and at the end', () => {
  const p = setup(LIST('b', 'd'));
  const [b, d] = p.$$('li');
  assert.equal(p.apply({ o: 'list', id: '4', keys: ['a', 'b', 'c', 'd', 'e'], items: { a: li('a'), c: li('c'), e: li('e') } }), true);
  assert.equal(listText(p), 'a b c d e');
  const now = p.$$('li');
  assert.equal(now[1], b);
  assert.equal(now[3], d);
  assert.equal(
    p.$('ul').innerHTML,
    '<!--rt:4-->' + ['a', 'b', 'c', 'd', 'e'].map((k) => item('4', k, li(k))).join('') + '<!--/rt:4-->',
  );
});

test('list: numeric keys, and items regions can be patched later', () => {
  const p = setup(LIST());
  p.apply({ o: 'list', id: '4', keys: [12, 3], items: { 12: `<li>${region('4#12.2', 'x')}</li>`, 3: li(3) } });
  assert.equal(listText(p), 'x 3');
  assert.equal(p.apply({ o: 'region', id: '4#12.2', html: 'y' }, { o: 'region', id: '4#3', html: li('three') }), true);
  assert.equal(listText(p), 'y three');
});

test('list: items missing from keys are removed, with their markers', () => {
  const p = setup(LIST('a', 'b', 'c', 'd'));
  const [a, , c] = p.$$('li');
  assert.equal(p.apply({ o: 'list', id: '4', keys: ['a', 'c'], items: {} }), true);
  assert.equal(listText(p), 'a c');
  assert.deepEqual(p.$$('li'), [a, c]);
  assert.equal(p.$('ul').innerHTML, '<!--rt:4-->' + item('4', 'a', li('a')) + item('4', 'c', li('c')) + '<!--/rt:4-->');
  assert.equal(p.RT.findRegion('4#b'), null);
});

test('list: a reorder moves only the items out of place', () => {
  const p = setup(LIST('a', 'b', 'c', 'd', 'e'));
  const before = Object.fromEntries(p.$$('li').map((el) => [el.textContent, el]));
  // Moving "a" to the end: b, c, d, e are already in order and must not be touched.
  const input = p.document.createElement('input');
  before.c.append(input);
  input.focus();
  const moved = [];
  const observer = new p.window.MutationObserver(() => {});
  observer.observe(p.$('ul'), { childList: true });
  assert.equal(p.apply({ o: 'list', id: '4', keys: ['b', 'c', 'd', 'e', 'a'], items: {} }), true);
  for (const record of observer.takeRecords()) moved.push(...[...record.removedNodes].filter((n) => n.nodeType === 1));
  assert.equal(listText(p), 'b c d e a');
  assert.deepEqual(moved.map((n) => n.textContent), ['a'], 'only a was moved');
  assert.deepEqual(p.$$('li'), ['b', 'c', 'd', 'e', 'a'].map((k) => before[k]), 'same elements');
  assert.equal(p.document.activeElement, input, 'the input in an item that did not move kept focus');
});

test('list: a shuffle ends in the right order, markers included, and refocuses a moved input', () => {
  const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
  const p = setup(LIST(...keys));
  const input = p.document.createElement('input');
  p.$$('li')[5].append(input); // f
  input.focus();
  input.value = 'typing';
  input.setSelectionRange(2, 4);
  const order = ['f', 'c', 'a', 'e', 'b', 'd'];
  assert.equal(p.apply({ o: 'list', id: '4', keys: order, items: {} }), true);
  assert.equal(listText(p), order.join(' '));
  assert.equal(
    p.$('ul').innerHTML.replace('<input>', ''),
    '<!--rt:4-->' + order.map((k) => item('4', k, li(k))).join('') + '<!--/rt:4-->',
  );
  assert.equal(p.document.activeElement, input);
  assert.deepEqual([input.selectionStart, input.selectionEnd], [2, 4]);
  // Reversed, then back: every permutation goes through the same path.
  p.apply({ o: 'list', id: '4', keys: [...order].reverse(), items: {} });
  assert.equal(listText(p), [...order].reverse().join(' '));
  p.apply({ o: 'list', id: '4', keys, items: {} });
  assert.equal(listText(p), keys.join(' '));
});

test('list: an update replaces one item\'s content and keeps its neighbours and the user\'s state', () => {
  const p = setup(`<ul>${region('4', ['a', 'b', 'c'].map((k) => item('4', k, `<li>${k} <input name="n" value="${k}"></li>`)).join(''))}</ul>`);
  const [a, b, c] = p.$$('li');
  const input = b.querySelector('input');
  input.focus();
  input.value = 'b typed';
  assert.equal(p.apply({ o: 'list', id: '4', keys: ['a', 'b', 'c'], items: { b: '<li>B! <input name="n" value="b"></li>' } }), true);
  const now = p.$$('li');
  assert.equal(now[0], a);
  assert.equal(now[2], c);
  assert.notEqual(now[1], b);
  assert.equal(now[1].firstChild.textContent, 'B! ');
  assert.equal(p.document.activeElement, now[1].querySelector('input'));
  assert.equal(now[1].querySelector('input').value, 'b typed');
});

test('list: update, insert, remove and reorder in one op', () => {
  const p = setup(LIST('a', 'b', 'c'));
  const c = p.$$('li')[2];
  p.apply({ o: 'list', id: '4', keys: ['c', 'x', 'a'], items: { x: li('x'), a: li('A') } });
  assert.equal(listText(p), 'c x A');
  assert.equal(p.$$('li')[0], c);
});

test('list: empty to items and items to empty through region ops, then list ops again', () => {
  const p = setup(LIST());
  assert.equal(p.apply({ o: 'region', id: '4', html: item('4', 'a', li('a')) + item('4', 'b', li('b')) }), true);
  assert.equal(listText(p), 'a b');
  assert.equal(p.apply({ o: 'list', id: '4', keys: ['b', 'a'], items: {} }), true);
  assert.equal(listText(p), 'b a');
  assert.equal(p.apply({ o: 'region', id: '4', html: '' }), true);
  assert.equal(p.$('ul').innerHTML, '<!--rt:4--><!--/rt:4-->');
  assert.equal(p.apply({ o: 'list', id: '4', keys: ['z'], items: { z: li('z') } }), true);
  assert.equal(listText(p), 'z');
});

test('list: a key neither on the page nor given is a desync, and nothing is touched', () => {
  const p = setup(LIST('a', 'b'));
  const html = p.$('ul').innerHTML;
  assert.equal(p.apply({ o: 'list', id: '4', keys: ['b', 'zz', 'a'], items: { a: li('A') } }), false);
  assert.equal(p.$('ul').innerHTML, html);
  assert.equal(p.apply({ o: 'list', id: '4', keys: ['constructor'], items: {} }), false, 'no prototype key counts as given');
  assert.equal(p.apply({ o: 'list', id: '9', keys: [], items: {} }), false, 'unknown list');
});

test('list: other regions between items and text between items are left alone', () => {
  const p = setup(`<div>${region('4', `\n${item('4', 'a', 'A')}\n${item('4', 'b', 'B')}\n`)}</div>`);
  assert.equal(p.apply({ o: 'list', id: '4', keys: ['a', 'b', 'c'], items: { c: 'C' } }), true);
  assert.equal(p.$('div').textContent, '\nA\nB\nC');
});
