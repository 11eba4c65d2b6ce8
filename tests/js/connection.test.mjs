import assert from 'node:assert/strict';
import { test } from 'node:test';

import { click, page, plain, record, started } from './helpers.mjs';

const BUTTONS = '<button id="a">a</button><button id="b">b</button>';
const CLICKS = [{ e: 'click', s: 'button', h: 'press' }];
const loading = (el) => [el.classList.contains('rt-loading'), el.getAttribute('aria-busy')];
const htmlClasses = (p) => p.document.documentElement.className;

test('connects to the configured path on the page host and joins with the token', () => {
  const p = started('', { token: 'abc' }, { url: 'https://app.test/page/' });
  assert.equal(p.Socket.instances.length, 1);
  assert.equal(p.ws().url, 'wss://app.test/rt/ws/');
  assert.deepEqual(p.ws().sent, [], 'nothing before open');
  p.ws().open();
  assert.deepEqual(p.ws().sent, [{ t: 'join', v: 1, token: 'abc' }]);
  assert.equal(p.rt.joined, false);
});

test('plain http pages use ws:, absolute URLs are used as is', () => {
  assert.equal(started('', {}, { url: 'http://localhost:8000/' }).ws().url, 'ws://localhost:8000/rt/ws/');
  assert.equal(started('', { url: 'wss://rt.example.com/x/' }).ws().url, 'wss://rt.example.com/x/');
});

test('joined marks <html>, fires rt:connected and keeps the refreshed token', () => {
  const p = started();
  const connected = record(p.document, 'rt:connected');
  p.ws().join('fresh');
  assert.equal(p.rt.joined, true);
  assert.equal(p.rt.token, 'fresh');
  assert.equal(htmlClasses(p), 'rt-connected');
  assert.equal(connected.length, 1);
});

test('the refreshed token is the one sent on the next join; a joined without token keeps it', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const p = started('', { token: 'tok0' });
  p.ws().join('tok1');
  p.ws().serverClose(1006);
  t.mock.timers.tick(10000);
  p.ws().open();
  assert.deepEqual(p.ws().sent, [{ t: 'join', v: 1, token: 'tok1' }]);
  p.ws().receive({ t: 'joined', v: 1 });
  p.ws().serverClose(1001);
  t.mock.timers.tick(10000);
  p.ws().open();
  assert.deepEqual(p.ws().sent, [{ t: 'join', v: 1, token: 'tok1' }]);
});

test('events before joined are queued and flushed, in order, right after joined', () => {
  const p = started(BUTTONS, { events: CLICKS });
  click(p.document.querySelector('#a'));
  p.ws().open();
  click(p.document.querySelector('#b'));
  assert.deepEqual(p.ws().sent.map((f) => f.t), ['join']);
  assert.equal(p.rt.queue.length, 2);
  p.ws().receive({ t: 'joined', v: 1, token: 't' });
  assert.deepEqual(p.ws().sent.map((f) => [f.t, f.ref]), [['join', undefined], ['event', 1], ['event', 2]]);
  assert.equal(p.rt.queue.length, 0);
  click(p.document.querySelector('#a'));
  assert.deepEqual(p.ws().sent.at(-1).ref, 3, 'sent directly once joined');
});

test('the queue keeps the newest 100 events and releases the dropped ones', () => {
  const p = started('<button id="a">a</button><button id="b">b</button>', { events: CLICKS });
  const a = p.document.querySelector('#a');
  click(a);
  for (let i = 0; i < 104; i++) click(p.document.querySelector('#b'));
  assert.equal(p.rt.queue.length, 100);
  assert.equal(p.rt.queue[0].ref, 6);
  assert.deepEqual(loading(a), [false, null], 'the dropped event no longer shows as loading');
  assert.equal(p.rt.pending.size, 100);
  p.ws().join();
  assert.deepEqual(p.ws().events().map((f) => f.ref), Array.from({ length: 100 }, (_, i) => i + 6));
});

test('a pending event marks its element loading until the reply', () => {
  const p = started(BUTTONS, { events: CLICKS });
  p.ws().join();
  const a = p.document.querySelector('#a');
  const b = p.document.querySelector('#b');
  click(a);
  click(a);
  click(b);
  assert.deepEqual(loading(a), [true, 'true']);
  assert.deepEqual(loading(b), [true, 'true']);
  p.ws().receive({ t: 'reply', ref: 1, cmds: [] });
  assert.deepEqual(loading(a), [true, 'true'], 'ref 2 is still pending');
  p.ws().receive({ t: 'reply', ref: 2, cmds: [] });
  assert.deepEqual(loading(a), [false, null]);
  assert.deepEqual(loading(b), [true, 'true']);
  p.ws().receive({ t: 'reply', ref: 999, cmds: [] });
  assert.deepEqual(loading(b), [true, 'true'], 'an unknown ref changes nothing');
  p.ws().receive({ t: 'reply', ref: 3, cmds: [] });
  assert.deepEqual(loading(b), [false, null]);
  assert.equal(p.rt.pending.size, 0);
});

test('queued events show as loading too', () => {
  const p = started(BUTTONS, { events: CLICKS });
  click(p.document.querySelector('#a'));
  assert.deepEqual(loading(p.document.querySelector('#a')), [true, 'true']);
});

test('a reply applies its commands', () => {
  const p = started('<div id="out"></div>' + BUTTONS, { events: CLICKS });
  p.ws().join();
  click(p.document.querySelector('#a'));
  p.ws().receive({ t: 'reply', ref: 1, cmds: [{ a: 'text', s: '#out', c: 'done' }, { a: 'add_class', s: '#a', c: 'ok' }] });
  assert.equal(p.document.querySelector('#out').textContent, 'done');
  assert.deepEqual([...p.document.querySelector('#a').classList], ['ok']);
});

test('an error frame logs, fires a bubbling rt:error on the element and clears loading', () => {
  const p = started(BUTTONS, { events: CLICKS });
  p.ws().join();
  const a = p.document.querySelector('#a');
  const onElement = record(a, 'rt:error');
  const onDocument = record(p.document, 'rt:error');
  click(a);
  p.ws().receive({ t: 'error', ref: 1, code: 'handler_error', message: 'press() failed: boom', detail: 'Traceback...' });
  assert.equal(onElement.length, 1);
  assert.equal(onDocument.length, 1, 'it bubbles');
  assert.deepEqual(plain(onElement[0].detail), {
    code: 'handler_error', message: 'press() failed: boom', detail: 'Traceback...', ref: 1,
  });
  assert.deepEqual(loading(a), [false, null]);
  assert.ok(p.logs.error.some((line) => line.includes('press() failed: boom') && line.includes('Traceback...')));
});

test('an error without ref, or for a removed element, fires rt:error on document', () => {
  const p = started(BUTTONS, { events: CLICKS });
  p.ws().join();
  const onDocument = record(p.document, 'rt:error');
  p.ws().receive({ t: 'error', ref: null, code: 'rate_limited', message: 'slow down' });
  assert.equal(onDocument.length, 1);
  assert.equal(onDocument[0].target, p.document);
  assert.deepEqual(plain(onDocument[0].detail), { code: 'rate_limited', message: 'slow down', ref: null });
  assert.ok(p.logs.error.some((line) => line.includes('slow down')));

  const a = p.document.querySelector('#a');
  const onElement = record(a, 'rt:error');
  click(a);
  a.remove();
  p.ws().receive({ t: 'error', ref: 1, code: 'forbidden', message: 'no' });
  assert.equal(onElement.length, 0);
  assert.equal(onDocument.length, 2);
  assert.equal(onDocument[1].target, p.document);
});

test('unknown frame types and bad JSON are ignored, with a warning in debug mode', () => {
  const p = started('', { debug: true });
  p.ws().join();
  p.ws().receive({ t: 'future', x: 1 });
  p.ws().receive('not json{');
  p.ws().receive('null');
  assert.ok(p.logs.warn.some((line) => line.includes('unknown frame')));
  const quiet = started('', { debug: false });
  quiet.ws().join();
  quiet.ws().receive({ t: 'future' });
  assert.deepEqual(quiet.logs.warn, []);
  assert.equal(quiet.rt.joined, true);
});

test('a close marks <html>, fires rt:disconnected and clears every loading state', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const p = started(BUTTONS, { events: CLICKS });
  p.ws().join();
  const a = p.document.querySelector('#a');
  click(a);
  click(p.document.querySelector('#b'));
  const disconnected = record(p.document, 'rt:disconnected');
  p.ws().serverClose(1006, 'gone');
  assert.equal(htmlClasses(p), 'rt-disconnected');
  assert.equal(disconnected.length, 1);
  assert.deepEqual(plain(disconnected[0].detail), { code: 1006, reason: 'gone' });
  assert.equal(p.document.querySelectorAll('.rt-loading, [aria-busy]').length, 0);
  assert.equal(p.rt.pending.size, 0);
  assert.equal(p.rt.joined, false);
  p.ws().receive({ t: 'reply', ref: 1, cmds: [{ a: 'text', s: '#a', c: 'late' }] });
  assert.equal(a.textContent, 'a', 'frames from a closed socket are ignored');
  t.mock.timers.tick(10000);
  p.ws().join();
  assert.equal(htmlClasses(p), 'rt-connected');
});

for (const code of [4400, 4401, 4403, 4429]) {
  test(`close ${code} does not reconnect, even when the page comes back online`, (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const p = started(BUTTONS, { events: CLICKS });
    p.ws().join();
    p.ws().serverClose(code, 'refused');
    t.mock.timers.tick(600000);
    p.window.dispatchEvent(new p.window.Event('online'));
    p.document.dispatchEvent(new p.window.Event('visibilitychange'));
    assert.equal(p.Socket.instances.length, 1);
    assert.equal(p.location.reloads, 0);
    click(p.document.querySelector('#a'));
    assert.equal(p.document.querySelectorAll('.rt-loading').length, 0, 'nothing will answer');
    assert.equal(htmlClasses(p), 'rt-disconnected');
  });
}

test('close 4426 (version mismatch) reloads the page', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const p = started();
  p.ws().open();
  p.ws().receive({ t: 'error', ref: null, code: 'version_mismatch', message: 'client protocol 0' });
  p.ws().serverClose(4426);
  assert.equal(p.location.reloads, 1);
  t.mock.timers.tick(600000);
  assert.equal(p.Socket.instances.length, 1);
});

test('close 4408 (token expired) fires a cancelable rt:error, then reloads', () => {
  const p = started();
  p.ws().join();
  const errors = record(p.document, 'rt:error');
  p.ws().serverClose(4408);
  assert.equal(errors.length, 1);
  assert.ok(errors[0].cancelable);
  assert.deepEqual(plain(errors[0].detail), { code: 'token_expired' });
  assert.equal(p.location.reloads, 1);
  assert.equal(p.Socket.instances.length, 1);
});

test('close 4408 does not reload when rt:error is prevented', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const p = started();
  p.ws().join();
  p.document.addEventListener('rt:error', (event) => event.preventDefault());
  p.ws().serverClose(4408);
  assert.equal(p.location.reloads, 0);
  t.mock.timers.tick(600000);
  assert.equal(p.Socket.instances.length, 1);
});

for (const [code, reason] of [[4440, 'session_ended'], [4443, 'access_revoked']]) {
  test(`close ${code} (${reason}) fires a cancelable rt:error, then reloads; no reconnect`, (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const p = started();
    p.ws().join();
    const errors = record(p.document, 'rt:error');
    p.ws().serverClose(code);
    assert.equal(errors.length, 1);
    assert.ok(errors[0].cancelable);
    assert.deepEqual(plain(errors[0].detail), { code: reason });
    assert.equal(p.location.reloads, 1);
    t.mock.timers.tick(600000);
    assert.equal(p.Socket.instances.length, 1);
  });

  test(`close ${code} does not reload when rt:error is prevented, and does not reconnect`, (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const p = started();
    p.ws().join();
    p.document.addEventListener('rt:error', (event) => event.preventDefault());
    p.ws().serverClose(code);
    assert.equal(p.location.reloads, 0);
    t.mock.timers.tick(600000);
    p.window.dispatchEvent(new p.window.Event('online'));
    assert.equal(p.Socket.instances.length, 1);
    assert.equal(htmlClasses(p), 'rt-disconnected');
  });
}

test('close 4000 (max age) rejoins at once with the fresh token, and resends what was not answered', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const p = started(BUTTONS, { events: CLICKS, token: 'tok0' });
  p.window.Math.random = () => 1; // the top of the jitter window
  p.ws().join('tok1');
  const a = p.document.querySelector('#a');
  const b = p.document.querySelector('#b');
  click(a); // ref 1: answered below
  click(b); // ref 2: not answered
  click(a); // ref 3: not answered
  p.ws().receive({ t: 'reply', ref: 1, cmds: [] });
  const old = p.ws();
  old.serverClose(4000);
  assert.equal(p.rt.attempt, 0, 'not a failure');
  assert.deepEqual(loading(b), [true, 'true'], 'still waiting for its reply');
  t.mock.timers.tick(249);
  assert.equal(p.Socket.instances.length, 1);
  t.mock.timers.tick(1);
  assert.equal(p.Socket.instances.length, 2);
  p.ws().open();
  assert.deepEqual(p.ws().sent, [{ t: 'join', v: 1, token: 'tok1' }]);
  p.ws().receive({ t: 'joined', v: 1, token: 'tok2' });
  assert.deepEqual(p.ws().events().map((f) => f.ref), [2, 3]);
  p.ws().receive({ t: 'reply', ref: 2, cmds: [] });
  p.ws().receive({ t: 'reply', ref: 3, cmds: [] });
  assert.deepEqual(loading(a), [false, null]);
  assert.deepEqual(loading(b), [false, null]);
  assert.equal(p.location.reloads, 0);
});

test('after another close, unanswered events are not resent', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const p = started(BUTTONS, { events: CLICKS });
  p.ws().join();
  click(p.document.querySelector('#a'));
  p.ws().serverClose(1006);
  t.mock.timers.tick(10000);
  p.ws().join();
  assert.deepEqual(p.ws().events(), [], 'it may have run: the server got it before the drop');
});

test('other closes reconnect with a growing backoff that resets on joined', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const p = started();
  p.window.Math.random = () => 1; // the top of each jitter window
  const count = () => p.Socket.instances.length;
  const expectReconnectAfter = (ms) => {
    const before = count();
    t.mock.timers.tick(ms - 1);
    assert.equal(count(), before, `not before ${ms} ms`);
    t.mock.timers.tick(1);
    assert.equal(count(), before + 1, `at ${ms} ms`);
  };
  p.ws().serverClose(1006); // the server is down: no joined in between
  assert.equal(p.rt.attempt, 1);
  expectReconnectAfter(250);
  p.ws().serverClose(1006);
  expectReconnectAfter(500);
  p.ws().serverClose(1011);
  expectReconnectAfter(1000);
  assert.equal(p.rt.attempt, 3);
  p.ws().join();
  assert.equal(p.rt.attempt, 0);
  p.ws().serverClose(1001);
  expectReconnectAfter(250);
});

test('back online or visible while disconnected: reconnect without waiting', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const p = started();
  p.window.Math.random = () => 1;
  for (let i = 0; i < 6; i++) {
    p.ws().serverClose(1006);
    t.mock.timers.tick(8000);
  }
  p.ws().serverClose(1006);
  assert.equal(p.Socket.instances.length, 7);
  p.window.dispatchEvent(new p.window.Event('online'));
  assert.equal(p.Socket.instances.length, 8);
  p.window.dispatchEvent(new p.window.Event('online'));
  p.document.dispatchEvent(new p.window.Event('visibilitychange'));
  assert.equal(p.Socket.instances.length, 8, 'already connecting');
  t.mock.timers.tick(8000);
  assert.equal(p.Socket.instances.length, 8, 'the pending retry was cancelled');
  p.ws().serverClose(1006);
  p.document.dispatchEvent(new p.window.Event('visibilitychange'));
  assert.equal(p.Socket.instances.length, 9);
});

test('rt.js starts by itself from the page configuration', async () => {
  const config = {
    v: 1, url: '/rt/ws/', token: 'abc', debug: false,
    events: [{ e: 'click', s: '#mybutton', h: 'mybutton_click', g: { gathered: '#myinput' } }],
  };
  const p = page(
    `<button id="mybutton">b</button><input id="myinput" value="v">
     <script type="application/json" data-rt-config>${JSON.stringify(config)}</script>`,
    { url: 'http://app.test:8000/page/' },
  );
  assert.equal(p.RT.client, null, 'waits for DOMContentLoaded');
  await new Promise((resolve) => p.document.addEventListener('DOMContentLoaded', resolve));
  const client = p.RT.client;
  assert.ok(client);
  const ws = p.Socket.last;
  assert.equal(ws.url, 'ws://app.test:8000/rt/ws/');
  ws.join('t2');
  click(p.document.querySelector('#mybutton'));
  assert.deepEqual(ws.events()[0].g, { gathered: 'v' });
  assert.equal(client.token, 't2');
});
