// The Alerts page: every unacknowledged alert first (GET /api/v1/alerts?open=true,
// all its pages), then the acknowledged ones a page at a time (open=false,
// keyset: before/next), newest first in each; each linked to its job
// (#/jobs/ID), with Acknowledge for operators and admins (POST
// /api/v1/alerts/{id}/ack). A new alert arrives live through the shared event
// stream ('alert') and is put at the top.
import { api } from '../api.js';
import { el, notify, fmtTime } from '../ui.js';

const LIMIT = 100;
const OPEN_MAX = 2000; // unacknowledged alerts read at once (then: a note)

export async function render(main, ctx) {
  const status = el('p', { class: 'live', 'data-test': 'live-status', 'aria-live': 'polite' }, '');
  const openH = el('h2', { 'data-test': 'open-heading' }, 'Not acknowledged');
  const openList = el('ul', { class: 'alerts-list', 'data-test': 'alerts-open' });
  const ackH = el('h2', {}, 'Acknowledged');
  const ackList = el('ul', { class: 'alerts-list', 'data-test': 'alerts-acked' });
  const more = el('button', { type: 'button', 'data-test': 'alerts-more', hidden: true },
                  'Older acknowledged alerts');
  main.append(el('h1', {}, 'Alerts'), status, openH, openList, ackH, ackList,
              el('div', { class: 'pager' }, more));
  if (!ctx.can.operate) status.textContent = 'Alerts are acknowledged by operators and admins.';

  const alerts = new Map(); // id -> alert (open ones, and the acknowledged pages read)
  let next = null;          // the before of the next acknowledged page
  let openMore = false;     // more than OPEN_MAX unacknowledged
  let gone = false;

  function item(a) {
    const open = !a.acknowledged_at;
    const parts = [
      el('span', { class: `badge ${open ? 'bad' : 'ok'}`, 'data-test': 'alert-state' },
         open ? 'open' : 'acknowledged'),
      el('strong', { 'data-test': 'alert-name' }, a.name),
      a.code !== null && a.code !== undefined ? el('span', { class: 'muted' }, `code ${a.code}`) : null,
      a.connection ? el('span', {}, a.connection) : null,
      el('time', { datetime: a.raised_at, class: 'muted' }, fmtTime(a.raised_at)),
      a.job_id ? el('a', { href: `#/jobs/${a.job_id}`, 'data-test': 'alert-job' }, `Job ${a.job_id}`)
        : el('span', { class: 'muted' }, 'no job'),
    ];
    if (open && ctx.can.operate) {
      const b = el('button', { type: 'button', 'data-test': 'ack',
                               'aria-label': `Acknowledge alert ${a.id}: ${a.name}` }, 'Acknowledge');
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          const r = await api('POST', `/alerts/${a.id}/ack`);
          a.acknowledged_at = new Date().toISOString();
          a.acknowledged_by = r.already ? a.acknowledged_by : ctx.me.user;
          notify(r.already ? `Alert ${a.id} was acknowledged already` : `Alert ${a.id} acknowledged`, 'ok');
          load().catch(() => {}); // the stored time and name
          draw();
        } catch (e) {
          b.disabled = false;
          notify(`Alert ${a.id}: ${e.detail || e.message}`, 'error');
        }
      });
      parts.push(b);
    }
    if (!open) {
      parts.push(el('span', { class: 'muted', 'data-test': 'alert-acked-by' },
                    `acknowledged ${fmtTime(a.acknowledged_at)}${a.acknowledged_by ? ` by ${a.acknowledged_by}` : ''}`));
    }
    parts.push(el('span', { class: 'msg', 'data-test': 'alert-message' }, a.message));
    return el('li', { class: `panel alert-item ${open ? 'open' : 'acked'}`, 'data-test': 'alert',
                      'data-id': a.id, 'data-open': open ? 'true' : 'false' }, ...parts);
  }

  function draw() {
    const all = [...alerts.values()].sort((x, y) => y.id - x.id);
    const open = all.filter((a) => !a.acknowledged_at);
    const acked = all.filter((a) => a.acknowledged_at);
    openH.textContent = `Not acknowledged (${open.length}${openMore ? '+' : ''})`;
    openList.replaceChildren(...(open.length ? open.map(item)
      : [el('li', { class: 'muted', 'data-test': 'no-open-alerts' }, 'No open alert.')]));
    if (openMore) {
      openList.appendChild(el('li', { class: 'muted' },
        `Only the newest ${OPEN_MAX} are shown; acknowledge some to see the others.`));
    }
    ackList.replaceChildren(...(acked.length ? acked.map(item)
      : [el('li', { class: 'muted' }, 'None.')]));
    more.hidden = !next;
  }

  // every unacknowledged alert, and the first page of the acknowledged ones
  async function load() {
    const open = [];
    let before = null;
    do {
      const r = await api('GET', `/alerts?open=true&limit=500${before ? `&before=${before}` : ''}`);
      open.push(...r.alerts);
      before = r.next;
    } while (before && open.length < OPEN_MAX);
    const acked = await api('GET', `/alerts?open=false&limit=${LIMIT}`);
    if (gone) return;
    openMore = !!before;
    alerts.clear();
    for (const a of [...open, ...acked.alerts]) alerts.set(a.id, a);
    next = acked.next;
    draw();
  }

  async function older() {
    const r = await api('GET', `/alerts?open=false&limit=${LIMIT}&before=${next}`);
    if (gone) return;
    for (const a of r.alerts) alerts.set(a.id, a);
    next = r.next;
    draw();
  }

  more.addEventListener('click', () => older().catch((e) => notify(e.message, 'error')));
  await load();
  const offs = [
    ctx.events.on('alert', (a) => {
      if (!alerts.has(a.id)) {
        alerts.set(a.id, { acknowledged_at: null, acknowledged_by: null, ...a });
        draw();
        notify(`New alert: ${a.name}${a.job_id ? ` (job ${a.job_id})` : ''}`, 'info');
      }
    }),
    ctx.events.on('reset', () => { load().catch(() => {}); }),
  ];
  return () => { gone = true; offs.forEach((off) => off()); };
}
