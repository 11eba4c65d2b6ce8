// What keeps an open page equal to a reload on the client: the head op (title, <style>),
// the stale op (the page is told, and shows it in DEBUG until a patch brings it back), and a
// morph that keeps each keyed row the same element, so focus and typing stay with their row.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { flush, item, region, started } from './helpers.mjs';

const IDIOMORPH = readFileSync(
  new URL('../../src/django_rt/static/django_rt/vendor/idiomorph/idiomorph.js', import.meta.url),
  'utf8',
);
const SCRIPTS = '<script type="application/json" data-rt-config>{"v":1}</script><script src="/static/django_rt/rt.js"></script>';

const live = (body, config = {}) => {
  const p = started(body, { hash: 'h0', ...config });
  p.ws().join();
  p.window.CSS ||= { escape: (s) => String(s).replace(/["\\]/g, '\\$&') };
  p.window.eval(IDIOMORPH);
  const patch = (...ops) => p.ws().receive({ t: 'patch', ops });
  const $ = (selector) => p.document.querySelector(selector);
  const resyncs = () => p.ws().sent.filter((f) => f.t === 'resync');
  return { ...p, patch, $, resyncs };
};

test('a head op sets the title and morphs the other head elements, scripts left alone', async () => {
  const p = live(`<p>x</p>${SCRIPTS}`);
  p.document.head.innerHTML = '<title>Old</title><style>p { width: 1px }</style><script>var s = 1;</script>';
  const script = p.document.head.querySelector('script');
  p.patch({ o: 'head', title: 'New & more' });
  await flush();
  assert.equal(p.document.title, 'New & more');
  assert.equal(p.document.head.querySelector('style').textContent, 'p { width: 1px }');
  p.patch({ o: 'head', html: '<style>p { width: 4px }</style><meta name="n" content="2">' });
  await flush();
  assert.equal(p.document.head.querySelector('style').textContent, 'p { width: 4px }');
  assert.equal(p.document.head.querySelector('meta[name=n]').content, '2');
  assert.equal(p.document.head.querySelector('script'), script, 'the script stays');
  assert.equal(p.document.title, 'New & more', 'the title element stays');
  assert.deepEqual(p.resyncs(), []);
});

test('a stale op fires rt:error and, in DEBUG, shows a notice until the next patch', async () => {
  const p = live(`<main>${region('1', 'a')}</main>${SCRIPTS}`);
  const errors = [];
  p.document.addEventListener('rt:error', (e) => errors.push(e.detail.code + ': ' + e.detail.message));
  p.patch({ o: 'stale', message: 'live update failed: RuntimeError' });
  await flush();
  assert.deepEqual(errors, ['stale: live update failed: RuntimeError']);
  const notice = p.$('#rt-notice');
  assert.ok(notice && notice.textContent.includes('RuntimeError'));
  assert.equal(notice.parentNode, p.document.documentElement, 'outside the body that morphs replace');
  assert.equal(p.$('main').textContent, 'a', 'the page is left as it was');
  assert.deepEqual(p.resyncs(), [], 'a stale op is not a miss');
  p.patch({ o: 'region', id: '1', html: 'b' });
  await flush();
  assert.equal(p.$('#rt-notice'), null, 'up to date again');
});

test('without DEBUG a stale op shows no notice', async () => {
  const p = live(`<main>x</main>${SCRIPTS}`, { debug: false });
  p.patch({ o: 'stale', message: 'm' });
  await flush();
  assert.equal(p.$('#rt-notice'), null);
});

test('in DEBUG an error frame shows a notice too, until a reply that went well', async () => {
  const p = live(`<main>x</main>${SCRIPTS}`);
  p.ws().receive({ t: 'error', ref: null, code: 'handler_error', message: 'save() failed: ValueError' });
  await flush();
  assert.ok(p.$('#rt-notice').textContent.includes('handler_error: save() failed: ValueError'));
  p.patch({ o: 'region', id: 'none', html: '' });
  await flush();
  assert.ok(p.$('#rt-notice'), 'a patch does not end an error notice');
  p.ws().receive({ t: 'reply', ref: null, cmds: [] });
  await flush();
  assert.equal(p.$('#rt-notice'), null);
});

test('a morph keeps each keyed row the same element: focus and typing stay with their row', async () => {
  const row = (key, name) => item('1', key, `<li><input class="name" value="${name}"></li>`);
  const p = live(`<h1 title="3">rows</h1><ul>${region('1', row(1, 'one') + row(2, 'two') + row(3, 'three'))}</ul>${SCRIPTS}`);
  const three = p.$('ul li:nth-child(3) input');
  three.focus();
  three.value = 'three, half-typed';
  p.patch({ o: 'morph', html: `<h1 title="2">rows</h1><ul>${region('1', row(1, 'one') + row(3, 'three'))}</ul>` });
  await flush();
  const inputs = [...p.document.querySelectorAll('ul input')];
  assert.equal(inputs.length, 2);
  assert.equal(inputs[1], three, 'the third row is the same element');
  assert.equal(three.value, 'three, half-typed');
  assert.equal(p.document.activeElement, three);
  assert.equal(p.$('h1').title, '2');
  assert.equal(p.document.querySelectorAll('[data-rt-item], li[id]').length, 0, 'no borrowed id is left');
});

test('an attrs op sets attribute values by place, keeps what the user typed, and misses on another tag', async () => {
  const p = live(
    `<ul>${region('1', item('1', '5', '<li><strong>old</strong> <input value="old" aria-label="Rename old"> <button aria-label="Delete old">x</button></li>'))}</ul>`,
  );
  const input = p.$('input');
  input.value = 'typing';
  p.patch({
    o: 'attrs',
    id: '1#5',
    set: [
      [2, 'input', 'aria-label', 'Rename new & more'],
      [3, 'button', 'aria-label', 'Delete new'],
    ],
  });
  await flush();
  assert.equal(p.$('input'), input, 'the same element');
  assert.equal(input.getAttribute('aria-label'), 'Rename new & more');
  assert.equal(input.value, 'typing', 'what the user typed stays');
  assert.equal(p.$('button').getAttribute('aria-label'), 'Delete new');
  assert.deepEqual(p.resyncs(), []);
  // Not the element the server counted: nothing is set, and the page asks for a resync.
  p.patch({ o: 'attrs', id: '1#5', set: [[1, 'input', 'value', 'wrong']] });
  await flush();
  assert.equal(p.$('strong').getAttribute('value'), null);
  assert.equal(p.resyncs().length, 1);
});
