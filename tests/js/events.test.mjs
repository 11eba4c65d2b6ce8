import assert from 'node:assert/strict';
import { test } from 'node:test';

import { click, key, record, started } from './helpers.mjs';

const joinedPage = (body, events) => {
  const p = started(body, { events });
  p.ws().join('tok1');
  return p;
};

test('a bound click sends an event frame with gathered values and the target', () => {
  const p = joinedPage(
    '<button id="mybutton" data-x="1">Go</button><input id="myinput" value="typed">',
    [{ e: 'click', s: '#mybutton', h: 'mybutton_click', g: { gathered: '#myinput' } }],
  );
  click(p.document.querySelector('#mybutton'));
  click(p.document.querySelector('#mybutton'));
  assert.deepEqual(p.ws().events(), [
    {
      t: 'event', ref: 1, h: 'mybutton_click', g: { gathered: 'typed' },
      target: { id: 'mybutton', tag: 'button', name: null, value: '', data: { x: '1' } },
    },
    {
      t: 'event', ref: 2, h: 'mybutton_click', g: { gathered: 'typed' },
      target: { id: 'mybutton', tag: 'button', name: null, value: '', data: { x: '1' } },
    },
  ]);
});

test('a binding without g sends an empty object', () => {
  const p = joinedPage('<a id="l">x</a>', [{ e: 'click', s: '#l', h: 'go' }]);
  click(p.document.querySelector('#l'));
  assert.deepEqual(p.ws().events()[0].g, {});
});

test('a click inside the bound element matches its closest ancestor', () => {
  const p = joinedPage(
    '<ul><li class="item" data-pk="5"><span><b id="deep">x</b></span></li></ul><p id="other">o</p>',
    [{ e: 'click', s: '.item', h: 'pick' }],
  );
  click(p.document.querySelector('#deep'));
  click(p.document.querySelector('#other'));
  const events = p.ws().events();
  assert.equal(events.length, 1);
  assert.deepEqual(events[0].target, { id: null, tag: 'li', name: null, value: null, data: { pk: '5' } });
});

test('an event whose target is a text node uses its parent element', () => {
  const p = joinedPage('<p class="t">text</p>', [{ e: 'custom', s: '.t', h: 'h' }]);
  const text = p.document.querySelector('.t').firstChild;
  text.dispatchEvent(new p.window.Event('custom', { bubbles: true }));
  assert.equal(p.ws().events().length, 1);
  assert.equal(p.ws().events()[0].target.tag, 'p');
});

test('elements added after start are bound too (delegation)', () => {
  const p = joinedPage('<div id="list"></div>', [{ e: 'click', s: '.row', h: 'row' }]);
  p.document.querySelector('#list').innerHTML = '<div class="row" id="r1">1</div>';
  click(p.document.querySelector('#r1'));
  assert.equal(p.ws().events().length, 1);
  assert.equal(p.ws().events()[0].target.id, 'r1');
});

test('non-bubbling events are caught in the capture phase', () => {
  const p = joinedPage('<input id="i">', [{ e: 'focus', s: '#i', h: 'focused' }, { e: 'blur', s: '#i', h: 'left' }]);
  const input = p.document.querySelector('#i');
  input.focus();
  input.blur();
  assert.deepEqual(p.ws().events().map((f) => f.h), ['focused', 'left']);
});

test('several bindings of one event type each fire; one listener per type', () => {
  const p = started('<button id="b" class="c">x</button>', {
    events: [{ e: 'click', s: '#b', h: 'one' }, { e: 'click', s: '.c', h: 'two' }, { e: 'click', s: '#zz', h: 'no' }],
  });
  p.ws().join();
  click(p.document.querySelector('#b'));
  assert.deepEqual(p.ws().events().map((f) => f.h), ['one', 'two']);
});

test('the key filter lets only the matching key through, aliases included', () => {
  const p = joinedPage('<input id="q"><input id="e">', [
    { e: 'keydown', s: '#q', h: 'search', key: 'enter' },
    { e: 'keyup', s: '#e', h: 'cancel', key: 'esc' },
  ]);
  const q = p.document.querySelector('#q');
  const e = p.document.querySelector('#e');
  key(q, 'a');
  key(q, 'Shift');
  key(q, 'Enter');
  key(e, 'Enter', 'keyup');
  key(e, 'Escape', 'keyup');
  q.dispatchEvent(new p.window.Event('keydown', { bubbles: true })); // autofill's keydown has no key
  assert.deepEqual(p.ws().events().map((f) => f.h), ['search', 'cancel']);
});

test('prevent calls preventDefault; stop keeps the event from the page\'s own listeners', () => {
  const p = joinedPage('<form class="add"><button id="a">+</button></form><a id="plain" href="#x">p</a><a id="s">s</a>', [
    { e: 'submit', s: 'form.add', h: 'add', prevent: true },
    { e: 'click', s: '#s', h: 'stopped', stop: true },
    { e: 'click', s: '#plain', h: 'plain' },
  ]);
  const form = p.document.querySelector('form');
  const submit = new p.window.Event('submit', { bubbles: true, cancelable: true });
  form.dispatchEvent(submit);
  assert.ok(submit.defaultPrevented);

  const plainEvent = new p.window.MouseEvent('click', { bubbles: true, cancelable: true });
  p.document.querySelector('#plain').dispatchEvent(plainEvent);
  assert.ok(!plainEvent.defaultPrevented);

  const s = p.document.querySelector('#s');
  const own = record(s, 'click');
  click(s);
  assert.equal(own.length, 0, 'stopped before reaching the element');
  const plainOwn = record(p.document.querySelector('#plain'), 'click');
  click(p.document.querySelector('#plain'));
  assert.equal(plainOwn.length, 1);
  assert.deepEqual(p.ws().events().map((f) => f.h), ['add', 'plain', 'stopped', 'plain']);
});

test('prevent does not apply when the key filter rejects the event', () => {
  const p = joinedPage('<input id="q">', [{ e: 'keydown', s: '#q', h: 'h', key: 'enter', prevent: true }]);
  assert.ok(!key(p.document.querySelector('#q'), 'x').defaultPrevented);
  assert.ok(key(p.document.querySelector('#q'), 'Enter').defaultPrevented);
});

test('debounce sends once after the quiet period and gathers at that time', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const p = joinedPage('<input id="q">', [{ e: 'input', s: '#q', h: 'search', g: { q: '#q' }, debounce: 300, prevent: true }]);
  const q = p.document.querySelector('#q');
  const type = (text) => {
    q.value = text;
    const event = new p.window.Event('input', { bubbles: true, cancelable: true });
    q.dispatchEvent(event);
    return event;
  };
  assert.ok(type('d').defaultPrevented, 'prevented synchronously, before the debounce');
  t.mock.timers.tick(200);
  type('dj');
  t.mock.timers.tick(299);
  assert.equal(p.ws().events().length, 0);
  q.value = 'django'; // changed after the last event: the frame carries what is there when it fires
  t.mock.timers.tick(1);
  assert.deepEqual(p.ws().events().map((f) => f.g), [{ q: 'django' }]);
  type('x');
  t.mock.timers.tick(300);
  assert.equal(p.ws().events().length, 2);
});

test('debounce timers are per element', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const p = joinedPage('<input class="f" id="a"><input class="f" id="b">', [{ e: 'input', s: '.f', h: 'h', debounce: 100 }]);
  const fireInput = (id) => p.document.querySelector(id).dispatchEvent(new p.window.Event('input', { bubbles: true }));
  fireInput('#a');
  fireInput('#b');
  fireInput('#a');
  t.mock.timers.tick(100);
  assert.deepEqual(p.ws().events().map((f) => f.target.id).sort(), ['a', 'b']);
});

test('throttle sends the first event and drops the rest of the window', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const p = joinedPage('<button id="b">x</button><button id="c">y</button>', [
    { e: 'click', s: 'button', h: 'h', throttle: 1000 },
  ]);
  const b = p.document.querySelector('#b');
  click(b);
  assert.equal(p.ws().events().length, 1, 'leading edge: immediately');
  click(b);
  t.mock.timers.tick(999);
  click(b);
  assert.equal(p.ws().events().length, 1);
  click(p.document.querySelector('#c'));
  assert.equal(p.ws().events().length, 2, 'another element has its own window');
  t.mock.timers.tick(1);
  click(b);
  assert.equal(p.ws().events().length, 3);
  t.mock.timers.tick(5000);
  assert.equal(p.ws().events().length, 3, 'dropped events are not sent later');
});

test('an invalid binding selector never throws out of the listener', () => {
  const p = joinedPage('<button id="b">x</button>', [{ e: 'click', s: '##bad[', h: 'bad' }, { e: 'click', s: '#b', h: 'good' }]);
  const errors = [];
  p.window.addEventListener('error', (e) => errors.push(e));
  click(p.document.querySelector('#b'));
  assert.deepEqual(p.ws().events().map((f) => f.h), ['good']);
  assert.equal(errors.length, 0);
  assert.ok(p.logs.warn.some((line) => line.includes('django-rt')));
});

test('events on document or window themselves are ignored', () => {
  const p = joinedPage('', [{ e: 'custom', s: 'html', h: 'h' }]);
  p.document.dispatchEvent(new p.window.Event('custom'));
  assert.equal(p.ws().events().length, 0);
  p.document.body.dispatchEvent(new p.window.Event('custom', { bubbles: true }));
  assert.equal(p.ws().events().length, 1);
});

test('stop() removes the listeners and closes the socket', () => {
  const p = joinedPage('<button id="b">x</button>', [{ e: 'click', s: '#b', h: 'h' }]);
  const ws = p.ws();
  p.rt.stop();
  click(p.document.querySelector('#b'));
  assert.equal(ws.events().length, 0);
  assert.ok(ws.closed);
  assert.equal(p.rt.socket, null);
});
