/*! django-rt client: runs server-side Django view methods on DOM events, over a WebSocket. */
(() => {
  'use strict';
  // Included twice, the page would bind every event twice and open two sockets.
  if (window.DjangoRT) return;

  const deepFreeze = (o) => {
    Object.values(o).forEach((v) => v && typeof v === 'object' && deepFreeze(v));
    return Object.freeze(o);
  };

  // The sections are written in lower case: upper() turns their keys into the names the code
  // reads (binding's prevent_default is B.PREVENT_DEFAULT), and named() lists the values that
  // are their own name (frames' 'join' is F.JOIN), then the others.
  const upper = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k.toUpperCase(), v]));
  const named = (values, others) =>
    upper({ ...Object.fromEntries(values.split(' ').map((v) => [v, v])), ...others });

  // The wire protocol's only definition on this side. It must equal
  // django_rt.protocol.as_dict(): tests/test_protocol_sync.py compares the two.
  const PROTOCOL = deepFreeze({
    version: 1,
    frames: named('join event resync joined reply error patch'),
    keys: named('token ref target code message detail hash ops ids', {
      type: 't', version: 'v', handler: 'h', gathered: 'g', commands: 'cmds',
    }),
    targetKeys: named('id tag name value data'),
    commandKeys: upper({ action: 'a', selector: 's', content: 'c' }),
    actions: named(
      'html text append prepend replace remove attr add_class remove_class value focus redirect dispatch reset',
    ),
    dispatchKeys: named('name detail'),
    patchKeys: named('id html keys items title message set', { op: 'o' }),
    patchOps: named('region list morph reload head stale attrs'),
    markers: upper({ start: 'rt:', end: '/rt:', item: '#' }),
    errors: named(
      'bad_frame frame_too_large not_joined already_joined version_mismatch invalid_token token_expired ' +
        'forbidden unknown_handler invalid_value value_too_large rate_limited handler_error session_ended ' +
        'access_revoked too_many_connections join_timeout',
    ),
    close: upper({
      max_age: 4000, join_timeout: 4400, invalid_token: 4401, forbidden: 4403, token_expired: 4408,
      version_mismatch: 4426, too_many_connections: 4429, session_ended: 4440, access_revoked: 4443,
    }),
    config: named('url token events debug hash morph', { version: 'v' }),
    binding: named('debounce throttle key sync', {
      event: 'e', selector: 's', handler: 'h', gather: 'g', prevent_default: 'prevent', stop_propagation: 'stop',
    }),
    classes: upper({ connected: 'rt-connected', disconnected: 'rt-disconnected', loading: 'rt-loading' }),
    domEvents: upper({ connected: 'rt:connected', disconnected: 'rt:disconnected', error: 'rt:error' }),
    configAttribute: 'data-rt-config',
  });
  // scripts/build-client writes the value in place of each use of these aliases (K.TYPE) in
  // rt.min.js: read PROTOCOL through them alone (PROTOCOL.close as a whole is fine).
  const {
    frames: F, keys: K, targetKeys: T, commandKeys: CK, actions: A, close: X, config: C,
    binding: B, classes: CL, domEvents: E, dispatchKeys: D, patchKeys: PK, patchOps: PO, markers: M,
    errors: ER,
  } = PROTOCOL;
  // What a close code of the server asks for (any other close: reconnect with backoff).
  // The page's session ended, or its view now refuses: a reload goes where the view sends
  // the browser now (a login page). An old connection: rejoin at once with the fresh token.
  const RELOAD_FOR = {
    __proto__: null,
    [X.TOKEN_EXPIRED]: ER.TOKEN_EXPIRED, [X.SESSION_ENDED]: ER.SESSION_ENDED, [X.ACCESS_REVOKED]: ER.ACCESS_REVOKED,
  };

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
    target.dispatchEvent(new CustomEvent(name, { detail, bubbles: true, cancelable }));
  const classes = (c) => String(c ?? '').split(/\s+/).filter(Boolean);
  // What fn() returns, or undefined once it throws (an invalid selector, a field without a
  // caret), after failed(error) when given.
  const safe = (fn, failed) => {
    try {
      return fn();
    } catch (error) {
      if (failed) failed(error);
    }
  };

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
      // An invalid selector: the server coerces null into "matched no element", a clearer error.
      const el = safe(() => doc.querySelector(selector));
      out[name] = el ? fieldValue(el) : null;
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
    // A form's fields go back to what its markup says (after a submit that rendered it again).
    [A.RESET]: (el) => typeof el.reset === 'function' && el.reset(),
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
        const run = ACTIONS[action];
        // Without a selector, only a dispatch has an element: the document.
        const els = !run ? [] : selector != null ? [...doc.querySelectorAll(selector)] : action === A.DISPATCH ? [doc] : [];
        if (action === A.REDIRECT) {
          // A javascript: URL built from user input would run in this page.
          if (/^https?:$/.test(new URL(content, loc.href).protocol)) loc.assign(content);
          else warn('refused redirect', content);
        } else if (!run) {
          if (env.debug) warn('unknown action', cmd);
        } else if (!els.length) {
          if (env.debug) warn('no match', selector, cmd);
        } else (action === A.FOCUS ? els.slice(0, 1) : els).forEach((el) => run(el, content));
      } catch (error) {
        warn('command failed', cmd, error);
      }
    }
  };

  // Live regions. The server renders every live value between two sibling comments:
  //   <!--rt:ID--> … <!--/rt:ID-->          a region: Marker.START + ID, Marker.END + ID
  //   <!--rt:ID#KEY--> … <!--/rt:ID#KEY-->  an item of list region ID (Marker.ITEM), as a direct
  //                                         child of the list, between the list's own markers
  // IDs are opaque strings ("3", "3.1", "4#12.2": region 2 inside item 12 of list 4); an item is
  // a region whose ID is LIST#KEY. Patches address regions by ID and replace what lies between
  // the markers, never the markers themselves, so a replaced region can be patched again.
  const index = new Map(); // region ID -> its start comment; trusted only after a check
  let idiomorph; // the promise of Idiomorph, whose script is injected at most once per page

  // Calls fn(comment, id) for each start marker under root, in page order.
  const eachStart = (root, fn) => {
    const walker = doc.createTreeWalker(root, 128 /* NodeFilter.SHOW_COMMENT */);
    for (let n; (n = walker.nextNode()); ) n.data.startsWith(M.START) && fn(n, n.data.slice(M.START.length));
  };
  const indexFrom = (root) => eachStart(root, (n, id) => index.set(id, n));

  // Two siblings and the nodes between them.
  const range = (a, b) => {
    const out = [a];
    while (a !== b) out.push((a = a.nextSibling));
    return out;
  };

  const isEnd = (n, id) => n.nodeType === 8 && n.data === M.END + id;
  const findEnd = (start, id) => {
    for (let n = start; (n = n.nextSibling); ) if (isEnd(n, id)) return n;
  };

  // Markup replaced by a command or a morph leaves stale entries: those, and misses, cost one
  // rescan of the page; markup we insert ourselves is indexed as it goes in.
  const findRegion = (id) => {
    id = String(id);
    let start = index.get(id);
    if (!start || !start.isConnected || start.data !== M.START + id) {
      index.clear();
      indexFrom(doc);
      start = index.get(id);
    }
    const end = start && findEnd(start, id);
    return end ? [start, end] : null;
  };

  // A <template> parses any fragment in context: <tr> or <option> survive, scripts never run.
  const template = (html) => {
    const t = doc.createElement('template');
    t.innerHTML = html;
    return t;
  };
  const parse = (html) => template(html).content;

  const checkable = (el) => /^(checkbox|radio)$/.test(el.type);
  // What the user made of a field, or (dflt) what its markup says: what a form reset restores.
  const fieldState = (el, dflt) => {
    if (el.tagName === 'SELECT') {
      const options = [...el.options];
      let on = options.filter((o) => (dflt ? o.defaultSelected : o.selected));
      if (dflt && !on.length && !el.multiple) on = options.slice(0, 1);
      return on.map((o) => o.value);
    }
    return checkable(el) ? (dflt ? el.defaultChecked : el.checked) : dflt ? el.defaultValue : el.value;
  };
  const setFieldState = (el, state) => {
    if (el.tagName === 'SELECT') for (const o of el.options) o.selected = state.includes(o.value);
    else if (checkable(el)) el.checked = state;
    else el.value = state;
  };
  // The server re-renders a field with its own default: when that default did not change, what
  // the user typed into el is newer and goes onto target (the replacement, or el itself once
  // morphed). Returns that step, if there is one to take.
  const carry = (el, twin, target = twin) => {
    // A page cannot set a file input's value: the chosen file is lost with its input.
    const type = el.type;
    if (!FIELD.test(el.tagName) || twin.tagName !== el.tagName || twin.type !== type || type === 'file') return;
    const mine = fieldState(el);
    const dflt = String(fieldState(el, 1));
    const kept = owned(el) || (String(mine) !== dflt && dflt === String(fieldState(twin, 1)));
    if (kept) return () => setFieldState(target, mine);
  };
  // Selectors of the bound values (RTView.bind): the server's value of such a field came from
  // the field, so while the user is in it what it holds is newer than any render of it.
  const bound = [];
  const owned = (el) =>
    el === doc.activeElement &&
    bound.some((selector) => safe(() => el.matches(selector)));
  // Counterparts across a replacement: the same id, or else the same tag, type and name (and
  // value, within a group of checkboxes or radios), matched in document order.
  const twinKey = (el) => {
    const name = el.getAttribute('name');
    return el.id ? 'id:' + el.id : name == null ? '' : [el.tagName, el.type, name, checkable(el) && el.value] + '';
  };
  // Not a text field: there is no caret to keep, and focus is all there is.
  const selection = (el) => safe(() => [el.selectionStart, el.selectionEnd, el.selectionDirection]);
  const refocus = (el, sel) => {
    el.focus();
    safe(() => sel[0] != null && el.setSelectionRange(...sel));
  };

  // The one place that keeps what the user is doing across a replacement of the nodes old
  // by the fragment fresh (not yet inserted): the focus and caret, and typed values. Returns
  // what puts them back onto the counterparts, to call once fresh is in the page.
  const keepState = (old, fresh) => {
    const twins = new Map();
    for (const el of fresh.querySelectorAll('*')) {
      const k = twinKey(el);
      if (k) (twins.get(k) || twins.set(k, []).get(k)).push(el);
    }
    const active = doc.activeElement;
    const steps = [];
    for (const el of old.flatMap((n) => (n.nodeType === 1 ? [n, ...n.querySelectorAll('*')] : []))) {
      const k = twinKey(el);
      const twin = k && twins.get(k)?.shift();
      if (!twin) continue;
      steps.push(carry(el, twin));
      // After the value: setting a value moves the caret.
      if (el === active) steps.push(((sel) => () => refocus(twin, sel))(selection(el)));
    }
    return () => steps.forEach((step) => step && step());
  };

  // Replaces what lies strictly between two markers.
  const replaceBetween = (start, end, fresh) => {
    const old = range(start, end).slice(1, -1);
    const restore = keepState(old, fresh);
    old.forEach((n) => n.remove());
    indexFrom(fresh);
    end.before(fresh);
    restore();
  };

  // The longest run of seq (distinct numbers) that is already increasing, as a Set: the
  // list items that may stay where they are while the others move around them.
  const increasing = (seq) => {
    const tails = []; // tails[n]: index in seq of the smallest end of an increasing run of n + 1
    const prev = [];
    seq.forEach((v, i) => {
      let lo = 0;
      let hi = tails.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (seq[tails[mid]] < v) lo = mid + 1;
        else hi = mid;
      }
      prev[i] = lo ? tails[lo - 1] : -1;
      tails[lo] = i;
    });
    const out = new Set();
    for (let i = tails[tails.length - 1]; i >= 0; i = prev[i]) out.add(seq[i]); // none: undefined
    return out;
  };

  const applyList = (op) => {
    const id = String(op[PK.ID]);
    const region = findRegion(id);
    if (!region) return false;
    const [start, end] = region;
    const item = id + M.ITEM; // the ID of an item, without its key
    const prefix = M.START + item;
    const have = new Map(); // key -> [start, end] of its item, in page order
    for (let n = start.nextSibling; n !== end; n = n.nextSibling) {
      if (n.nodeType === 8 && n.data.startsWith(prefix)) {
        const key = n.data.slice(prefix.length);
        const stop = findEnd(n, item + key);
        if (!stop) return false;
        have.set(key, [n, stop]);
        n = stop;
      }
    }
    const keys = (op[PK.KEYS] || []).map(String);
    const want = new Set(keys);
    const items = op[PK.ITEMS] || {};
    // An item we neither have nor are given: the page missed a patch. Checked before touching
    // anything, so the resync morphs an intact list.
    if (keys.some((k) => !have.has(k) && typeof items[k] !== 'string')) return false;
    const pos = new Map([...have.keys()].map((k, i) => [k, i]));
    have.forEach(([s, e], k) => {
      if (!want.has(k)) {
        range(s, e).forEach((n) => n.remove());
        have.delete(k);
      }
    });
    for (const k of keys) {
      const html = items[k];
      if (typeof html !== 'string') continue;
      const fresh = parse(html);
      if (have.has(k)) replaceBetween(...have.get(k), fresh);
      else {
        const s = doc.createComment(prefix + k);
        const e = doc.createComment(M.END + item + k);
        fresh.prepend(s);
        fresh.append(e);
        indexFrom(fresh);
        // Its nodes stay siblings inside the fragment until they are moved into place below.
        have.set(k, [s, e]);
      }
    }
    // Only the items out of order move: a moved node loses focus, and costs the browser work.
    const stay = increasing(keys.filter((k) => pos.has(k)).map((k) => pos.get(k)));
    const active = doc.activeElement;
    const sel = selection(active);
    let anchor = end;
    for (let i = keys.length; i--; ) {
      const [s, e] = have.get(keys[i]);
      if (!stay.has(pos.get(keys[i]))) anchor.before(...range(s, e));
      anchor = s;
    }
    if (active && active !== doc.activeElement && active.isConnected) refocus(active, sel);
    return true;
  };

  const loadIdiomorph = (url) =>
    window.Idiomorph ||
    (idiomorph ||= new Promise((resolve, reject) => {
      if (!url) throw new Error('no idiomorph URL');
      const script = doc.createElement('script');
      script.src = url;
      script.onload = () => resolve(window.Idiomorph);
      script.onerror = reject;
      // Not in <body>: that is what gets morphed.
      doc.head.append(script);
    }));

  // The configuration and the client's own scripts must survive a morph, and a script in the
  // new markup would only load rt.js twice: scripts are neither removed, changed nor added.
  const notScript = (node) => node.nodeName !== 'SCRIPT';

  // idiomorph matches elements by id; a keyed list item carries its key in comments only. For a
  // morph, the first element of each item borrows an id made of its marker, so that a row stays
  // the same element (with the focus and what is typed into it) when the rows before it go.
  const ITEM_ID = 'data-rt-item';
  const tagItems = (root) =>
    eachStart(root, (el, id) => {
      if (!id.includes(M.ITEM)) return;
      while ((el = el.nextSibling) && el.nodeType !== 1 && !isEnd(el, id));
      if (el && el.nodeType === 1 && !el.id) {
        el.id = `${ITEM_ID}:${id}`;
        el.setAttribute(ITEM_ID, '');
      }
    });
  const untagItems = () =>
    doc.querySelectorAll(`[${ITEM_ID}]`).forEach((el) => {
      el.removeAttribute('id');
      el.removeAttribute(ITEM_ID);
    });

  const setTitle = (op) => typeof op[PK.TITLE] === 'string' && (doc.title = op[PK.TITLE]);

  // Morphs the children of el (the body or the head) into content, leaving alone the nodes
  // keep refuses; without idiomorph, replaces them with the nodes of the fragment fresh.
  const morphChildren = async (el, content, fresh, env, keep, options, morphed = keep) => {
    try {
      const Idiomorph = await loadIdiomorph(env.morph);
      tagItems(el);
      Idiomorph.morph(el, content, {
        morphStyle: 'innerHTML',
        ...options,
        callbacks: { beforeNodeAdded: keep, beforeNodeRemoved: keep, beforeNodeMorphed: morphed },
      });
    } catch (error) {
      warn('morph failed', error);
      [...el.childNodes].forEach((n) => keep(n) && n.remove());
      el.prepend(...[...fresh.childNodes].filter(keep));
    }
    untagItems();
  };

  const morph = async (op, env) => {
    const fresh = template(op[PK.HTML]);
    tagItems(fresh.content);
    const html = fresh.innerHTML;
    const after = [];
    await morphChildren(doc.body, html, fresh.content, env, notScript, {
      // What the user is typing into keeps its value; focus stays where it is.
      ignoreActiveValue: true,
      restoreFocus: true,
    }, (old, next) => {
      if (!notScript(old)) return false;
      after.push(carry(old, next, old));
    });
    after.forEach((step) => step && step());
    setTitle(op);
    return true;
  };

  // The head's title, and its other elements (a <style>, a <meta>); its scripts stay as they are.
  const head = async (op, env) => {
    setTitle(op);
    const html = op[PK.HTML];
    if (typeof html === 'string') {
      const fresh = parse(html);
      // The title is set apart (above): leave the element as it is.
      await morphChildren(doc.head, fresh.childNodes, fresh, env, (node) => notScript(node) && node.nodeName !== 'TITLE');
    }
    return true;
  };

  const PATCHES = {
    __proto__: null,
    [PO.HEAD]: head,
    [PO.REGION]: (op) => {
      const region = findRegion(op[PK.ID]);
      if (region) replaceBetween(...region, parse(op[PK.HTML]));
      return !!region;
    },
    // Attribute values of the elements of a region, by their place among its elements in
    // document order: [[place, tag, name, value], …]. A tag that is not there is a miss.
    [PO.ATTRS]: (op) => {
      const region = findRegion(op[PK.ID]);
      const els = [];
      for (let n = region && region[0].nextSibling; n && n !== region[1]; n = n.nextSibling)
        if (n.nodeType === 1) els.push(n, ...n.querySelectorAll('*'));
      const fits = region && op[PK.SET].every(([at, tag]) => els[at]?.localName === tag);
      if (fits) for (const [at, , name, value] of op[PK.SET]) els[at].setAttribute(name, value);
      return !!fits;
    },
    [PO.LIST]: applyList,
    [PO.MORPH]: morph,
    // What the page showed is gone (its view now refuses): only a fresh load can tell what is left.
    [PO.RELOAD]: (op, env) => {
      (env.location || location).reload();
      return true;
    },
    // The server could not update the page: it may show old data until a later morph.
    [PO.STALE]: (op, env) => {
      report(op[PK.MESSAGE], env.debug, true);
      fire(doc, E.ERROR, { [K.CODE]: PO.STALE, [K.MESSAGE]: op[PK.MESSAGE] });
      return true;
    },
  };

  // In DEBUG, what failed is shown on the page, not only in the console. A notice that the page
  // may be stale goes with the next patch that brings it up to date.
  const NOTICE = 'rt-notice';
  const notice = (message, stale = false) => {
    let box = doc.getElementById(NOTICE);
    if (!box) {
      box = doc.createElement('div');
      box.id = NOTICE;
      box.setAttribute('role', 'alert');
      box.style.cssText =
        'position:fixed;z-index:2147483647;inset:auto 1em 1em;padding:1em;background:#7f1d1d;' +
        'color:#fff;font:14px system-ui;white-space:pre-wrap;cursor:pointer';
      box.onclick = () => box.remove();
      doc.documentElement.append(box);
    }
    box.toggleAttribute('data-stale', stale);
    box.textContent = `django-rt: ${message} (click to dismiss)`;
  };
  const report = (message, debug, stale) => {
    console.error('django-rt: ' + message);
    if (debug) notice(message, stale);
  };
  // A patch that brings the page up to date ends a stale notice; a reply that went well ends
  // an error's.
  const clearNotice = (stale) => {
    const box = doc.getElementById(NOTICE);
    if (box && box.hasAttribute('data-stale') === stale) box.remove();
  };

  // Applies a patch frame's ops in order. Returns whether every op found its region (false:
  // the page and the server disagree, ask for a resync), or the promise of that once an op
  // had to wait (a morph loading idiomorph): the ops after it wait too. Never throws. The ids
  // of the ops that missed go into env.missed, when it is an array (null: an op without one).
  const applyPatch = (ops, env = {}, from = 0, ok = true) => {
    for (let i = from; ops && i < ops.length; i++) {
      let done = false;
      try {
        const run = PATCHES[ops[i][PK.OP]];
        // An op this client does not know leaves the page behind the server, like a miss.
        done = run ? run(ops[i], env) : warn('unknown patch op', ops[i]);
      } catch (error) {
        warn('patch failed', ops[i], error);
      }
      if (done && done.then) return done.then(() => applyPatch(ops, env, i + 1, ok));
      if (!done) {
        ok = false;
        const id = ops[i]?.[PK.ID];
        if (env.missed) env.missed.push(id == null ? null : String(id));
        if (env.debug) warn('patch missed', ops[i]);
      }
    }
    return ok;
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
    const env = { debug, location: loc, morph: config[C.MORPH] };
    const byType = {}; // event type -> [binding, its timers by element] pairs
    const pending = new Map(); // ref -> the element whose event it is
    const inflight = new Map(); // ref -> an event frame sent on this socket, not answered yet
    const busy = new Map(); // element -> how many of its refs are pending
    const queue = [];
    let token = config[C.TOKEN];
    let ws = null;
    let joined = false;
    let patched = false; // the page has changed since its render hash was taken
    let done = false; // closed for good: a reconnect would be refused again
    let attempt = 0;
    let ref = 0;
    let retry;
    let tail = null; // the promise of the frames still being applied, if one had to wait

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
      inflight.delete(r);
      const el = pending.get(r);
      if (el) {
        pending.delete(r);
        mark(el, -1);
      }
      return el;
    };

    const send = (frame) => ws.send(JSON.stringify(frame));
    const sendEvent = (frame) => {
      inflight.set(frame[K.REF], frame);
      send(frame);
    };

    // Frames apply in arrival order: a patch may wait for idiomorph to load, and a reply or a
    // patch arriving meanwhile must not overtake it. With nothing waiting, a frame applies at once.
    const inOrder = (task) => {
      const run = () => safe(task, warn);
      const result = tail ? tail.then(run) : run();
      if (result && result.then) {
        const t = (tail = result.catch(warn).then(() => {
          if (tail === t) tail = null;
        }));
      }
    };

    // Once per patch frame that missed, naming the regions it missed: the server answers with
    // the regions that hold them (or a morph). A socket lost in the meantime needs none: the
    // next join sends the page's hash, and the server morphs if needed.
    const synced = (ok, missed) => {
      if (ok || !joined) return;
      const frame = { [K.TYPE]: F.RESYNC };
      if (missed.length && !missed.includes(null)) frame[K.IDS] = [...new Set(missed)];
      send(frame);
    };

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
      if (joined) sendEvent(frame);
      else if (queue.push(frame) > QUEUE_LIMIT) settle(queue.shift()[K.REF]);
    };

    // A bound value lives with the connection's view: after every join (a reconnect starts
    // from the page's URL again) the server learns what the element holds now.
    const syncBound = () => {
      for (const [binding] of Object.values(byType).flat()) {
        if (!binding[B.SYNC]) continue;
        const el = safe(() => doc.querySelector(binding[B.SELECTOR]), debug && warn);
        if (el) emit(binding, el);
      }
    };

    const onEvent = (event) => {
      let node = event.target;
      if (node && node.nodeType === 3) node = node.parentElement;
      if (!node || !node.closest) return;
      for (const [binding, timers] of byType[event.type]) {
        const el = safe(() => node.closest(binding[B.SELECTOR]), debug && warn);
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
      // The hash names the page as rendered: the server morphs it if its render has moved on.
      // Once patched, the page matches no hash we know, so a rejoin asks for the morph.
      s.onopen = () => s.send(JSON.stringify({
        [K.TYPE]: F.JOIN, [K.VERSION]: PROTOCOL.version, [K.TOKEN]: token, [K.HASH]: patched ? null : config[C.HASH],
      }));
      // A socket we gave up on may still deliver frames; only the current one counts.
      s.onmessage = (m) => s === ws && receive(m.data);
      s.onclose = (e) => s === ws && closed(e);
    };

    const receive = (data) => {
      let frame;
      try {
        frame = JSON.parse(data);
      } catch {
        return warn('bad frame', data);
      }
      const type = frame && frame[K.TYPE];
      if (type === F.JOINED) {
        // The join token expires; the server hands out a fresh one for the next reconnect.
        token = frame[K.TOKEN] || token;
        joined = true;
        attempt = 0;
        html(true);
        queue.splice(0).forEach(sendEvent);
        syncBound();
        fire(doc, E.CONNECTED);
      } else if (type === F.REPLY) {
        clearNotice(false);
        inOrder(() => {
          settle(frame[K.REF]);
          applyCommands(frame[K.COMMANDS], env);
        });
      } else if (type === F.PATCH) {
        patched = true;
        const ops = Array.isArray(frame[K.OPS]) ? frame[K.OPS] : [];
        if (!ops.some((op) => op && op[PK.OP] === PO.STALE)) clearNotice(true);
        inOrder(() => {
          const missed = [];
          const ok = applyPatch(frame[K.OPS], { ...env, missed });
          return ok.then ? ok.then((done) => synced(done, missed)) : synced(ok, missed);
        });
      } else if (type === F.ERROR) {
        const el = settle(frame[K.REF]);
        const detail = frame[K.DETAIL];
        report(`${frame[K.CODE]}: ${frame[K.MESSAGE]}` + (detail ? '\n' + detail : ''), debug);
        fire(el?.isConnected ? el : doc, E.ERROR, {
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
      const code = e.code;
      if (code === X.MAX_AGE) {
        // The server closes an old connection between two frames and ignores what arrives
        // after: the events it did not answer did not run, and go out again after the rejoin.
        queue.unshift(...[...inflight.values()].sort((a, b) => a[K.REF] - b[K.REF]));
        inflight.clear();
      } else {
        // Replies to refs sent on this socket will never come.
        busy.forEach((n, el) => mark(el, -n));
        pending.clear();
        inflight.clear();
      }
      fire(doc, E.DISCONNECTED, { [K.CODE]: code, reason: e.reason });
      if (code === X.MAX_AGE) retry = setTimeout(connect, backoffDelay(0));
      // Every other protocol close code means the same join would be refused again.
      else if (Object.values(PROTOCOL.close).includes(code)) {
        done = true;
        // A reload fetches a fresh token, the rt.js that speaks the server's version, or the
        // page the view now sends the browser to; a listener may keep the page as it is.
        const reason = RELOAD_FOR[code];
        if (code === X.VERSION_MISMATCH || (reason && fire(doc, E.ERROR, { [K.CODE]: reason }, true))) loc.reload();
      } else retry = setTimeout(connect, backoffDelay(attempt++));
    };

    // Waiting out the backoff is pointless once the network or the user is back.
    const wake = () => !ws && !doc.hidden && connect();

    for (const binding of config[C.EVENTS] || []) {
      (byType[binding[B.EVENT]] ||= []).push([binding, new WeakMap()]);
      if (binding[B.SYNC]) bound.push(binding[B.SELECTOR]);
    }
    // Capture on document: non-bubbling events (focus, blur, load) arrive too, and elements
    // added later match without rebinding.
    const listeners = Object.keys(byType).map((type) => [doc, type, onEvent, true]);
    listeners.push([window, 'online', wake], [doc, 'visibilitychange', wake]);
    listeners.forEach(([target, ...args]) => target.addEventListener(...args));

    const stop = () => {
      done = true;
      bound.length = 0;
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
    applyPatch, findRegion, client: null,
  });

  const boot = () => {
    const script = doc.querySelector(`script[${PROTOCOL.configAttribute}]`);
    if (script && !DjangoRT.client) DjangoRT.client = start(JSON.parse(script.textContent));
  };
  if (doc.readyState === 'loading') doc.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
