/*! django-rt client: runs server-side Django view methods on DOM events, over a WebSocket. */
(() => {
  'use strict';
  // Included twice, the page would bind every event twice and open two sockets.
  if (window.DjangoRT) return;

  const deepFreeze = (o) => {
    Object.values(o).forEach((v) => v && typeof v === 'object' && deepFreeze(v));
    return Object.freeze(o);
  };

  // The wire protocol's only definition on this side. It must equal
  // django_rt.protocol.as_dict(): tests/test_protocol_sync.py compares the two.
  const PROTOCOL = deepFreeze({
    version: 1,
    frames: { JOIN: 'join', EVENT: 'event', JOINED: 'joined', REPLY: 'reply', ERROR: 'error' },
    keys: {
      TYPE: 't', VERSION: 'v', TOKEN: 'token', REF: 'ref', HANDLER: 'h', GATHERED: 'g',
      TARGET: 'target', COMMANDS: 'cmds', CODE: 'code', MESSAGE: 'message', DETAIL: 'detail',
    },
    targetKeys: { ID: 'id', TAG: 'tag', NAME: 'name', VALUE: 'value', DATA: 'data' },
    commandKeys: { ACTION: 'a', SELECTOR: 's', CONTENT: 'c' },
    actions: {
      HTML: 'html', TEXT: 'text', APPEND: 'append', PREPEND: 'prepend', REPLACE: 'replace',
      REMOVE: 'remove', ATTR: 'attr', ADD_CLASS: 'add_class', REMOVE_CLASS: 'remove_class',
      VALUE: 'value', FOCUS: 'focus', REDIRECT: 'redirect', DISPATCH: 'dispatch',
    },
    dispatchKeys: { NAME: 'name', DETAIL: 'detail' },
    errors: {
      BAD_FRAME: 'bad_frame', FRAME_TOO_LARGE: 'frame_too_large', NOT_JOINED: 'not_joined',
      ALREADY_JOINED: 'already_joined', VERSION_MISMATCH: 'version_mismatch',
      INVALID_TOKEN: 'invalid_token', TOKEN_EXPIRED: 'token_expired', FORBIDDEN: 'forbidden',
      UNKNOWN_HANDLER: 'unknown_handler', INVALID_VALUE: 'invalid_value',
      VALUE_TOO_LARGE: 'value_too_large', RATE_LIMITED: 'rate_limited',
      HANDLER_ERROR: 'handler_error',
    },
    close: { INVALID_TOKEN: 4401, FORBIDDEN: 4403, TOKEN_EXPIRED: 4408, VERSION_MISMATCH: 4426 },
    config: { VERSION: 'v', URL: 'url', TOKEN: 'token', EVENTS: 'events', DEBUG: 'debug' },
    binding: {
      EVENT: 'e', SELECTOR: 's', HANDLER: 'h', GATHER: 'g', DEBOUNCE: 'debounce',
      THROTTLE: 'throttle', KEY: 'key', PREVENT_DEFAULT: 'prevent', STOP_PROPAGATION: 'stop',
    },
    classes: { CONNECTED: 'rt-connected', DISCONNECTED: 'rt-disconnected', LOADING: 'rt-loading' },
    domEvents: { CONNECTED: 'rt:connected', DISCONNECTED: 'rt:disconnected', ERROR: 'rt:error' },
    configAttribute: 'data-rt-config',
  });
  const {
    frames: F, keys: K, targetKeys: T, commandKeys: CK, actions: A, close: X, config: C,
    binding: B, classes: CL, domEvents: E, dispatchKeys: D,
  } = PROTOCOL;

  const doc = document;
  // A page left offline keeps queueing; the oldest clicks matter least once it is back.
  const QUEUE_LIMIT = 100;
  const BUSY = 'aria-busy';
  const FIELD = /^(INPUT|SELECT|TEXTAREA)$/;
  // Readable names a template author may write instead of the exact KeyboardEvent.key.
  const KEY_ALIASES = {
    __proto__: null, esc: 'escape', space: ' ',
    up: 'arrowup', down: 'arrowdown', left: 'arrowleft', right: 'arrowright',
  };

  const warn = (...args) => console.warn('django-rt:', ...args);
  const fire = (target, name, detail, cancelable) =>
    target.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, cancelable: !!cancelable }));
  const classes = (c) => String(c ?? '').split(/\s+/).filter(Boolean);

  // Strict on purpose: Chrome's autofill fires keydown/keyup without a key, which must not
  // pass for "enter".
  const keyMatches = (event, filter) => {
    const want = String(filter).toLowerCase();
    return typeof event.key === 'string' && event.key.toLowerCase() === (KEY_ALIASES[want] ?? want);
  };

  const fieldValue = (el) => {
    const tag = el.tagName;
    const type = el.type;
    if (tag === 'FORM') {
      // Null prototype: a field named "__proto__" or "constructor" stays a plain field.
      const out = Object.create(null);
      for (const [name, v] of new FormData(el)) {
        // Files cannot travel in a JSON frame.
        if (typeof v === 'string') out[name] = name in out ? [].concat(out[name], v) : v;
      }
      return out;
    }
    if (type === 'checkbox') return el.checked;
    if (type === 'radio') {
      // The group is the same name in the same form owner, wherever the inputs sit in the DOM.
      let hit = null;
      doc.querySelectorAll('input[type=radio]').forEach((r) => {
        if (r.checked && r.form === el.form && (r === el || (el.name && r.name === el.name))) hit = r.value;
      });
      return hit;
    }
    if (tag === 'SELECT' && el.multiple) return [...el.selectedOptions].map((o) => o.value);
    return FIELD.test(tag) ? el.value : el.textContent;
  };

  const gather = (spec) => {
    const out = {};
    for (const [name, selector] of Object.entries(spec || {})) {
      let el = null;
      try {
        el = doc.querySelector(selector);
      } catch {
        // The server coerces null into "matched no element", a clearer error than ours.
      }
      out[name] = el && fieldValue(el);
    }
    return out;
  };

  const targetOf = (el) => ({
    [T.ID]: el.id || null,
    [T.TAG]: el.tagName.toLowerCase(),
    [T.NAME]: el.getAttribute('name'),
    [T.VALUE]: FIELD.test(el.tagName) || el.tagName === 'BUTTON' ? el.value : null,
    [T.DATA]: { ...el.dataset },
  });

  // No action dispatches input/change: the page's own bindings would echo the change back.
  const ACTIONS = {
    __proto__: null,
    // Scripts in markup set through innerHTML and friends never run; the server escapes the rest.
    [A.HTML]: (el, c) => { el.innerHTML = c; },
    [A.TEXT]: (el, c) => { el.textContent = c; },
    [A.APPEND]: (el, c) => el.insertAdjacentHTML('beforeend', c),
    [A.PREPEND]: (el, c) => el.insertAdjacentHTML('afterbegin', c),
    [A.REPLACE]: (el, c) => { el.outerHTML = c; },
    [A.REMOVE]: (el) => el.remove(),
    [A.ATTR]: (el, c) => {
      for (const [name, v] of Object.entries(c || {})) {
        if (v == null || v === false) el.removeAttribute(name);
        else el.setAttribute(name, v === true ? '' : String(v));
      }
    },
    [A.ADD_CLASS]: (el, c) => el.classList.add(...classes(c)),
    [A.REMOVE_CLASS]: (el, c) => el.classList.remove(...classes(c)),
    [A.VALUE]: (el, c) => {
      if (el.type === 'checkbox' || el.type === 'radio') el.checked = !!c;
      else if (el.tagName === 'SELECT' && el.multiple) {
        const wanted = [].concat(c ?? []).map(String);
        for (const o of el.options) o.selected = wanted.includes(o.value);
      } else el.value = c ?? '';
    },
    [A.FOCUS]: (el) => el.focus(),
    // The content object's keys mirror RTResponse.dispatch() in responses.py.
    [A.DISPATCH]: (el, c) => fire(el, c[D.NAME], c[D.DETAIL]),
  };

  const applyCommands = (cmds, env = {}) => {
    const loc = env.location || location;
    for (const cmd of cmds || []) {
      // One bad command (a typo in a selector, a detached node) must not cost the others.
      try {
        const action = cmd[CK.ACTION];
        const selector = cmd[CK.SELECTOR];
        const content = cmd[CK.CONTENT];
        if (action === A.REDIRECT) {
          // A javascript: URL built from user input would run in this page.
          if (/^https?:$/.test(new URL(content, loc.href).protocol)) loc.assign(content);
          else warn('refused to redirect to', content);
          continue;
        }
        const run = ACTIONS[action];
        if (!run) {
          if (env.debug) warn('unknown action', cmd);
          continue;
        }
        let els = selector == null ? (action === A.DISPATCH ? [doc] : []) : [...doc.querySelectorAll(selector)];
        if (!els.length) {
          if (env.debug) warn('no element matches', selector, cmd);
          continue;
        }
        if (action === A.FOCUS) els = els.slice(0, 1);
        els.forEach((el) => run(el, content));
      } catch (error) {
        warn('command failed', cmd, error);
      }
    }
  };

  // Full jitter: after a server restart, every open page retries at a different moment.
  const backoffDelay = (attempt, random = Math.random()) =>
    Math.max(50, random * Math.min(8000, 250 * 2 ** attempt));

  const wsUrl = (url, loc = location) =>
    /^wss?:/i.test(url) ? url : (loc.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + loc.host + url;

  const start = (config, options = {}) => {
    const Socket = options.WebSocket || window.WebSocket;
    const loc = options.location || location;
    const debug = !!config[C.DEBUG];
    const env = { debug, location: loc };
    const byType = {};
    const pending = new Map(); // ref -> the element whose event it is
    const busy = new Map(); // element -> how many of its refs are pending
    const queue = [];
    let token = config[C.TOKEN];
    let ws = null;
    let joined = false;
    let done = false; // closed for good: a reconnect would be refused again
    let attempt = 0;
    let ref = 0;
    let retry;

    const html = (on) => {
      const list = doc.documentElement.classList;
      list.toggle(CL.CONNECTED, on);
      list.toggle(CL.DISCONNECTED, !on);
    };

    const mark = (el, delta) => {
      const n = (busy.get(el) || 0) + delta;
      el.classList.toggle(CL.LOADING, n > 0);
      if (n > 0) {
        busy.set(el, n);
        el.setAttribute(BUSY, 'true');
      } else {
        busy.delete(el);
        el.removeAttribute(BUSY);
      }
    };

    const settle = (r) => {
      const el = pending.get(r);
      if (el) {
        pending.delete(r);
        mark(el, -1);
      }
      return el;
    };

    const send = (frame) => ws.send(JSON.stringify(frame));

    const emit = (binding, el) => {
      if (done) return;
      const frame = {
        [K.TYPE]: F.EVENT,
        [K.REF]: ++ref,
        [K.HANDLER]: binding[B.HANDLER],
        [K.GATHERED]: gather(binding[B.GATHER]),
        [K.TARGET]: targetOf(el),
      };
      pending.set(ref, el);
      mark(el, 1);
      if (joined) send(frame);
      else if (queue.push(frame) > QUEUE_LIMIT) settle(queue.shift()[K.REF]);
    };

    const onEvent = (event) => {
      let node = event.target;
      if (node && node.nodeType === 3) node = node.parentElement;
      if (!node || !node.closest) return;
      for (const { binding, timers } of byType[event.type]) {
        let el = null;
        try {
          el = node.closest(binding[B.SELECTOR]);
        } catch (error) {
          if (debug) warn(error);
        }
        const filter = binding[B.KEY];
        if (!el || (filter && !keyMatches(event, filter))) continue;
        // Only a synchronous call can still cancel the default or stop the event.
        if (binding[B.PREVENT_DEFAULT]) event.preventDefault();
        if (binding[B.STOP_PROPAGATION]) event.stopPropagation();
        const wait = binding[B.DEBOUNCE];
        const gap = binding[B.THROTTLE];
        if (wait > 0) {
          clearTimeout(timers.get(el));
          timers.set(el, setTimeout(() => {
            timers.delete(el);
            emit(binding, el);
          }, wait));
        } else if (!(gap > 0)) emit(binding, el);
        else if (!timers.has(el)) {
          timers.set(el, setTimeout(() => timers.delete(el), gap));
          emit(binding, el);
        }
      }
    };

    const connect = () => {
      clearTimeout(retry);
      if (done || ws) return;
      const s = (ws = new Socket(wsUrl(config[C.URL], loc)));
      s.onopen = () => s.send(JSON.stringify({ [K.TYPE]: F.JOIN, [K.VERSION]: PROTOCOL.version, [K.TOKEN]: token }));
      // A socket we gave up on may still deliver frames; only the current one counts.
      s.onmessage = (m) => s === ws && receive(m.data);
      s.onclose = (e) => s === ws && closed(e);
    };

    const receive = (data) => {
      let frame;
      try {
        frame = JSON.parse(data);
      } catch {
        return warn('unreadable frame', data);
      }
      const type = frame && frame[K.TYPE];
      if (type === F.JOINED) {
        // The join token expires; the server hands out a fresh one for the next reconnect.
        token = frame[K.TOKEN] || token;
        joined = true;
        attempt = 0;
        html(true);
        queue.splice(0).forEach(send);
        fire(doc, E.CONNECTED);
      } else if (type === F.REPLY) {
        settle(frame[K.REF]);
        applyCommands(frame[K.COMMANDS], env);
      } else if (type === F.ERROR) {
        const el = settle(frame[K.REF]);
        const detail = frame[K.DETAIL];
        console.error(`django-rt: ${frame[K.CODE]}: ${frame[K.MESSAGE]}` + (detail ? '\n' + detail : ''));
        fire(el && el.isConnected ? el : doc, E.ERROR, {
          [K.CODE]: frame[K.CODE],
          [K.MESSAGE]: frame[K.MESSAGE],
          [K.DETAIL]: detail,
          [K.REF]: frame[K.REF],
        });
      } else if (debug) warn('unknown frame', frame);
    };

    const closed = (e) => {
      ws = null;
      joined = false;
      html(false);
      // Replies to refs sent on this socket will never come.
      busy.forEach((n, el) => {
        el.classList.remove(CL.LOADING);
        el.removeAttribute(BUSY);
      });
      busy.clear();
      pending.clear();
      const code = e.code;
      fire(doc, E.DISCONNECTED, { [K.CODE]: code, reason: e.reason });
      // Every protocol close code means the same join would be refused again.
      if (Object.values(X).includes(code)) {
        done = true;
        // A reload fetches a fresh token, or the rt.js that speaks the server's version.
        if (
          code === X.VERSION_MISMATCH ||
          (code === X.TOKEN_EXPIRED && fire(doc, E.ERROR, { [K.CODE]: PROTOCOL.errors.TOKEN_EXPIRED }, true))
        ) loc.reload();
      } else retry = setTimeout(connect, backoffDelay(attempt++));
    };

    // Waiting out the backoff is pointless once the network or the user is back.
    const wake = () => !ws && !doc.hidden && connect();

    for (const binding of config[C.EVENTS] || []) {
      (byType[binding[B.EVENT]] ||= []).push({ binding, timers: new WeakMap() });
    }
    // Capture on document: non-bubbling events (focus, blur, load) arrive too, and elements
    // added later match without rebinding.
    const listeners = Object.keys(byType).map((type) => [doc, type, onEvent, true]);
    listeners.push([window, 'online', wake], [doc, 'visibilitychange', wake]);
    listeners.forEach(([target, ...args]) => target.addEventListener(...args));

    const stop = () => {
      done = true;
      clearTimeout(retry);
      listeners.forEach(([target, ...args]) => target.removeEventListener(...args));
      const s = ws;
      ws = null;
      if (s) s.close();
    };

    connect();
    return {
      config, queue, pending, connect, stop,
      get socket() { return ws; },
      get joined() { return joined; },
      get attempt() { return attempt; },
      get token() { return token; },
    };
  };

  const DjangoRT = (window.DjangoRT = {
    PROTOCOL, start, gather, fieldValue, targetOf, keyMatches, applyCommands, backoffDelay, wsUrl,
    client: null,
  });

  const boot = () => {
    const script = doc.querySelector(`script[${PROTOCOL.configAttribute}]`);
    if (script && !DjangoRT.client) DjangoRT.client = start(JSON.parse(script.textContent));
  };
  if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
