// The Connections page: one card per AMT connection (GET /api/v1/connections)
// with its Full Comm state and, for admins, the buttons that change it (PUT
// /api/v1/connections/{name}/comm, each behind a confirmation that says what
// the choice means); whether the server answers, last contact and last error;
// queued and in flight; Allow Kill Job and Retain Log Files. Kept live by the
// shared event stream ('comm' changes the card at once; 'job' reads the
// counts again, at most once a second). Below, the jobs that ended per minute
// over 24 hours (GET /api/v1/stats) as an SVG chart built with DOM methods,
// with a table by hour as its text alternative.
import { api } from '../api.js';
import { el, confirmDialog, notify, fmtTime } from '../ui.js';
import { svg } from './parts.js';

// What each Full Comm state means, in the words of docs/operations.md.
const COMM = {
  enabled: {
    verb: 'Enable', button: 'comm-enable', label: 'enabled',
    means: 'Full Comm: queued jobs start, running jobs are followed to their end, kills are sent.',
  },
  limited: {
    verb: 'Limit', button: 'comm-limit', label: 'limited',
    means: 'No new starts: queued jobs wait; running jobs are followed to their end.',
  },
  disabled: {
    verb: 'Disable', button: 'comm-disable', label: 'disabled',
    means: 'Nothing is sent to the server: no Start, no MonitorJob, no heartbeat, no Kill. '
      + 'Nothing is lost: queued jobs wait, running jobs stay running and are followed '
      + 'again when comm is enabled.',
  },
};

function commBadge(state) {
  const cls = state === 'enabled' ? 'ok' : state === 'limited' ? 'warn' : 'bad';
  return el('span', { class: `badge ${cls}`, 'data-test': 'comm-state', 'data-state': state },
            COMM[state] ? COMM[state].label : String(state));
}

function row(dl, label, value, test) {
  dl.append(el('dt', {}, label), el('dd', test ? { 'data-test': test } : {}, value ?? ''));
}

function serverText(c) {
  if (c.server_ok === null || c.server_ok === undefined) return 'not checked yet';
  return c.server_ok ? 'answers' : 'does not answer';
}

function card(c, ctx, onChange) {
  const head = el('div', { class: 'conn-head' },
    el('h2', { id: `conn-${c.name}` }, c.name), commBadge(c.comm_state));
  const dl = el('dl', { class: 'fields' });
  row(dl, 'Full Comm changed', c.comm_changed_at
    ? `${fmtTime(c.comm_changed_at)}${c.comm_changed_by ? ` by ${c.comm_changed_by}` : ''}` : 'never',
      'comm-detail');
  row(dl, 'Server', el('span', { class: c.server_ok === false ? 'error' : '' },
    serverText(c), c.server_checked_at ? ` (checked ${fmtTime(c.server_checked_at)})` : ''),
      'server-ok');
  row(dl, 'Last contact', c.last_contact ? fmtTime(c.last_contact) : 'never', 'last-contact');
  row(dl, 'Last error', c.last_error
    ? el('span', { class: 'error' }, c.last_error, c.last_error_at ? ` (${fmtTime(c.last_error_at)})` : '')
    : 'none', 'last-error');
  row(dl, 'Queued', String(c.queued), 'queued');
  row(dl, 'In flight', String(c.in_flight), 'in-flight');
  if (c.in_doubt) row(dl, 'In doubt', el('span', { class: 'badge warn' }, String(c.in_doubt)), 'in-doubt');
  row(dl, 'Allow kill', c.allow_kill === null || c.allow_kill === undefined ? 'not configured'
    : c.allow_kill ? 'yes' : 'no', 'allow-kill');
  row(dl, 'Retain logs', c.retain_log_days ? `${c.retain_log_days} days` : '', 'retention');
  if (c.url) row(dl, 'Batch Server', c.url, 'url');
  if (c.batch_user) row(dl, 'Batch User', c.batch_user, 'batch-user');
  if (c.amt_version) row(dl, 'AMT version', c.amt_version, 'amt-version');
  const links = el('p', {},
    el('a', { href: `#/jobs?connection=${encodeURIComponent(c.name)}`, 'data-test': 'conn-jobs' },
       `Jobs of ${c.name}`), ' · ',
    el('a', { href: `#/jobs?connection=${encodeURIComponent(c.name)}&state=queued`,
              'data-test': 'conn-queued' }, 'queued'));
  const parts = [head, dl, links];
  if (ctx.can.admin) {
    const buttons = el('div', { class: 'actions conn-actions', role: 'group',
                                'aria-label': `Full Comm of ${c.name}` });
    for (const [state, m] of Object.entries(COMM)) {
      const b = el('button', { type: 'button', 'data-test': m.button,
                               class: state === 'disabled' ? 'danger' : state === 'enabled' ? 'primary' : '',
                               'aria-pressed': c.comm_state === state ? 'true' : 'false',
                               disabled: c.comm_state === state },
                   m.verb);
      b.addEventListener('click', async () => {
        const yes = await confirmDialog({
          title: `${m.verb} Full Comm of ${c.name}?`,
          text: `${c.name} becomes ${state}. ${m.means}`,
          ok: `${m.verb} ${c.name}`,
          danger: state !== 'enabled',
        });
        if (!yes) return;
        try {
          const r = await api('PUT', `/connections/${encodeURIComponent(c.name)}/comm`, { state });
          notify(`${c.name}: Full Comm ${r.to} (was ${r.from})`, 'ok');
          onChange();
        } catch (e) {
          notify(`${c.name}: ${e.detail || e.message}`, 'error');
        }
      });
      buttons.appendChild(b);
    }
    parts.push(buttons);
  }
  return el('section', { class: 'panel conn-card', 'data-test': 'connection', 'data-name': c.name,
                         'aria-labelledby': `conn-${c.name}` }, ...parts);
}

// The chart: one bar per minute with jobs that ended (finished in the bar,
// failed as the bar's lower part), over the 24 hours from stats.since.
function chart(stats) {
  const since = new Date(stats.since).getTime();
  // the minutes from since's to the current one (1,441: the window's ends are partial minutes)
  const W = Math.max(1, Math.floor((new Date(stats.at).getTime() - since) / 60000) + 1);
  const BAR = 4; // a minute is a sliver at this width: bars are drawn 4 minutes wide
  const H = 100;
  let max = 1;
  let fin = 0;
  let bad = 0;
  const hours = Array.from({ length: 24 }, () => ({ finished: 0, failed: 0 }));
  for (const m of stats.per_minute) {
    max = Math.max(max, m.finished);
    fin += m.finished;
    bad += m.failed;
    const i = Math.floor((new Date(m.minute).getTime() - since) / 60000);
    if (i >= 0 && i < W) {
      hours[Math.min(23, Math.floor(i / 60))].finished += m.finished;
      hours[Math.min(23, Math.floor(i / 60))].failed += m.failed;
    }
  }
  const summary = `Jobs ended per minute over 24 hours from ${fmtTime(stats.since)}: `
    + `${fin} finished, ${bad} of them failed; at most ${max === 1 && !fin ? 0 : max} in one minute.`;
  const root = svg('svg', { viewBox: `0 -4 ${W} ${H + 22}`, class: 'chart', role: 'img',
                            'aria-label': summary, preserveAspectRatio: 'none',
                            'data-test': 'chart' });
  root.appendChild(svg('title', {}, summary));
  root.appendChild(svg('line', { x1: 0, y1: H, x2: W, y2: H, class: 'axis' }));
  for (let h = 0; h <= 24; h += 6) {
    const x = Math.min(h * 60, W - 1);
    const t = new Date(since + h * 3600000);
    root.appendChild(svg('line', { x1: x, y1: 0, x2: x, y2: H, class: 'grid' }));
    root.appendChild(svg('text', { x: Math.min(Math.max(x, 20), W - 20), y: H + 16, class: 'tick',
                                   'text-anchor': 'middle' },
                         `${String(t.getHours()).padStart(2, '0')}:${String(t.getMinutes()).padStart(2, '0')}`));
  }
  for (const m of stats.per_minute) {
    const i = Math.floor((new Date(m.minute).getTime() - since) / 60000);
    if (i < 0 || i >= W) continue;
    const hf = Math.max(1, (m.finished / max) * H);
    const hx = (m.failed / max) * H;
    const x = Math.min(Math.max(i - BAR / 2, 0), W - BAR);
    root.appendChild(svg('rect', { x, y: H - hf, width: BAR, height: hf, class: 'bar-finished',
                                   'data-test': 'bar' }));
    if (m.failed) {
      root.appendChild(svg('rect', { x, y: H - hx, width: BAR, height: Math.max(1, hx),
                                     class: 'bar-failed', 'data-test': 'bar-failed' }));
    }
  }
  const table = el('table', { 'data-test': 'chart-table' },
    el('caption', {}, 'Jobs ended per hour'),
    el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Hour'),
                        el('th', { scope: 'col' }, 'Finished'), el('th', { scope: 'col' }, 'Failed'))),
    el('tbody', {}, ...hours.map((h, i) => el('tr', {},
      el('th', { scope: 'row' }, fmtTime(new Date(since + i * 3600000).toISOString()).slice(0, 16)),
      el('td', { class: 'num' }, String(h.finished)), el('td', { class: 'num' }, String(h.failed))))));
  return el('figure', { class: 'panel chart-wrap' },
    el('figcaption', { 'data-test': 'chart-summary' }, summary),
    el('div', { class: 'legend' },
      el('span', { class: 'key key-finished' }, 'finished'), ' ',
      el('span', { class: 'key key-failed' }, 'failed')),
    root,
    el('details', {}, el('summary', {}, 'As a table'), el('div', { class: 'table-wrap' }, table)));
}

export async function render(main, ctx) {
  const status = el('p', { class: 'live', 'data-test': 'live-status', 'aria-live': 'polite' }, '');
  const cards = el('div', { class: 'conn-cards', 'data-test': 'connections' });
  const chartBox = el('div', { 'data-test': 'chart-box' });
  main.append(el('h1', {}, 'Connections'), status, cards,
              el('h2', {}, 'Jobs ended, last 24 hours'), chartBox);
  if (!ctx.can.admin) {
    status.textContent = 'Full Comm is changed by admins.';
  }

  let gone = false;
  const shown = new Map(); // name -> { sig, node }: a card is rebuilt only when its data changed
  async function load() {
    const r = await api('GET', '/connections');
    if (gone) return;
    if (!r.connections.length) {
      shown.clear();
      cards.replaceChildren(el('p', { class: 'muted', 'data-test': 'no-connections' },
        'No connection yet: the daemon registers each one it serves when it starts.'));
      return;
    }
    const nodes = r.connections.map((c) => {
      const sig = JSON.stringify(c);
      const old = shown.get(c.name);
      if (old && old.sig === sig) return old.node;
      const node = card(c, ctx, later);
      // keep the keyboard where it was: the same control in the new card
      if (old && old.node.contains(document.activeElement)) {
        const test = document.activeElement.getAttribute('data-test');
        setTimeout(() => {
          const again = test && node.querySelector(`[data-test="${CSS.escape(test)}"]`);
          if (again && !again.disabled) again.focus();
        }, 0);
      }
      shown.set(c.name, { sig, node });
      return node;
    });
    for (const name of [...shown.keys()]) {
      if (!r.connections.some((c) => c.name === name)) shown.delete(name);
    }
    // in place: a card that did not change stays in the page (and keeps the focus)
    const keep = new Set(nodes);
    for (const child of [...cards.children]) if (!keep.has(child)) child.remove();
    nodes.forEach((n, i) => {
      if (cards.children[i] !== n) cards.insertBefore(n, cards.children[i] || null);
    });
  }
  async function loadChart() {
    try {
      const s = await api('GET', '/stats');
      if (!gone) chartBox.replaceChildren(chart(s));
    } catch (e) {
      if (!gone) chartBox.replaceChildren(el('p', { class: 'error', 'data-test': 'chart-error' }, e.message));
    }
  }
  // events come in bursts: one read per second at most
  let timer = null;
  let again = false;
  function later() {
    if (timer) { again = true; return; }
    timer = setTimeout(async () => {
      try { await load(); } catch (e) { if (!gone) status.textContent = e.message; }
      timer = null;
      if (again && !gone) { again = false; later(); }
    }, 300);
  }

  await load();
  loadChart();
  const chartTimer = setInterval(loadChart, 60000);
  const offs = [
    ctx.events.on('comm', (ev) => {
      const c = cards.querySelector(`[data-test="connection"][data-name="${CSS.escape(ev.connection)}"]`);
      if (c) {
        const b = c.querySelector('[data-test="comm-state"]');
        if (b) b.replaceWith(commBadge(ev.comm_state));
      }
      later();
    }),
    ctx.events.on('job', (ev) => { later(); if (ev.state === 'finished') loadChartSoon(); }),
    ctx.events.on('reset', later),
    ctx.events.on('ready', () => { status.textContent = ctx.can.admin ? 'Live.' : 'Live. Full Comm is changed by admins.'; }),
  ];
  let chartSoon = null;
  function loadChartSoon() {
    if (chartSoon) return;
    chartSoon = setTimeout(() => { chartSoon = null; loadChart(); }, 2000);
  }
  return () => {
    gone = true;
    offs.forEach((off) => off());
    clearInterval(chartTimer);
    clearTimeout(timer);
    clearTimeout(chartSoon);
  };
}
