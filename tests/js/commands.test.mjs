import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fakeLocation, page, plain, record } from './helpers.mjs';

const setup = (body, { debug = true, runScripts } = {}) => {
  const p = page(body, runScripts ? { runScripts } : {});
  const location = fakeLocation();
  const apply = (...cmds) => p.RT.applyCommands(cmds, { debug, location });
  const $ = (selector) => p.document.querySelector(selector);
  return { ...p, location, apply, $ };
};

// What django.utils.html.escape does to text that is not marked safe.
const escape = (text) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#x27;');

test('html replaces the inner HTML of every match', () => {
  const { apply, document } = setup('<div class="box">old</div><div class="box">old</div>');
  apply({ a: 'html', s: '.box', c: '<b>new</b>' });
  assert.deepEqual([...document.querySelectorAll('.box')].map((el) => el.innerHTML), ['<b>new</b>', '<b>new</b>']);
});

test('text sets text, never markup', () => {
  const { apply, $ } = setup('<p id="p"><i>old</i></p>');
  apply({ a: 'text', s: '#p', c: '<b>not bold</b>' });
  assert.equal($('#p').textContent, '<b>not bold</b>');
  assert.equal($('#p').children.length, 0);
});

test('append and prepend insert HTML at the end and start', () => {
  const { apply, $ } = setup('<ul id="l"><li>2</li></ul>');
  apply({ a: 'append', s: '#l', c: '<li>3</li>' }, { a: 'prepend', s: '#l', c: '<li>1</li>' });
  assert.deepEqual([...$('#l').children].map((li) => li.textContent), ['1', '2', '3']);
});

test('replace swaps the element itself', () => {
  const { apply, $, document } = setup('<div id="wrap"><span id="old">x</span></div>');
  apply({ a: 'replace', s: '#old', c: '<em id="new">y</em>' });
  assert.equal($('#old'), null);
  assert.equal($('#wrap').innerHTML, '<em id="new">y</em>');
  assert.equal(document.querySelectorAll('#new').length, 1);
});

test('remove removes every match', () => {
  const { apply, document } = setup('<p class="x">1</p><p class="x">2</p><p class="y">3</p>');
  apply({ a: 'remove', s: '.x', c: null });
  assert.deepEqual([...document.querySelectorAll('p')].map((el) => el.textContent), ['3']);
});

test('attr sets, empties and removes attributes', () => {
  const { apply, $ } = setup('<button id="b" title="old" hidden data-gone="1" aria-x="1">b</button>');
  apply({ a: 'attr', s: '#b', c: { title: 'new', disabled: true, hidden: false, 'data-gone': null, 'aria-level': 3, 'aria-x': 'y' } });
  const b = $('#b');
  assert.equal(b.getAttribute('title'), 'new');
  assert.equal(b.getAttribute('disabled'), '');
  assert.ok(!b.hasAttribute('hidden'));
  assert.ok(!b.hasAttribute('data-gone'));
  assert.equal(b.getAttribute('aria-level'), '3');
  assert.equal(b.getAttribute('aria-x'), 'y');
});

test('add_class and remove_class take a space-separated list', () => {
  const { apply, $ } = setup('<div id="d" class="a b c"></div>');
  apply({ a: 'add_class', s: '#d', c: '  x   y ' }, { a: 'remove_class', s: '#d', c: 'a c' });
  assert.deepEqual([...$('#d').classList], ['b', 'x', 'y']);
  apply({ a: 'add_class', s: '#d', c: '' }, { a: 'remove_class', s: '#d', c: null });
  assert.deepEqual([...$('#d').classList], ['b', 'x', 'y']);
});

test('value sets form controls without dispatching any event', () => {
  const { apply, $, document } = setup(`
    <input id="t" value="old"><textarea id="ta">old</textarea>
    <input id="cb" type="checkbox"><input id="r" type="radio" name="r">
    <select id="one"><option value="a">A</option><option value="b">B</option></select>
    <select id="many" multiple><option value="1" selected>1</option><option value="2">2</option><option value="3">3</option></select>`);
  const inputs = record(document, 'input');
  const changes = record(document, 'change');
  apply(
    { a: 'value', s: '#t', c: 'new' },
    { a: 'value', s: '#ta', c: 'text' },
    { a: 'value', s: '#cb', c: true },
    { a: 'value', s: '#r', c: true },
    { a: 'value', s: '#one', c: 'b' },
    { a: 'value', s: '#many', c: ['2', '3'] },
  );
  assert.equal($('#t').value, 'new');
  assert.equal($('#ta').value, 'text');
  assert.equal($('#cb').checked, true);
  assert.equal($('#r').checked, true);
  assert.equal($('#one').value, 'b');
  assert.deepEqual([...$('#many').selectedOptions].map((o) => o.value), ['2', '3']);
  apply({ a: 'value', s: '#t', c: null }, { a: 'value', s: '#cb', c: false }, { a: 'value', s: '#many', c: null });
  assert.equal($('#t').value, '');
  assert.equal($('#cb').checked, false);
  assert.deepEqual([...$('#many').selectedOptions], []);
  assert.deepEqual([inputs.length, changes.length], [0, 0]);
});

test('focus focuses the first match only', () => {
  const { apply, document } = setup('<input class="f" id="one"><input class="f" id="two">');
  const focused = record(document.querySelector('#two'), 'focus');
  apply({ a: 'focus', s: '.f', c: null });
  assert.equal(document.activeElement.id, 'one');
  assert.equal(focused.length, 0);
});

test('redirect navigates to http(s) and relative URLs, never javascript:', () => {
  const { apply, location, logs } = setup('');
  apply({ a: 'redirect', s: null, c: '/next/' }, { a: 'redirect', s: null, c: 'https://other.test/x' });
  assert.deepEqual(location.assigned, ['/next/', 'https://other.test/x']);
  apply({ a: 'redirect', s: null, c: 'javascript:alert(1)' }, { a: 'redirect', s: null, c: ' JavaScript:alert(1)' });
  assert.deepEqual(location.assigned, ['/next/', 'https://other.test/x']);
  assert.ok(logs.warn.some((line) => line.includes('refused')));
});

test('dispatch fires a bubbling CustomEvent on the matches, or on document', () => {
  const { apply, document, $ } = setup('<div id="w"><span class="t"></span><span class="t"></span></div>');
  const onWrap = record($('#w'), 'cart:updated');
  const onDocument = record(document, 'cart:updated');
  apply({ a: 'dispatch', s: '.t', c: { name: 'cart:updated', detail: { count: 3 } } });
  assert.equal(onWrap.length, 2);
  assert.deepEqual(plain(onWrap[0].detail), { count: 3 });
  assert.ok(onWrap[0].bubbles);
  apply({ a: 'dispatch', s: null, c: { name: 'cart:updated', detail: null } });
  assert.equal(onDocument.length, 3);
  assert.equal(onDocument[2].target, document);
  assert.equal(onDocument[2].detail, null);
});

test('escaped text inserted as html stays inert text', () => {
  const payload = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>';
  const { apply, $, window } = setup('<div id="d"></div><div id="e"></div>', { runScripts: 'dangerously' });
  apply({ a: 'html', s: '#d', c: escape(payload) }, { a: 'append', s: '#e', c: escape(payload) });
  for (const el of [$('#d'), $('#e')]) {
    assert.equal(el.textContent, payload);
    assert.equal(el.querySelectorAll('img, script').length, 0);
  }
  assert.equal(window.pwned, undefined);
});

test('a <script> inserted by html, append, prepend or replace does not run', () => {
  const { apply, document, window, $ } = setup('<div id="d"></div><div id="r"></div>', { runScripts: 'dangerously' });
  // Scripts do run in this page: the test would prove nothing otherwise.
  const control = document.createElement('script');
  control.textContent = 'window.control = 1';
  document.body.append(control);
  assert.equal(window.control, 1);
  apply(
    { a: 'html', s: '#d', c: '<script>window.ran = "html"</script>' },
    { a: 'append', s: '#d', c: '<script>window.ran = "append"</script>' },
    { a: 'prepend', s: '#d', c: '<script>window.ran = "prepend"</script>' },
    { a: 'replace', s: '#r', c: '<div><script>window.ran = "replace"</script></div>' },
  );
  assert.equal($('#d').querySelectorAll('script').length, 3, 'inserted, as inert nodes');
  assert.equal(window.ran, undefined);
});

test('a selector that matches nothing warns in debug mode and is silent otherwise', () => {
  const loud = setup('<p id="p"></p>', { debug: true });
  loud.apply({ a: 'text', s: '#missing', c: 'x' }, { a: 'text', s: '#p', c: 'after' });
  assert.ok(loud.logs.warn.some((line) => line.includes('#missing')));
  assert.equal(loud.$('#p').textContent, 'after');
  const quiet = setup('<p id="p"></p>', { debug: false });
  quiet.apply({ a: 'text', s: '#missing', c: 'x' }, { a: 'text', s: '#p', c: 'after' });
  assert.deepEqual(quiet.logs.warn, []);
  assert.equal(quiet.$('#p').textContent, 'after');
});

test('an invalid selector or a failing command never stops the following ones', () => {
  const { apply, $, logs } = setup('<p id="p"></p><div id="d"></div>', { debug: false });
  assert.doesNotThrow(() =>
    apply(
      { a: 'html', s: '##not[valid', c: 'x' },
      { a: 'dispatch', s: '#d', c: null }, // no event name: the command throws inside
      { a: 'redirect', s: null, c: 'http://[bad' }, // an invalid URL
      { a: 'text', s: '#p', c: 'still applied' },
      { a: 'no_such_action', s: '#p', c: 'x' },
      null,
      { a: 'add_class', s: '#p', c: 'done' },
    ),
  );
  assert.equal($('#p').textContent, 'still applied');
  assert.ok($('#p').classList.contains('done'));
  assert.equal(logs.warn.filter((line) => line.includes('command failed')).length, 4);
  assert.doesNotThrow(() => apply());
});

test('a reply with a bad command still settles its ref and applies the rest', () => {
  const p = page('<button id="b">b</button><p id="p"></p>');
  const location = fakeLocation();
  const rt = p.RT.start({ url: '/rt/ws/', token: 't', events: [{ e: 'click', s: '#b', h: 'h' }] }, { WebSocket: p.Socket, location });
  p.Socket.last.join();
  p.document.querySelector('#b').click();
  assert.doesNotThrow(() =>
    p.Socket.last.receive({ t: 'reply', ref: 1, cmds: [{ a: 'html', s: ':::', c: '' }, { a: 'text', s: '#p', c: 'ok' }] }),
  );
  assert.equal(p.document.querySelector('#p').textContent, 'ok');
  assert.equal(rt.pending.size, 0);
  assert.ok(!p.document.querySelector('#b').classList.contains('rt-loading'));
});

test('reset resets a form to its markup, and ignores what is not a form', () => {
  const { apply, $ } = setup('<form id="f"><input id="a" value="x"><input type="checkbox" id="c"></form><p id="p">t</p>');
  $('#a').value = 'typed';
  $('#c').checked = true;
  apply({ a: 'reset', s: '#f', c: null }, { a: 'reset', s: '#p', c: null });
  assert.deepEqual([$('#a').value, $('#c').checked, $('#p').textContent], ['x', false, 't']);
});
