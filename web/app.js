/* gregor console: a single-page app on the broker's JSON API (docs/CONSOLE.md). Plain modern
 * JS, no framework, no build step. Hash routes; a page that shows rates or lag polls the API and
 * draws differences of successive counter samples. Every value from the broker goes into the
 * DOM as text (textContent), never as markup. */
'use strict';

const POLL_MS = 3000;
const HISTORY = 60;               /* samples a chart keeps (3 minutes at POLL_MS) */

/* ---------- small helpers ---------- */

function el(tag, attrs, ...kids) {
  const svg = ['svg', 'path', 'line', 'text', 'g', 'polyline'].includes(tag);
  const e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') e.setAttribute('class', v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else if (k in e && !svg) e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + u[i];
}
function fmtRate(n, unit) {
  if (n === null || n === undefined) return '–';
  if (unit === 'B') return fmtBytes(n) + '/s';
  return (n >= 100 ? n.toFixed(0) : n.toFixed(1)) + '/s';
}
function fmtNum(n) { return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'); }
function fmtTime(ms) {
  if (ms === null || ms === undefined || ms < 0) return '–';
  const d = new Date(Number(ms));
  return isNaN(d) ? String(ms) : d.toISOString().replace('T', ' ').replace('Z', '');
}
/* A datetime-local input's value read as UTC, as the tables show times (its own parse would be local). */
const utcMs = (v) => (v ? Date.parse(v + 'Z') : Date.now());
const enc = (s) => encodeURIComponent(s);

function table(headers, rows, opts) {
  const thead = el('thead', {}, el('tr', {}, headers.map((h) =>
    el('th', { class: h.startsWith('#') ? 'num' : null }, h.replace(/^#/, '')))));
  const body = el('tbody', {}, rows);
  if (!rows.length) body.append(el('tr', {}, el('td', { colSpan: headers.length, class: 'muted' }, (opts && opts.empty) || 'None')));
  return el('div', { class: 'table-wrap' }, el('table', { class: (opts && opts.cls) || null }, thead, body));
}
const num = (v, attrs) => el('td', Object.assign({ class: 'num' }, attrs || {}), v);

/* ---------- the API ---------- */

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || ('HTTP ' + status));
    this.status = status;
    this.code = body && body.error;
  }
}

async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch('/api' + path, init);
  let data = null;
  const text = await r.text();
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = { message: text.slice(0, 200) }; }
  }
  if (r.status === 401 && !path.startsWith('/login')) {
    session.user = null;
    go('#/login');
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

/* ---------- session, banner, nav ---------- */

const session = { user: null, loginRequired: false, loopbackOnly: false, known: false };

async function loadWhoami() {
  try {
    const w = await api('GET', '/whoami');
    session.user = w.user;
    session.loginRequired = !!w.login_required;
    session.loopbackOnly = !!w.loopback_only;
    session.known = true;
  } catch (e) {
    session.known = e.status === 401;
    if (e.status === 401) session.loginRequired = true;
  }
  drawChrome();
}

function drawChrome() {
  const banner = document.getElementById('banner');
  banner.hidden = true;
  if (session.known && !session.loginRequired) {
    banner.hidden = false;
    banner.textContent = session.loopbackOnly
      ? 'No login: bound to localhost. Anyone on this machine can use the console; configure SASL credentials to require a login.'
      : 'No login and the console is reachable beyond localhost: anyone who can reach it can read and change this cluster.';
    banner.classList.toggle('error', !session.loopbackOnly);
  }
  const who = document.getElementById('who');
  who.replaceChildren();
  if (session.loginRequired && session.user) {
    who.append(session.user, el('button', { type: 'button', onclick: logout }, 'Log out'));
  } else if (session.user) {
    who.append(session.user);
  }
}

async function logout() {
  try { await api('POST', '/logout', {}); } catch (e) { /* the session is gone either way */ }
  session.user = null;
  drawChrome();
  go('#/login');
}

function go(hash) { if (location.hash !== hash) location.hash = hash; else route(); }

/* ---------- the confirm dialog (never window.confirm: it blocks and cannot be styled) ---------- */

function confirmDialog(text, okLabel) {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel || 'Confirm';
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
    d.returnValue = '';
    d.showModal();
  });
}

/* ---------- a line chart in SVG ---------- */

/* series: [{name, points: [[time_ms, value], ...]}]; fmt formats a y value. */
function lineChart(series, fmt) {
  const W = 640, H = 180, L = 70, R = 10, T = 10, B = 24;
  const all = series.flatMap((s) => s.points);
  const svg = el('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': series.map((s) => s.name).join(', ') });
  if (Math.max(0, ...series.map((s) => s.points.length)) < 2) {
    svg.append(el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'collecting samples…'));
    return el('div', {}, svg);
  }
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]));
  let ymax = Math.max(...all.map((p) => p[1]));
  if (!(ymax > 0)) ymax = 1;
  ymax *= 1.1;
  const x = (t) => L + (t1 === t0 ? 0 : (t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / ymax) * (H - T - B);
  svg.append(
    el('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }),
    el('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }),
    el('line', { class: 'axis', x1: L, y1: y(ymax / 2), x2: W - R, y2: y(ymax / 2) }),
    el('text', { x: L - 6, y: T + 10, 'text-anchor': 'end' }, fmt(ymax)),
    el('text', { x: L - 6, y: y(ymax / 2) + 4, 'text-anchor': 'end' }, fmt(ymax / 2)),
    el('text', { x: L - 6, y: H - B, 'text-anchor': 'end' }, fmt(0)),
    el('text', { x: L, y: H - 6 }, '-' + Math.round((t1 - t0) / 1000) + ' s'),
    el('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, 'now'));
  series.forEach((s, i) => {
    if (s.points.length < 2) return;
    const d = s.points.map((p, j) => (j ? 'L' : 'M') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1)).join(' ');
    svg.append(el('path', { class: 'line s' + (i % 4), d }));
  });
  const legend = el('div', { class: 'legend' }, series.map((s, i) =>
    el('span', {}, el('span', { class: 'sw s' + (i % 4) }), s.name)));
  return el('div', {}, svg, legend);
}

/* Rates from successive samples of counters: push({time_ms, counters}), rate(key) -> [[t, v/s]]. */
class Sampler {
  constructor(keys) { this.keys = keys; this.samples = []; }
  push(time_ms, values) {
    const last = this.samples[this.samples.length - 1];
    if (last && time_ms <= last.t) return;
    this.samples.push({ t: time_ms, v: values });
    if (this.samples.length > HISTORY + 1) this.samples.shift();
  }
  series(key) {
    const out = [];
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1], b = this.samples[i];
      if (a.v[key] === null || b.v[key] === null) continue; /* a broker did not answer */
      const d = (b.v[key] || 0) - (a.v[key] || 0);
      out.push([b.t, d < 0 ? 0 : (d * 1000) / (b.t - a.t)]);
    }
    return out;
  }
  latest(key) { const s = this.series(key); return s.length ? s[s.length - 1][1] : null; }
}

/* ---------- values: JSON, text or hex ---------- */

function b64bytes(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function toBytes(v, encoding) {
  if (v === null || v === undefined) return null;
  return encoding === 'base64' ? b64bytes(v) : new TextEncoder().encode(v);
}
function hexDump(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length && i < 4096; i += 16) {
    const chunk = bytes.slice(i, i + 16);
    const hex = Array.from(chunk, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const asc = Array.from(chunk, (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(i.toString(16).padStart(6, '0') + '  ' + hex.padEnd(48) + '  ' + asc);
  }
  if (bytes.length > 4096) lines.push('… ' + (bytes.length - 4096) + ' more bytes');
  return lines.join('\n');
}
/* How a value shows: mode 'auto' follows the broker's detection (value_format). */
function renderValue(v, encoding, detected, mode) {
  if (v === null || v === undefined) return el('span', { class: 'muted' }, 'null');
  const bytes = toBytes(v, encoding);
  const text = () => new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  let as = mode === 'auto' ? (detected || (encoding === 'base64' ? 'binary' : 'text')) : mode;
  if (as === 'json') {
    try {
      return el('pre', { class: 'value mono', 'data-format': 'json' }, JSON.stringify(JSON.parse(text()), null, 2));
    } catch (e) {
      if (mode !== 'auto') return el('pre', { class: 'value mono', 'data-format': 'text' }, '(not JSON) ' + text());
      as = 'text';
    }
  }
  if (as === 'text') return el('pre', { class: 'value mono', 'data-format': 'text' }, text());
  return el('pre', { class: 'value mono', 'data-format': 'hex' }, hexDump(bytes));
}

/* ---------- pages ---------- */

let page = { stop() {} };
const view = () => document.getElementById('view');

function poller(fn) {
  let timer = null, busy = false, stopped = false;
  const tick = async () => {
    if (stopped || busy) return;
    if (document.hidden) { timer = setTimeout(tick, POLL_MS); return; }
    busy = true;
    try { await fn(); } finally { busy = false; }
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  };
  tick();
  return { stop() { stopped = true; clearTimeout(timer); } };
}


function showError(box, e) {
  box.replaceChildren(el('div', { class: 'error' }, e instanceof ApiError && e.code ? e.code + ': ' + e.message : String(e.message || e)));
}

/* On a cluster: the brokers that did not answer in time (or left): what they hold is missing or
 * shown as –. */
function unavailable(doc) {
  const ids = doc.unavailable_brokers || [];
  return ids.length ? [el('div', { class: 'warning', id: 'unavailable' }, 'No answer from broker ' + ids.join(', ') +
    ': what it holds is missing or shown as –.')] : [];
}

/* Overview: brokers, topics with sizes and rates, create a topic. */
function pageOverview() {
  const root = view();
  const err = el('div'), stats = el('div', { class: 'grid' }), brokers = el('div'), topics = el('div'), chart = el('div', { class: 'card' });
  const showInternal = el('input', { type: 'checkbox', id: 'show-internal' });
  root.replaceChildren(el('h1', {}, 'Overview'), err, stats,
    el('h2', {}, 'Traffic'), chart,
    el('h2', {}, 'Brokers'), brokers,
    el('h2', {}, 'Topics'), el('div', { class: 'row' }, el('label', { class: 'check' }, showInternal, 'show internal topics')),
    topics, createTopicForm());
  const per = new Map();   /* topic -> Sampler */
  const total = new Sampler(['messages_in', 'bytes_in', 'bytes_out']);
  let last = null;
  const draw = () => {
    const o = last;
    if (!o) return;
    const urp = o.topics.reduce((a, t) => a + (t.under_replicated || 0), 0);
    const offline = o.topics.reduce((a, t) => a + (t.offline || 0), 0);
    stats.replaceChildren(
      stat('Brokers', o.brokers.length), stat('Topics', o.topics.filter((t) => !t.internal).length),
      stat('Partitions', fmtNum(o.topics.reduce((a, t) => a + t.partitions, 0))),
      stat('Consumer groups', o.groups),
      stat('Under-replicated', urp, urp ? 'bad' : null), stat('Offline partitions', offline, offline ? 'bad' : null),
      stat('Messages in', fmtRate(total.latest('messages_in'))),
      stat('Bytes in / out', fmtRate(total.latest('bytes_in'), 'B') + ' / ' + fmtRate(total.latest('bytes_out'), 'B')));
    chart.replaceChildren(lineChart([
      { name: 'bytes in/s', points: total.series('bytes_in') },
      { name: 'bytes out/s', points: total.series('bytes_out') }], (v) => fmtBytes(v)));
    brokers.replaceChildren(table(['#Id', 'Host', '#Port', 'Rack', 'Role'], o.brokers.map((b) => el('tr', {},
      num(b.id), el('td', {}, b.host), num(b.port), el('td', {}, b.rack || '–'),
      el('td', {}, b.controller ? el('span', { class: 'tag ok' }, 'controller') : '', b.self ? el('span', { class: 'tag' }, 'this broker') : '')))));
    const rows = o.topics.filter((t) => showInternal.checked || !t.internal).map((t) => {
      const s = per.get(t.name);
      return el('tr', { 'data-topic': t.name },
        el('td', {}, el('a', { href: '#/topics/' + enc(t.name) }, t.name), t.internal ? el('span', { class: 'tag' }, 'internal') : ''),
        num(t.partitions), num(t.replication_factor), num(fmtBytes(t.size_bytes)),
        num(fmtRate(s && s.latest('messages_in'))), num(fmtRate(s && s.latest('bytes_in'), 'B')), num(fmtRate(s && s.latest('bytes_out'), 'B')),
        num(t.under_replicated ? el('span', { class: 'tag bad' }, t.under_replicated) : '0'),
        num(t.offline ? el('span', { class: 'tag bad' }, t.offline) : '0'));
    });
    topics.replaceChildren(table(['Topic', '#Partitions', '#RF', '#Size', '#Msg in', '#Bytes in', '#Bytes out', '#Under-repl.', '#Offline'], rows, { empty: 'No topics yet' }));
  };
  showInternal.addEventListener('change', draw);
  const p = poller(async () => {
    try {
      const o = await api('GET', '/overview');
      err.replaceChildren(...unavailable(o));
      const sum = { messages_in: 0, bytes_in: 0, bytes_out: 0 };
      for (const t of o.topics) {
        if (!per.has(t.name)) per.set(t.name, new Sampler());
        per.get(t.name).push(o.time_ms, t);
        for (const k of Object.keys(sum)) sum[k] = sum[k] === null || t[k] === null ? null : sum[k] + (t[k] || 0);
      }
      total.push(o.time_ms, sum);
      last = o;
      draw();
    } catch (e) { showError(err, e); }
  });
  return p;
}

function stat(k, v, cls) {
  return el('div', { class: 'stat' }, el('div', { class: 'k' }, k), el('div', { class: 'v' + (cls ? ' ' + cls : '') }, v));
}

function createTopicForm() {
  const out = el('div');
  const name = el('input', { name: 'name', required: true, placeholder: 'orders', pattern: '[A-Za-z0-9._\\-]{1,249}' });
  const parts = el('input', { name: 'partitions', type: 'number', min: 1, value: 1 });
  const rf = el('input', { name: 'replication_factor', type: 'number', min: 1, value: 1 });
  const form = el('form', { class: 'inline', id: 'create-topic' },
    el('label', {}, 'Name', name), el('label', {}, 'Partitions', parts), el('label', {}, 'Replication factor', rf),
    el('button', { type: 'submit', class: 'primary' }, 'Create topic'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', '/topics', { name: name.value, partitions: Number(parts.value), replication_factor: Number(rf.value), configs: {} });
      out.replaceChildren(el('div', { class: 'notice' }, 'Created ', el('a', { href: '#/topics/' + enc(name.value) }, name.value)));
      form.reset();
    } catch (e) { showError(out, e); }
  });
  return el('div', { class: 'card' }, el('h2', {}, 'Create a topic'), form, out);
}

/* Topic: partitions, configs, a live rate chart, delete. */
function pageTopic(name) {
  const root = view();
  const err = el('div'), stats = el('div', { class: 'grid' }), chart = el('div', { class: 'card charts' }), parts = el('div'), configs = el('div');
  const del = el('button', { type: 'button', class: 'danger', id: 'delete-topic' }, 'Delete topic');
  root.replaceChildren(el('h1', {}, 'Topic ', el('span', { class: 'mono' }, name)),
    el('div', { class: 'actions' },
      el('a', { href: '#/topics/' + enc(name) + '/messages' }, el('button', { type: 'button', class: 'primary', tabIndex: -1 }, 'Browse messages')),
      el('a', { href: '#/produce?topic=' + enc(name) }, el('button', { type: 'button', tabIndex: -1 }, 'Produce')), del),
    err, stats, el('h2', {}, 'Rates'), chart, el('h2', {}, 'Partitions'), parts, el('h2', {}, 'Configs'), configs);
  del.addEventListener('click', async () => {
    if (!(await confirmDialog(`Delete topic "${name}" and all its records? This cannot be undone.`, 'Delete'))) return;
    try { await api('DELETE', '/topics/' + enc(name)); go('#/'); } catch (e) { showError(err, e); }
  });
  const s = new Sampler();
  let configsDrawn = false;
  return poller(async () => {
    try {
      const t = await api('GET', '/topics/' + enc(name));
      err.replaceChildren(...unavailable(t));
      s.push(t.time_ms, t);
      const size = t.partitions.reduce((a, p) => a + (p.size_bytes || 0), 0);
      const msgs = t.partitions.reduce((a, p) => a + (p.high_watermark === null || p.log_start === null ? 0 : Math.max(0, p.high_watermark - p.log_start)), 0);
      stats.replaceChildren(stat('Partitions', t.partitions.length), stat('Records', fmtNum(msgs)), stat('Size', fmtBytes(size)),
        stat('Messages in', fmtRate(s.latest('messages_in'))), stat('Bytes in', fmtRate(s.latest('bytes_in'), 'B')),
        stat('Bytes out', fmtRate(s.latest('bytes_out'), 'B')));
      chart.replaceChildren(lineChart([{ name: 'messages in/s', points: s.series('messages_in') }], (v) => v.toFixed(v < 10 ? 1 : 0)),
        lineChart([{ name: 'bytes in/s', points: s.series('bytes_in') }, { name: 'bytes out/s', points: s.series('bytes_out') }], fmtBytes));
      parts.replaceChildren(table(['#Partition', '#Leader', 'Replicas', 'ISR', '#Log start', '#High watermark', '#Log end', '#Size'],
        t.partitions.map((p) => el('tr', { 'data-partition': p.partition },
          num(p.partition), num(p.leader < 0 ? 'none' : p.leader), el('td', {}, p.replicas.join(', ')),
          el('td', {}, p.isr.join(', '), p.isr.length < p.replicas.length ? el('span', { class: 'tag bad' }, 'under-replicated') : ''),
          num(fmtNum(p.log_start)), num(fmtNum(p.high_watermark)), num(fmtNum(p.log_end)), num(fmtBytes(p.size_bytes), p.replica_sizes ? { title: p.replica_sizes.map((r) => 'broker ' + r.broker + ': ' + fmtBytes(r.size_bytes)).join('\n') } : null)))));
      if (!configsDrawn) {
        configsDrawn = true;
        configs.replaceChildren(table(['Name', 'Value', 'Source'], t.configs.map((c) => el('tr', {},
          el('td', { class: 'mono' }, c.name), el('td', { class: 'wrap mono' }, c.sensitive ? '(sensitive)' : (c.value === null ? 'null' : c.value)),
          el('td', {}, c.source === 'DYNAMIC_TOPIC_CONFIG' || c.source === 'TOPIC_CONFIG' ? el('span', { class: 'tag' }, c.source) : el('span', { class: 'muted' }, c.source))))));
      }
    } catch (e) { showError(err, e); }
  });
}

/* Message browser: from beginning/end/offset/timestamp, one partition or all, a filter, paging. */
function pageMessages(name) {
  const root = view();
  const err = el('div'), out = el('div'), more = el('div', { class: 'row' });
  const partition = el('select', { name: 'partition' }, el('option', { value: 'all' }, 'all'));
  const from = el('select', { name: 'from' }, ['beginning', 'end', 'offset', 'timestamp'].map((f) => el('option', { value: f }, f)));
  const offset = el('input', { name: 'offset', type: 'number', min: 0, value: 0 });
  const ts = el('input', { name: 'timestamp', type: 'datetime-local', step: 1 });
  const limit = el('input', { name: 'limit', type: 'number', min: 1, max: 500, value: 50 });
  const filter = el('input', { name: 'filter', placeholder: 'key or value contains…' });
  let mode = 'auto';
  const modes = el('div', { class: 'seg', role: 'group', 'aria-label': 'show values as' });
  for (const m of ['auto', 'json', 'text', 'hex']) {
    modes.append(el('button', { type: 'button', 'data-mode': m, class: m === mode ? 'on' : null, onclick: () => {
      mode = m;
      for (const b of modes.children) b.classList.toggle('on', b.dataset.mode === m);
      drawRecords();
    } }, m));
  }
  const offsetL = el('label', {}, 'Offset', offset), tsL = el('label', {}, 'Timestamp (UTC)', ts);
  const syncFrom = () => { offsetL.hidden = from.value !== 'offset'; tsL.hidden = from.value !== 'timestamp'; };
  from.addEventListener('change', syncFrom);
  syncFrom();
  const form = el('form', { class: 'inline', id: 'browse' },
    el('label', {}, 'Partition', partition), el('label', {}, 'From', from), offsetL, tsL,
    el('label', {}, 'Limit', limit), el('label', {}, 'Filter', filter),
    el('button', { type: 'submit', class: 'primary' }, 'Show'));
  root.replaceChildren(el('h1', {}, el('a', { href: '#/topics/' + enc(name) }, name), ' · messages'),
    el('div', { class: 'card' }, form), el('div', { class: 'row' }, el('span', { class: 'muted' }, 'Values as'), modes),
    err, out, more);
  let records = [];
  let last = null;
  function drawRecords() {
    out.replaceChildren(el('p', { class: 'muted' }, records.length + ' record(s)' + (last ? ', ' + fmtNum(last.scanned) + ' scanned' : '')),
      ...(last && (last.unavailable_partitions || []).length ? [el('div', { class: 'warning', id: 'unavailable-partitions' },
        'No answer from the leader of partition ' + last.unavailable_partitions.join(', ') + ': its records are missing.')] : []),
      table(['#Partition', '#Offset', 'Timestamp (UTC)', 'Key', 'Value and headers'], records.map((r) => el('tr', { class: 'record', 'data-partition': r.partition, 'data-offset': r.offset },
        num(r.partition), num(r.offset), el('td', { title: r.timestamp_type || '' }, fmtTime(r.timestamp)),
        el('td', { class: 'key wrap' }, renderValue(r.key, r.key_encoding, null, mode === 'auto' ? 'auto' : mode)),
        el('td', { class: 'value wrap' }, renderValue(r.value, r.value_encoding, r.value_format === 'null' ? null : r.value_format, mode),
          r.truncated ? el('span', { class: 'tag bad' }, 'cut at 64 KiB of ' + fmtBytes(r.value_size)) : null,
          (r.headers || []).length ? el('div', { class: 'headers' }, r.headers.map((h) => el('div', { class: 'mono' },
            h.key + ': ', h.value === null ? 'null' : (h.value_encoding === 'base64'
              ? Array.from(b64bytes(h.value), (b) => b.toString(16).padStart(2, '0')).join(' ') : h.value)))) : null))),
        { empty: 'No records here', cls: 'records' }));
  }
  async function load(cursor) {
    const q = new URLSearchParams({ partition: partition.value, from: from.value, limit: limit.value });
    if (from.value === 'offset') q.set('offset', offset.value || '0');
    if (from.value === 'timestamp') q.set('timestamp', String(utcMs(ts.value)));
    if (filter.value) q.set('filter', filter.value);
    if (cursor) q.set('cursor', cursor);
    try {
      const res = await api('GET', '/topics/' + enc(name) + '/messages?' + q);
      err.replaceChildren();
      last = res;
      records = cursor ? records.concat(res.records) : res.records;
      drawRecords();
      more.replaceChildren();
      if (res.next_cursor && !res.end) {
        more.append(el('button', { type: 'button', id: 'more', onclick: () => load(res.next_cursor) }, 'Next page'));
      }
    } catch (e) { showError(err, e); }
  }
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(null); });
  api('GET', '/topics/' + enc(name)).then((t) => {
    for (const p of t.partitions) partition.append(el('option', { value: String(p.partition) }, String(p.partition)));
  }).catch((e) => showError(err, e));
  load(null);
  return { stop() {} };
}

/* Consumer groups: the list. */
function pageGroups() {
  const root = view();
  const err = el('div'), list = el('div');
  root.replaceChildren(el('h1', {}, 'Consumer groups'), err, list);
  return poller(async () => {
    try {
      const g = await api('GET', '/groups');
      err.replaceChildren(...unavailable(g));
      list.replaceChildren(table(['Group', 'State', 'Protocol type', '#Members', '#Total lag'], g.groups.map((x) => el('tr', { 'data-group': x.group_id },
        el('td', {}, el('a', { href: '#/groups/' + enc(x.group_id) }, x.group_id)), el('td', {}, stateTag(x.state)),
        el('td', {}, x.protocol_type || '–'), num(fmtNum(x.members)), num(fmtNum(x.total_lag)))), { empty: 'No consumer groups' }));
    } catch (e) { showError(err, e); }
  });
}


function stateTag(s) {
  return el('span', { class: 'tag' + (s === 'Stable' ? ' ok' : s === 'Dead' || s === 'PreparingRebalance' ? ' bad' : '') }, s || '?');
}

/* A group: members and assignments, offsets and lag, total lag over time, reset when empty. */
function pageGroup(id) {
  const root = view();
  const err = el('div'), stats = el('div', { class: 'grid' }), chart = el('div', { class: 'card' }), members = el('div'), offsets = el('div'), reset = el('div');
  root.replaceChildren(el('h1', {}, 'Group ', el('span', { class: 'mono' }, id)), err, stats,
    el('h2', {}, 'Total lag'), chart, el('h2', {}, 'Members'), members, el('h2', {}, 'Offsets'), offsets, reset);
  const lagHist = [];
  let resetState = null;
  return poller(async () => {
    try {
      const g = await api('GET', '/groups/' + enc(id));
      err.replaceChildren(...unavailable(g));
      const lastT = lagHist.length ? lagHist[lagHist.length - 1][0] : -1;
      if (g.time_ms > lastT) { lagHist.push([g.time_ms, g.total_lag || 0]); if (lagHist.length > HISTORY) lagHist.shift(); }
      stats.replaceChildren(stat('State', stateTag(g.state)), stat('Members', g.members.length),
        stat('Protocol', (g.protocol_type || '–') + (g.protocol ? ' / ' + g.protocol : '')),
        el('div', { class: 'stat' }, el('div', { class: 'k' }, 'Total lag'), el('div', { class: 'v', id: 'total-lag' }, fmtNum(g.total_lag))));
      chart.replaceChildren(lineChart([{ name: 'total lag', points: lagHist }], (v) => fmtNum(Math.round(v))));
      members.replaceChildren(table(['Member', 'Client', 'Host', 'Assignments'], g.members.map((m) => el('tr', {},
        el('td', { class: 'mono' }, m.member_id), el('td', {}, m.client_id), el('td', {}, m.host),
        el('td', { class: 'wrap' }, (m.assignments || []).map((a) => el('div', {}, a.topic + ': ' + a.partitions.join(', ')))))),
        { empty: 'No members (the group is empty)' }));
      offsets.replaceChildren(table(['Topic', '#Partition', '#Committed', '#High watermark', '#Lag', 'Metadata'], g.offsets.map((o) => el('tr', { class: 'offset', 'data-topic': o.topic, 'data-partition': o.partition },
        el('td', {}, el('a', { href: '#/topics/' + enc(o.topic) }, o.topic)), num(o.partition),
        num(o.committed === null || o.committed < 0 ? '–' : fmtNum(o.committed)), num(fmtNum(o.high_watermark)),
        num(o.lag === null ? '–' : String(o.lag), { 'data-lag': o.lag === null ? '' : String(o.lag), class: 'num lag' }),
        el('td', { class: 'muted' }, o.metadata || '')))));
      const topics = [...new Set(g.offsets.map((o) => o.topic))].sort();
      const key = g.state + '|' + topics.join(',');
      if (key !== resetState) { resetState = key; reset.replaceChildren(resetForm(id, g.state, topics, err)); }
    } catch (e) { showError(err, e); }
  });
}

function resetForm(id, state, topics, err) {
  const empty = state === 'Empty' || state === 'Dead';
  const topic = el('select', { name: 'topic' }, el('option', { value: '' }, 'all of the group’s topics'), topics.map((t) => el('option', { value: t }, t)));
  const to = el('select', { name: 'to' }, ['earliest', 'latest', 'timestamp'].map((x) => el('option', { value: x }, x)));
  const ts = el('input', { type: 'datetime-local', step: 1, name: 'timestamp' });
  const tsL = el('label', { hidden: true }, 'Timestamp (UTC)', ts);
  to.addEventListener('change', () => { tsL.hidden = to.value !== 'timestamp'; });
  const out = el('div');
  const btn = el('button', { type: 'submit', class: 'danger', disabled: !empty }, 'Reset offsets');
  const form = el('form', { class: 'inline', id: 'reset' }, el('label', {}, 'Topic', topic), el('label', {}, 'To', to), tsL, btn);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const what = (topic.value || 'every topic') + ' to ' + to.value + (to.value === 'timestamp' ? ' ' + (ts.value || 'now') + ' UTC' : '');
    if (!(await confirmDialog(`Reset the committed offsets of group "${id}" on ${what}?`, 'Reset'))) return;
    const body = { topic: topic.value || null, to: to.value };
    if (to.value === 'timestamp') body.timestamp = utcMs(ts.value);
    try {
      const r = await api('POST', '/groups/' + enc(id) + '/reset', body);
      out.replaceChildren(el('div', { class: 'notice' }, 'Reset ' + r.offsets.length + ' partition(s): ' +
        r.offsets.map((o) => o.topic + '-' + o.partition + ' → ' + (o.error ? o.error : o.offset)).join(', ')));
    } catch (e) { showError(out, e); }
  });
  return el('div', { class: 'card' }, el('h2', {}, 'Reset offsets'),
    empty ? null : el('p', { class: 'muted' }, 'Only an empty group can be reset: stop its consumers first (state now ' + state + ').'),
    form, out);
}

/* Produce a record: topic, partition (or the partitioner's choice), key, value, headers. */
function pageProduce(query) {
  const root = view();
  const out = el('div');
  const topic = el('select', { name: 'topic', required: true });
  const partition = el('input', { name: 'partition', type: 'number', min: 0, placeholder: 'any' });
  const key = el('input', { name: 'key', placeholder: '(none)' });
  const value = el('textarea', { name: 'value', placeholder: '{"hello": "world"}' });
  const hdrs = el('div');
  const addHeader = () => hdrs.append(el('div', { class: 'hdr-row' }, el('input', { placeholder: 'header key', class: 'hk' }),
    el('input', { placeholder: 'header value', class: 'hv' }),
    el('button', { type: 'button', onclick: (ev) => ev.target.parentElement.remove() }, 'Remove')));
  const form = el('form', { class: 'stack', id: 'produce' },
    el('div', { class: 'row' }, el('label', {}, 'Topic', topic), el('label', {}, 'Partition', partition)),
    el('label', {}, 'Key', key), el('label', {}, 'Value', value),
    el('div', {}, el('div', { class: 'muted' }, 'Headers'), hdrs, el('button', { type: 'button', onclick: addHeader }, 'Add header')),
    el('button', { type: 'submit', class: 'primary' }, 'Produce'));
  root.replaceChildren(el('h1', {}, 'Produce a message'), el('div', { class: 'card' }, form), out);
  api('GET', '/overview').then((o) => {
    for (const t of o.topics.filter((x) => !x.internal)) topic.append(el('option', { value: t.name, selected: t.name === query.get('topic') }, t.name));
  }).catch((e) => showError(out, e));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const headers = [...hdrs.querySelectorAll('.hdr-row')].map((r) => ({ key: r.querySelector('.hk').value, value: r.querySelector('.hv').value })).filter((h) => h.key);
    try {
      const r = await api('POST', '/topics/' + enc(topic.value) + '/produce', {
        partition: partition.value === '' ? null : Number(partition.value), key: key.value === '' ? null : key.value, value: value.value, headers });
      out.replaceChildren(el('div', { class: 'notice', id: 'produced' }, `Written to ${topic.value}, partition ${r.partition}, offset ${r.offset}. `,
        el('a', { href: '#/topics/' + enc(topic.value) + '/messages' }, 'See it')));
    } catch (e) { showError(out, e); }
  });
  return { stop() {} };
}

function pageLogin() {
  const root = view();
  const out = el('div');
  const user = el('input', { name: 'username', autocomplete: 'username', required: true });
  const pass = el('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = el('form', { id: 'login' }, el('label', {}, 'User', user), el('label', {}, 'Password', pass),
    el('button', { type: 'submit', class: 'primary' }, 'Log in'));
  root.replaceChildren(el('div', { class: 'login card' }, el('h1', {}, 'Log in'),
    el('p', { class: 'muted' }, 'With a SASL user of this cluster; the console then acts with that user’s ACLs.'), out, form));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', '/login', { username: user.value, password: pass.value });
      session.user = r.user;
      await loadWhoami();
      go('#/');
    } catch (e) { showError(out, e.status === 401 ? new Error('Wrong user or password') : e); }
  });
  return { stop() {} };
}

function pageNotFound() {
  view().replaceChildren(el('h1', {}, 'Not found'), el('p', {}, el('a', { href: '#/' }, 'Back to the overview')));
  return { stop() {} };
}

/* ---------- the router ---------- */

function route() {
  page.stop();
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, qs] = raw.split('?');
  const query = new URLSearchParams(qs || '');
  const seg = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (session.loginRequired && !session.user && seg[0] !== 'login') {
    page = { stop() {} };
    go('#/login');           /* no request that would only be told 401 */
    return;
  }
  let nav = '';
  if (seg.length === 0) { nav = 'overview'; page = pageOverview(); }
  else if (seg[0] === 'topics' && seg.length === 2) { nav = 'overview'; page = pageTopic(seg[1]); }
  else if (seg[0] === 'topics' && seg.length === 3 && seg[2] === 'messages') { nav = 'overview'; page = pageMessages(seg[1]); }
  else if (seg[0] === 'groups' && seg.length === 1) { nav = 'groups'; page = pageGroups(); }
  else if (seg[0] === 'groups' && seg.length === 2) { nav = 'groups'; page = pageGroup(seg[1]); }
  else if (seg[0] === 'produce') { nav = 'produce'; page = pageProduce(query); }
  else if (seg[0] === 'login') { page = pageLogin(); }
  else page = pageNotFound();
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === nav);
  const navEl = document.getElementById('nav');
  navEl.classList.remove('open');
  document.getElementById('menu').setAttribute('aria-expanded', 'false');
}

document.addEventListener('DOMContentLoaded', () => {
  const menu = document.getElementById('menu');
  menu.addEventListener('click', () => {
    const open = document.getElementById('nav').classList.toggle('open');
    menu.setAttribute('aria-expanded', String(open));
  });
  window.addEventListener('hashchange', route);
  loadWhoami().then(route);
});
