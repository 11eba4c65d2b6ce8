// Patch frames over the socket: resync, morph (stubbed, lazily loaded and real idiomorph),
// ordering between frames, and the hash in the join frame.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { flush, item, plain, region, started } from './helpers.mjs';

const IDIOMORPH = readFileSync(
  new URL('../../src/django_rt/static/django_rt/vendor/idiomorph/idiomorph.js', import.meta.url),
  'utf8',
);
const MORPH_URL = '/static/django_rt/vendor/idiomorph/idiomorph.js';
// What a served page ends with: the configuration and the scripts, which a morph must keep.
const SCRIPTS = '<script type="application/json" data-rt-config>{"v":1}</script><script src="/static/django_rt/rt.js"></script>';

const live = (body, config = {}) => {
  const p = started(body, { hash: 'h0', ...config });
  p.ws().join();
  const patch = (...ops) => p.ws().receive({ t: 'patch', ops });
  const resyncs = () => p.ws().sent.filter((f) => f.t === 'resync');
  const $ = (selector) => p.document.querySelector(selector);
  const loader = () => [...p.document.querySelectorAll('script[src]')].filter((s) => s.getAttribute('src') === MORPH_URL);
  return { ...p, patch, resyncs, $, loader };
};

// An Idiomorph that records its calls and does a plain innerHTML-style swap of non-scripts.
const stubIdiomorph = (p) => {
  const calls = [];
  p.window.Idiomorph = {
    morph(target, html, options) {
      calls.push({ target, html, options });
      const keep = options.callbacks.beforeNodeRemoved;
      [...target.childNodes].forEach((n) => keep(n) !== false && n.remove());
      const t = p.document.createElement('template');
      t.innerHTML = html;
      target.prepend(...[...t.content.childNodes].filter((n) => options.callbacks.beforeNodeAdded(n) !== false));
    },
  };
  return calls;
};

// --- join

test('the join frame carries the render hash until the page is patched', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const p = started('', { token: 'tok', hash: 'abc123' });
  p.ws().open();
  assert.deepEqual(p.ws().sent, [{ t: 'join', v: 1, token: 'tok', hash: 'abc123' }]);
  p.ws().receive({ t: 'joined', v: 1, token: 'tok2' });
  p.ws().serverClose(1006);
  t.mock.timers.tick(10000);
  p.ws().open();
  assert.deepEqual(p.ws().sent, [{ t: 'join', v: 1, token: 'tok2', hash: 'abc123' }]);
  // A patched page no longer is the render the hash names (its data may even have
  // returned to it): the next join asks for a morph by sending no hash.
  p.ws().receive({ t: 'joined', v: 1, token: 'tok3' });
  p.ws().receive({ t: 'patch', ops: [] });
  p.ws().serverClose(1006);
  t.mock.timers.tick(10000);
  p.ws().open();
  assert.deepEqual(p.ws().sent, [{ t: 'join', v: 1, token: 'tok3', hash: null }]);
});

// --- patch frames and resync

test('a patch frame applies its ops in order, and a frame that found everything asks nothing', () => {
  const p = live(`<p>${region('1', 'a')}</p>`);
  p.patch({ o: 'region', id: '1', html: '<b>x</b>' }, { o: 'region', id: '1', html: '<i>y</i>' });
  assert.equal(p.$('p').innerHTML, '<!--rt:1--><i>y</i><!--/rt:1-->');
  assert.deepEqual(p.resyncs(), []);
});

test('a frame with misses sends exactly one resync, and still applies what it can', () => {
  const p = live(`<p>${region('1', 'a')}</p><ul>${region('4', item('4', 'a', 'A'))}</ul>`, { debug: false });
  p.patch(
    { o: 'region', id: 'nope', html: 'x' },
    { o: 'region', id: '1', html: 'b' },
    { o: 'list', id: '4', keys: ['a', 'ghost'], items: {} },
    { o: 'region', id: 'nope2', html: 'x' },
  );
  assert.equal(p.$('p').textContent, 'b');
  // It names what missed: the server sends the regions that hold them, not the whole page.
  assert.deepEqual(plain(p.resyncs()), [{ t: 'resync', ids: ['nope', '4', 'nope2'] }]);
  p.patch({ o: 'region', id: '1', html: 'c' });
  assert.equal(p.resyncs().length, 1, 'a clean frame sends none');
  p.patch({ o: 'region', id: 'gone', html: 'x' }, { o: 'region', id: 'gone', html: 'y' });
  assert.equal(p.resyncs().length, 2, 'one per frame that missed');
  assert.deepEqual(plain(p.resyncs()[1]), { t: 'resync', ids: ['gone'] });
  assert.deepEqual(p.logs.error, []);
});

test('a miss that names no region asks for the whole page', () => {
  const p = live(`<p>${region('1', 'a')}</p>`, { debug: false });
  p.patch({ o: 'region', id: 'nope', html: 'x' }, { o: 'future-op' });
  assert.deepEqual(plain(p.resyncs()), [{ t: 'resync' }]);
});

test('garbage in a patch frame never throws out of the handler', () => {
  const p = live(`<p>${region('1', 'a')}</p>`);
  assert.doesNotThrow(() => {
    p.patch(null, 42, { o: 'region' }, { o: 'list', id: '1', keys: 'nope' }, { o: 'region', id: '1', html: 'ok' });
    p.ws().receive({ t: 'patch' });
    p.ws().receive({ t: 'patch', ops: 'x' });
  });
  assert.equal(p.$('p').textContent, 'ok');
  assert.ok(p.resyncs().length >= 1);
});

// --- morph

test('a morph goes through Idiomorph on <body>, innerHTML style, keeps scripts and sets the title', async () => {
  const p = live(`<main>old</main>${SCRIPTS}`);
  const calls = stubIdiomorph(p);
  const config = p.$('script[data-rt-config]');
  const rt = p.$('script[src]');
  p.document.title = 'Old';
  p.patch({ o: 'morph', html: '<main>new</main><p>more</p>', title: 'New' });
  await flush();
  assert.equal(calls.length, 1);
  assert.equal(calls[0].target, p.document.body);
  assert.equal(calls[0].html, '<main>new</main><p>more</p>');
  assert.equal(calls[0].options.morphStyle, 'innerHTML');
  const { beforeNodeRemoved, beforeNodeAdded, beforeNodeMorphed } = calls[0].options.callbacks;
  assert.equal(beforeNodeRemoved(rt), false);
  assert.equal(beforeNodeRemoved(config), false);
  assert.notEqual(beforeNodeRemoved(p.$('main')), false);
  assert.equal(beforeNodeAdded(p.document.createElement('script')), false);
  assert.equal(beforeNodeMorphed(config, p.document.createElement('script')), false);
  assert.equal(p.document.title, 'New');
  assert.equal(p.$('main').textContent, 'new');
  assert.equal(p.$('script[data-rt-config]'), config);
  assert.equal(p.$('script[src]'), rt);
  assert.deepEqual(p.resyncs(), [], 'a morph is never a miss');
  assert.equal(p.loader().length, 0, 'an Idiomorph already on the page is used as is');
  p.patch({ o: 'morph', html: '<main>again</main>', title: null });
  await flush();
  assert.equal(p.document.title, 'New', 'no title, no change');
});

test('idiomorph is loaded lazily, once, from the configured URL; ops after the morph wait', async () => {
  const p = live(`<div id="x">${region('1', 'a')}</div>${SCRIPTS}`, { morph: MORPH_URL });
  assert.equal(p.loader().length, 0, 'nothing loaded before a morph is needed');
  p.patch({ o: 'morph', html: `<div id="x">${region('1', 'b')}</div>` }, { o: 'region', id: '1', html: 'c' });
  p.patch({ o: 'morph', html: `<div id="x">${region('1', 'd')}</div>` });
  await flush();
  const [script] = p.loader();
  assert.equal(p.loader().length, 1);
  assert.equal(script.parentNode, p.document.head, 'outside the morphed body');
  assert.equal(p.$('#x').textContent, 'a', 'nothing applied before idiomorph is there');
  const calls = stubIdiomorph(p);
  script.dispatchEvent(new p.window.Event('load'));
  await flush();
  assert.deepEqual(calls.map((c) => c.html), [`<div id="x">${region('1', 'b')}</div>`, `<div id="x">${region('1', 'd')}</div>`]);
  assert.equal(p.$('#x').textContent, 'd', 'the region op ran between the two morphs');
  p.patch({ o: 'morph', html: '<p>e</p>' });
  await flush();
  assert.equal(calls.length, 3);
  assert.equal(p.loader().length, 1, 'still the one script');
  assert.deepEqual(p.resyncs(), []);
});

test('when idiomorph cannot load, the body is replaced around the scripts, with a warning', async () => {
  const p = live(`<main><input id="i"></main>${SCRIPTS}`, { morph: MORPH_URL });
  const scripts = [...p.document.querySelectorAll('script:not([src="' + MORPH_URL + '"])')];
  p.patch({ o: 'morph', html: `<main>${region('1', 'new')}</main><script src="/other.js"></script>`, title: 'T' }, { o: 'region', id: '1', html: 'newer' });
  await flush();
  p.loader()[0].dispatchEvent(new p.window.Event('error'));
  await flush();
  assert.equal(p.$('main').textContent, 'newer');
  assert.equal(p.$('#i'), null);
  assert.equal(p.$('script[src="/other.js"]'), null, 'the new markup brings no script');
  for (const s of scripts) assert.ok(s.isConnected, 'the page\'s scripts stay');
  assert.equal(p.document.title, 'T');
  assert.ok(p.logs.warn.some((w) => w.includes('morph')), p.logs.warn.join('\n'));
  assert.deepEqual(p.resyncs(), []);
  // The failure is remembered: no second script, straight to the fallback.
  p.patch({ o: 'morph', html: '<main>again</main>' });
  await flush();
  assert.equal(p.$('main').textContent, 'again');
  assert.equal(p.loader().length, 1);
});

test('a page without idiomorph URL falls back at once', async () => {
  const p = live(`<main>old</main>${SCRIPTS}`);
  p.patch({ o: 'morph', html: '<main>new</main>' });
  await flush();
  assert.equal(p.$('main').textContent, 'new');
  assert.equal(p.document.querySelectorAll('script').length, 2);
  assert.ok(p.logs.warn.length >= 1);
});

test('frames arriving while a morph is pending apply after it, in arrival order', async () => {
  const p = live(`<div id="x">old</div>${SCRIPTS}<button id="b">b</button>`, {
    morph: MORPH_URL,
    events: [{ e: 'click', s: 'button', h: 'press' }],
  });
  p.$('#b').click();
  // The morph brings #y and region 2, which the frames after it need.
  p.patch({ o: 'morph', html: `<div id="y">${region('2', 'r')}</div><button id="b">b</button>` });
  p.ws().receive({ t: 'reply', ref: 1, cmds: [{ a: 'append', s: '#y', c: '<i>1</i>' }] });
  p.patch({ o: 'region', id: '2', html: 'R' });
  p.ws().receive({ t: 'reply', ref: 99, cmds: [{ a: 'append', s: '#y', c: '<i>2</i>' }] });
  await flush();
  assert.equal(p.$('#y'), null, 'all wait for the morph');
  assert.equal(p.rt.pending.size, 1, 'the reply is not settled before it applies');
  stubIdiomorph(p);
  p.loader()[0].dispatchEvent(new p.window.Event('load'));
  await flush();
  assert.equal(p.$('#y').innerHTML, '<!--rt:2-->R<!--/rt:2--><i>1</i><i>2</i>');
  assert.equal(p.rt.pending.size, 0);
  assert.deepEqual(p.resyncs(), []);
  // Once the queue is drained, frames apply synchronously again.
  p.patch({ o: 'region', id: '2', html: 'S' });
  assert.equal(p.$('#y').textContent, 'S12');
});

test('a resync for a frame that finishes after the socket closed is not sent', async () => {
  const p = live(`${SCRIPTS}`, { morph: MORPH_URL });
  const ws = p.ws();
  p.patch({ o: 'morph', html: '<p>x</p>' }, { o: 'region', id: 'missing', html: '' });
  await flush();
  ws.serverClose(1006);
  stubIdiomorph(p);
  p.loader()[0].dispatchEvent(new p.window.Event('load'));
  await flush();
  assert.deepEqual(ws.sent.filter((f) => f.t === 'resync'), []);
  assert.deepEqual(p.logs.error, []);
});

// --- the real idiomorph

const withIdiomorph = (body, config) => {
  const p = live(body, config);
  // jsdom has no CSS.escape; idiomorph only uses it on ids.
  p.window.CSS ||= { escape: (s) => String(s).replace(/["\\]/g, '\\$&') };
  p.window.eval(IDIOMORPH);
  assert.equal(typeof p.window.Idiomorph.morph, 'function');
  return p;
};

test('with the vendored idiomorph: content morphs, nodes and the user\'s values survive, scripts stay', async () => {
  const p = withIdiomorph(
    `<h1>${region('1', 'Old')}</h1><form><input id="a" value="x"><input id="b" value="y"></form>${SCRIPTS}`,
  );
  const a = p.$('#a');
  const scripts = [...p.document.querySelectorAll('script')];
  a.focus();
  a.value = 'typed';
  p.$('#b').value = 'typed too';
  p.patch({
    o: 'morph',
    html: `<h1>${region('1', 'New')}</h1><form><input id="a" value="x"><input id="b" value="server"></form><p>${region('2', 'added')}</p>`,
    title: 'Morphed',
  });
  await flush();
  assert.equal(p.$('h1').textContent, 'New');
  assert.equal(p.$('#a'), a, 'the same input element');
  assert.equal(p.document.activeElement, a);
  assert.equal(a.value, 'typed', 'the server left its default alone');
  assert.equal(p.$('#b').value, 'server', 'the server changed this one');
  assert.deepEqual([...p.document.querySelectorAll('script')], scripts);
  assert.equal(p.document.title, 'Morphed');
  assert.deepEqual(p.resyncs(), []);
  // The markers the morph brought are found by later patches.
  p.patch({ o: 'region', id: '2', html: 'patched' }, { o: 'region', id: '1', html: 'Newer' });
  assert.equal(p.$('p').textContent, 'patched');
  assert.equal(p.$('h1').textContent, 'Newer');
  assert.deepEqual(p.resyncs(), []);
  assert.equal(p.document.querySelectorAll('body > div[hidden]').length, 0, 'no leftovers');
});

test('a reload op reloads the page, and is not a miss', () => {
  const p = live(`<p>${region('1', 'a')}</p>`);
  p.patch({ o: 'reload' });
  assert.equal(p.location.reloads, 1);
  assert.deepEqual(p.resyncs(), []);
});
