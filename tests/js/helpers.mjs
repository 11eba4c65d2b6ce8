// Shared fixtures: rt.js evaluated in a fresh jsdom page, with a WebSocket and a location
// the test drives by hand. RT_JS=rt.min.js runs the same tests on the minified client.
import { readFileSync } from 'node:fs';
import { JSDOM, VirtualConsole } from 'jsdom';

const STATIC = new URL('../../src/django_rt/static/django_rt/', import.meta.url);
/** The source, for the tests that read its text. */
export const SOURCE_PATH = new URL('rt.js', STATIC);
export const SOURCE = readFileSync(SOURCE_PATH, 'utf8');
/** The client the pages run: rt.js, or the file of the same folder that RT_JS names. */
export const CLIENT_NAME = process.env.RT_JS || 'rt.js';
if (!/^[\w.-]+\.js$/.test(CLIENT_NAME)) throw new Error(`RT_JS names a file of static/django_rt/, not ${CLIENT_NAME}`);
export const CLIENT = readFileSync(new URL(CLIENT_NAME, STATIC), 'utf8');

// Values created inside the page belong to jsdom's realm; compare them as the wire sees them.
export const plain = (value) => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));

export function socketClass() {
  return class FakeSocket {
    static instances = [];

    static get last() {
      return FakeSocket.instances.at(-1);
    }

    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closed = false;
      FakeSocket.instances.push(this);
    }

    send(data) {
      this.sent.push(JSON.parse(data));
    }

    close() {
      this.closed = true;
    }

    // What the server does:
    open() {
      this.onopen?.({});
    }

    receive(frame) {
      this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) });
    }

    serverClose(code = 1006, reason = '') {
      this.onclose?.({ code, reason });
    }

    join(token) {
      this.open();
      this.receive(token === undefined ? { t: 'joined', v: 1 } : { t: 'joined', v: 1, token });
    }

    events() {
      return this.sent.filter((frame) => frame.t === 'event');
    }
  };
}

export function fakeLocation(href = 'https://app.test/page/') {
  const url = new URL(href);
  return {
    href,
    protocol: url.protocol,
    host: url.host,
    reloads: 0,
    assigned: [],
    reload() {
      this.reloads += 1;
    },
    assign(to) {
      this.assigned.push(to);
    },
  };
}

/** A page with `body`, rt.js loaded (not started unless the body holds a config). */
export function page(body = '', { url = 'https://app.test/page/', runScripts = 'outside-only' } = {}) {
  const logs = { warn: [], error: [], log: [] };
  const virtualConsole = new VirtualConsole();
  for (const level of Object.keys(logs)) {
    virtualConsole.on(level, (...args) => logs[level].push(args.map(String).join(' ')));
  }
  virtualConsole.on('jsdomError', (error) => logs.error.push(`jsdom: ${error.message}`));
  const dom = new JSDOM(`<!doctype html><html><head></head><body>${body}</body></html>`, {
    url,
    runScripts,
    pretendToBeVisual: true, // otherwise document.hidden is always true
    virtualConsole,
  });
  const window = dom.window;
  // Route the page's timers through Node's, so node:test's mock.timers controls them.
  window.setTimeout = (fn, ms) => setTimeout(fn, ms);
  window.clearTimeout = (id) => clearTimeout(id);
  const Socket = socketClass();
  window.WebSocket = Socket;
  window.eval(CLIENT);
  return { dom, window, document: window.document, RT: window.DjangoRT, Socket, logs };
}

/** A page with rt.js started on `config` (merged over a minimal one). */
export function started(body = '', config = {}, options = {}) {
  const p = page(body, options);
  const location = fakeLocation(options.url);
  const rt = p.RT.start(
    { v: 1, url: '/rt/ws/', token: 'tok0', debug: true, events: [], ...config },
    { WebSocket: p.Socket, location },
  );
  return { ...p, rt, location, ws: () => p.Socket.last };
}

export const click = (el) =>
  el.dispatchEvent(new el.ownerDocument.defaultView.MouseEvent('click', { bubbles: true, cancelable: true }));

export const key = (el, keyName, type = 'keydown') => {
  const event = new el.ownerDocument.defaultView.KeyboardEvent(type, { key: keyName, bubbles: true, cancelable: true });
  el.dispatchEvent(event);
  return event;
};

/** Records the events named `name` that reach `target`. */
export function record(target, name) {
  const seen = [];
  target.addEventListener(name, (event) => seen.push(event));
  return seen;
}

/** Live region markup, as the server renders it: `<!--rt:ID-->inner<!--/rt:ID-->`. */
export const region = (id, inner = '') => `<!--rt:${id}-->${inner}<!--/rt:${id}-->`;

/** One item of list region `id`: the region `ID#KEY`. */
export const item = (id, key, inner = '') => region(`${id}#${key}`, inner);

/** Lets pending promise callbacks and already-due timers run. */
export const flush = () => new Promise((resolve) => setImmediate(resolve));
