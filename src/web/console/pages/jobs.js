// The Jobs page: GET /api/v1/jobs a page at a time (keyset: `before`, the
// answer's `next`; never a count, never an offset, so a page among a million
// jobs costs what the first does), kept live by the shared event stream, with
// the counts of GET /api/v1/stats as filter buttons. Every filter and the
// page's position live in the hash (#/jobs?state=failed&q=PAY&before=123),
// so a reload or a link shows the same.
import { api } from '../api.js';
import { el, fmtTime, fmtShortTime, fmtDuration, stateBadge, codeName } from '../ui.js';

const LIMIT = 50;
const FILTERS = ['state', 'result', 'connection', 'q', 'since', 'until'];

// The count buttons: each sets state (and result); "failed" is finished
// jobs whose result is a failure.
const COUNTS = [
  { id: 'all', label: 'All', set: {} },
  { id: 'queued', label: 'Queued', set: { state: 'queued' }, stat: 'queued' },
  { id: 'starting', label: 'Starting', set: { state: 'starting' }, stat: 'starting' },
  { id: 'running', label: 'Running', set: { state: 'running' }, stat: 'running' },
  { id: 'in_doubt', label: 'In doubt', set: { state: 'in_doubt' }, stat: 'in_doubt' },
  { id: 'finished', label: 'Finished (24 h)', set: { state: 'finished' }, stat: 'finished_24h' },
  { id: 'failed', label: 'Failed (24 h)', set: { state: 'finished', result: 'failure' },
    stat: 'failed_24h' },
];

// datetime-local (local time, no zone) <-> RFC 3339 in UTC for the API.
function toIso(local) {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}
function toLocal(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function hashOf(params) {
  const q = new URLSearchParams();
  for (const [k, v] of params) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `#/jobs?${s}` : '#/jobs';
}

// Does a job event fit the filters shown? (For a new job on the first page.)
function fits(ev, f) {
  if (f.state && ev.state !== f.state) return false;
  if (f.result && ev.result !== f.result) return false;
  if (f.connection && ev.connection !== f.connection) return false;
  if (f.since || f.until) return false; // enqueued_at is not in the event: read the page again
  if (f.q) {
    const q = f.q.toLowerCase();
    if (!((ev.name || '').toLowerCase().includes(q) ||
          (ev.external_ref || '').toLowerCase().includes(q))) return false;
  }
  return true;
}

// The read of a page of jobs the route asks for.
function pageQuery(params) {
  const q = new URLSearchParams();
  for (const k of FILTERS) if (params.get(k)) q.set(k, params.get(k));
  if (params.get('before')) q.set('before', params.get('before'));
  q.set('limit', String(LIMIT));
  return q.toString();
}

// A first load reads the page's jobs while the shell asks who is logged in
// (app.js calls prefetch), not after: the page then takes that answer if it
// is for the same read and fresh. A plain fetch: a 401 here is not the
// session's end (a visitor not logged in yet), the page's own read says so.
let prefetched = null; // {q, at, answer: Promise of the page or null}
export function prefetch(params) {
  const q = pageQuery(params);
  const answer = fetch(`/api/v1/jobs?${q}`, { credentials: 'same-origin' })
    .then((r) => (r.ok ? r.json() : null))
    .catch(() => null);
  prefetched = { q, at: Date.now(), answer };
}
async function early(q) {
  const p = prefetched;
  prefetched = null;
  return p && p.q === q && Date.now() - p.at < 5000 ? p.answer : null;
}

// The counts last read, for the next drawing of the page.
const STATS_FRESH_MS = 10000;
let statsCache = null;

export async function render(main, ctx) {
  const params = ctx.route.params;
  const f = {};
  for (const k of FILTERS) f[k] = params.get(k) || '';
  const before = params.get('before') || '';
  // The pages walked through to get here (for "Newer"): kept in the hash too.
  const trail = (params.get('trail') || '').split(',').filter((x) => /^\d+$/.test(x));

  // ---- filters -------------------------------------------------------------------------
  const countsBar = el('div', { class: 'counts', role: 'group', 'aria-label': 'Jobs by state',
                                'data-test': 'counts' });
  const countButtons = {};
  for (const c of COUNTS) {
    const active = c.id === 'all' ? !f.state && !f.result
      : f.state === (c.set.state || '') && f.result === (c.set.result || '');
    const n = el('span', { class: 'n', 'data-test': `count-${c.id}-n` }, '');
    const b = el('button', { type: 'button', 'data-test': `count-${c.id}`,
                             'aria-pressed': active ? 'true' : 'false' }, c.label, n);
    b.addEventListener('click', () => {
      const p = new URLSearchParams();
      for (const k of ['connection', 'q', 'since', 'until']) if (f[k]) p.set(k, f[k]);
      for (const [k, v] of Object.entries(c.set)) p.set(k, v);
      ctx.navigate(hashOf(p));
    });
    countButtons[c.id] = n;
    countsBar.appendChild(b);
  }

  const qIn = el('input', { id: 'f-q', type: 'search', value: f.q, 'data-test': 'filter-q',
                            placeholder: 'job name or reference' });
  const connIn = el('input', { id: 'f-conn', value: f.connection, list: 'f-conn-list',
                               'data-test': 'filter-connection', autocomplete: 'off' });
  const connList = el('datalist', { id: 'f-conn-list' });
  const resIn = el('select', { id: 'f-result', 'data-test': 'filter-result' },
    el('option', { value: '' }, 'any'),
    el('option', { value: 'success', selected: f.result === 'success' }, 'success'),
    el('option', { value: 'failure', selected: f.result === 'failure' }, 'failure'));
  const stateIn = el('select', { id: 'f-state', 'data-test': 'filter-state' },
    el('option', { value: '' }, 'any'),
    ...['queued', 'starting', 'running', 'in_doubt', 'finished'].map((s) =>
      el('option', { value: s, selected: f.state === s }, s.replace('_', ' '))));
  const sinceIn = el('input', { id: 'f-since', type: 'datetime-local', value: toLocal(f.since),
                                'data-test': 'filter-since' });
  const untilIn = el('input', { id: 'f-until', type: 'datetime-local', value: toLocal(f.until),
                                'data-test': 'filter-until' });
  const form = el('form', { class: 'filters', role: 'search', 'data-test': 'filters' },
    el('label', { for: 'f-q' }, 'Search', qIn),
    el('label', { for: 'f-state' }, 'State', stateIn),
    el('label', { for: 'f-conn' }, 'Connection', connIn, connList),
    el('label', { for: 'f-result' }, 'Result', resIn),
    el('label', { for: 'f-since' }, 'Enqueued from', sinceIn),
    el('label', { for: 'f-until' }, 'until', untilIn),
    el('button', { type: 'submit', class: 'primary', 'data-test': 'filter-apply' }, 'Apply'),
    el('button', { type: 'button', 'data-test': 'filter-clear',
                   onclick: () => ctx.navigate('#/jobs') }, 'Clear'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (qIn.value.trim()) p.set('q', qIn.value.trim());
    if (stateIn.value) p.set('state', stateIn.value);
    if (connIn.value.trim()) p.set('connection', connIn.value.trim());
    if (resIn.value) p.set('result', resIn.value);
    if (toIso(sinceIn.value)) p.set('since', toIso(sinceIn.value));
    if (toIso(untilIn.value)) p.set('until', toIso(untilIn.value));
    ctx.navigate(hashOf(p));
  });

  // ---- the table -----------------------------------------------------------------------
  const tbody = el('tbody', { 'data-test': 'jobs-body' });
  const table = el('table', { 'data-test': 'jobs-table' },
    el('caption', { class: 'muted', hidden: true }, 'Jobs, newest first'),
    el('thead', {}, el('tr', {},
      ...['Id', 'State', 'Connection', 'Kind', 'Name', 'Code', 'Enqueued', 'Started', 'Ended',
          'Duration'].map((h) => el('th', { scope: 'col' }, h)))),
    tbody);
  const status = el('p', { class: 'live', 'data-test': 'live-status', 'aria-live': 'polite' }, '');
  const prevB = el('button', { type: 'button', 'data-test': 'page-newer' }, '← Newer');
  const newestB = el('button', { type: 'button', 'data-test': 'page-newest' }, 'Newest');
  const nextB = el('button', { type: 'button', 'data-test': 'page-older' }, 'Older →');
  const pageInfo = el('span', { class: 'muted', 'data-test': 'page-info' }, '');
  const pager = el('nav', { class: 'pager', 'aria-label': 'Pages' }, newestB, prevB, nextB, pageInfo);

  main.append(el('h1', {}, 'Jobs'), countsBar, form, status,
              el('div', { class: 'table-wrap' }, table), pager);

  const rows = new Map(); // id -> {tr, job}
  let nextBefore = null;
  let alive = true;

  function cell(text, attrs = {}) { return el('td', attrs, text); }
  // today's times as 06:43:30, older ones with their date; the full time in
  // a <time> for screen readers and a tooltip (the table fits 1280 px)
  function when(iso) {
    if (!iso) return el('td', {}, '');
    return el('td', {}, el('time', { datetime: iso, title: fmtTime(iso) }, fmtShortTime(iso)));
  }

  function rowFor(job) {
    const tr = el('tr', { 'data-test': 'job-row', 'data-id': job.id });
    fill(tr, job);
    return tr;
  }

  function fill(tr, job) {
    const failed = job.state === 'finished' && job.result !== 'success';
    const waiting = job.state === 'queued' || job.state === 'in_doubt' ||
                    (job.kill_requested_at && job.state !== 'finished');
    tr.className = failed ? 'attn' : waiting ? 'waiting' : '';
    tr.dataset.state = job.state;
    const end = job.finished_at;
    const code = job.completion_code === null || job.completion_code === undefined ? ''
      : `${job.completion_code} ${codeName(job.completion_code)}`;
    tr.replaceChildren(
      el('td', { class: 'num' }, el('a', { href: `#/jobs/${job.id}`, 'data-test': 'job-link' },
                                    String(job.id))),
      el('td', { 'data-test': 'row-state' },
         stateBadge(job.state, job.result, { test: 'row-badge',
                                             killRequested: !!job.kill_requested_at })),
      cell(job.connection, { 'data-test': 'row-connection' }),
      cell(job.kind),
      el('td', { 'data-test': 'row-name' }, job.name || '',
         job.external_ref ? el('span', { class: 'muted' }, ` (${job.external_ref})`) : null),
      cell(code, { 'data-test': 'row-code' }),
      when(job.enqueued_at),
      when(job.started_at),
      when(end),
      cell(job.started_at ? fmtDuration(job.started_at, end) : '', { class: 'num' }));
  }

  async function loadCounts(fresh = false) {
    try {
      // a page turn or a filter draws the page anew: the counts of a moment
      // ago serve (they are kept up by the event stream below), so that
      // /stats, which counts a day of jobs, does not run beside each /jobs
      let s = statsCache && !fresh && Date.now() - statsCache.at < STATS_FRESH_MS ? statsCache.s : null;
      if (!s) {
        s = await api('GET', '/stats');
        statsCache = { at: Date.now(), s };
      }
      if (!alive) return;
      for (const c of COUNTS) {
        if (c.stat) countButtons[c.id].textContent = String(s.states[c.stat] ?? '');
      }
      const known = new Set([...connList.children].map((o) => o.value));
      for (const c of s.connections || []) {
        if (!known.has(c.connection)) connList.appendChild(el('option', { value: c.connection }));
      }
    } catch (e) {
      if (e.status !== 401) status.textContent = `Counts not available: ${e.detail}`;
    }
  }

  async function loadPage() {
    const q = pageQuery(params);
    const t0 = performance.now();
    const page = (await early(q)) || await api('GET', `/jobs?${q}`);
    if (!alive) return;
    rows.clear();
    const trs = page.jobs.map((job) => {
      const tr = rowFor(job);
      rows.set(job.id, { tr, job });
      return tr;
    });
    tbody.replaceChildren(...trs);
    if (!trs.length) {
      tbody.appendChild(el('tr', {}, el('td', { colspan: 10, class: 'muted', 'data-test': 'no-jobs' },
                                          'No jobs match.')));
    }
    nextBefore = page.next;
    nextB.disabled = !nextBefore;
    prevB.disabled = !before;
    newestB.disabled = !before;
    pageInfo.textContent = before ? `older than job ${before}` : 'newest first';
    main.dataset.loadMs = String(Math.round(performance.now() - t0));
    performance.mark('amtacs-jobs-rendered');
  }

  function go(p) {
    const q = new URLSearchParams();
    for (const k of FILTERS) if (f[k]) q.set(k, f[k]);
    for (const [k, v] of Object.entries(p)) if (v) q.set(k, v);
    ctx.navigate(hashOf(q));
  }
  nextB.addEventListener('click', () => {
    if (nextBefore) go({ before: String(nextBefore), trail: [...trail, before || '0'].join(',') });
  });
  prevB.addEventListener('click', () => {
    const t = trail.slice();
    const back = t.pop();
    go({ before: back && back !== '0' ? back : '', trail: t.join(',') });
  });
  newestB.addEventListener('click', () => go({}));

  // ---- live ----------------------------------------------------------------------------
  // A job shown changes in place; a new job that fits is on the newest page:
  // that page is read again (at most once a second, however many arrive).
  let reloadTimer = null;
  let countsTimer = null;
  function later(which) {
    if (which === 'page' && !reloadTimer) {
      reloadTimer = setTimeout(async () => {
        reloadTimer = null;
        try { await loadPage(); } catch (e) { /* shown at the next try */ }
      }, 1000);
    }
    if (which === 'counts' && !countsTimer) {
      countsTimer = setTimeout(() => { countsTimer = null; loadCounts(true); }, 2000);
    }
  }
  function onJob(ev) {
    later('counts');
    const shown = rows.get(ev.id);
    if (shown) {
      const job = shown.job;
      job.state = ev.state;
      job.completion_code = ev.completion_code;
      job.result = ev.result;
      if (ev.state === 'running' && !job.started_at) job.started_at = ev.at;
      if (ev.state === 'finished') job.finished_at = ev.at;
      if (ev.state === 'queued') { job.started_at = null; job.finished_at = null; }
      if (ev.state === 'finished') job.kill_requested_at = job.kill_requested_at || null;
      // a filter on state or result the job no longer fits: the row says so until the next read
      fill(shown.tr, job);
      return;
    }
    const top = rows.size ? Math.max(...rows.keys()) : 0;
    if (!before && ev.id > top && fits(ev, f)) later('page');
  }
  const offJob = ctx.events.on('job', onJob);
  const offReset = ctx.events.on('reset', () => { later('page'); later('counts'); });
  const offReady = ctx.events.on('ready', () => { status.textContent = 'Live: changes show as they happen.'; });
  status.textContent = 'Live: changes show as they happen.';

  // durations of running jobs tick (the cell's text alone: links stay put under a pointer)
  const tick = setInterval(() => {
    for (const { tr, job } of rows.values()) {
      if (job.state === 'running' && job.started_at && tr.lastElementChild) {
        tr.lastElementChild.textContent = fmtDuration(job.started_at, null);
      }
    }
  }, 5000);

  // the jobs first: the counts are asked for once the page is drawn
  try {
    await loadPage();
  } catch (e) {
    if (e.status === 401) throw e;
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: 10, class: 'error', 'data-test': 'jobs-error' },
                                          `The jobs cannot be read: ${e.detail}`)));
  }
  loadCounts();
  return () => {
    alive = false;
    offJob(); offReset(); offReady();
    clearInterval(tick);
    clearTimeout(reloadTimer);
    clearTimeout(countsTimer);
  };
}
