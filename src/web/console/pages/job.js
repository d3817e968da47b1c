// A job: its Job Information header laid out as the merged log lays it out
// (src/lib/joblog.c), then its log, live while it runs
// (/api/v1/jobs/ID/log/stream), following the tail unless the user scrolled
// up; its fields, its connection choice (listed connections or group, the
// one that ran it, each try), timeline, children and alert; Kill, Resolve,
// Run again and Download for those who may.
//
// The header: while the job has not ended it is built from the document
// (GET /api/v1/jobs/ID) in the log's layout (Server from the connection's
// configured URL where the role may read connections; the Completion Code
// row empty until the end). Once the job has ended the stored log
// (GET /api/v1/jobs/ID/log) is what is shown, header and all, so the screen
// holds exactly the stored text.
import { api } from '../api.js';
import { jobLogStream } from '../sse.js';
import { el, fmtTime, fmtDuration, stateBadge, codeName, confirmDialog, notify } from '../ui.js';

const WIDTH = 75;
const LABEL = 16;

function rule(title = '') { return title + '-'.repeat(Math.max(0, WIDTH - title.length)); }

// text_one_line: control characters become a space.
function oneLine(s) { return String(s).replace(/[\u0000-\u001f\u007f]/g, ' '); }

function row(label, value, spaceIfEmpty = true) {
  const head = `${label.padEnd(LABEL)}:`;
  if (value !== null && value !== undefined && value !== '') return `${head} ${oneLine(value)}`;
  return spaceIfEmpty ? `${head} ` : head;
}

// A message line as the merged log writes it (text_json_quote): quoted,
// `"` `\` and C0 controls and DEL escaped, everything else as it is.
export function jorsQuote(s) {
  let out = '"';
  for (const ch of String(s)) {
    const c = ch.codePointAt(0);
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

function headerFromDocument(doc, server) {
  const params = Array.isArray(doc.parameters) ? doc.parameters.join(' ') : '';
  return [
    rule(),
    rule('Job Information '),
    row('Server', server),
    row('Application', doc.application),
    row('Submit User', doc.submit_user),
    row('Station', doc.station),
    row('Queue Name', doc.queue_name),
    row(doc.kind === 'script' ? 'Script Job' : 'Batch Job', doc.name),
    row('Parameters', params, false),
    rule(),
    row('Completion Code', doc.completion_name || ''),
    rule(),
    rule('Job Log '),
  ].join('\n') + '\n';
}

// The stored log: the header (through the "Job Log ---" rule) and the rest.
function splitLog(text) {
  const mark = `\n${rule('Job Log ')}\n`;
  const i = text.indexOf(mark);
  if (i < 0) return { header: '', body: text };
  return { header: text.slice(0, i + mark.length), body: text.slice(i + mark.length) };
}

function dlRow(dl, label, value, test) {
  if (value === null || value === undefined || value === '') return;
  dl.append(el('dt', {}, label), el('dd', test ? { 'data-test': test } : {}, value));
}

export async function render(main, ctx) {
  const id = ctx.route.match[1];
  let doc = await api('GET', `/jobs/${id}`);
  let alive = true;
  let stopStream = null;
  let server = '';
  try {
    const cs = await api('GET', '/connections');
    const c = (cs.connections || []).find((x) => x.name === doc.connection);
    if (c && c.url) server = c.url;
  } catch (e) { if (e.status === 401) throw e; /* a role that may not read connections */ }

  // ---- the frame ------------------------------------------------------------------------
  const title = el('h1', { 'data-test': 'job-title' }, `Job ${doc.id}`);
  const badge = el('span', { 'data-test': 'job-state' });
  const codeEl = el('span', { class: 'badge', 'data-test': 'job-code' });
  const killResult = el('p', { 'data-test': 'kill-result', role: 'status', hidden: true });
  const actions = el('div', { class: 'job-actions', 'data-test': 'job-actions' });
  const links = el('p', { 'data-test': 'job-links' });
  const fields = el('dl', { class: 'fields', 'data-test': 'job-fields' });
  const choice = el('section', { class: 'panel', 'data-test': 'job-choice', 'aria-label': 'Connection choice', hidden: true });
  const timeline = el('section', { class: 'panel', 'data-test': 'job-timeline', 'aria-label': 'Timeline' });
  const extra = el('div', { 'data-test': 'job-extra' });
  const header = el('pre', { class: 'header', 'data-test': 'job-header' });
  const log = el('pre', { class: 'log', 'data-test': 'log', tabindex: '0',
                          'aria-label': 'Job log', 'aria-live': 'off' });
  const logNote = el('p', { class: 'muted', 'data-test': 'log-status' }, '');
  main.append(
    el('div', { class: 'job-head' }, title, badge, codeEl),
    killResult, actions, links,
    el('h2', {}, 'Job log'), logNote, header, log,
    el('h2', {}, 'Details'), fields, choice, timeline, extra);

  // ---- the log --------------------------------------------------------------------------
  let streamed = [];         // the messages as they came
  let stored = false;        // the stored log is on screen
  function atBottom() { return log.scrollTop + log.clientHeight >= log.scrollHeight - 8; }
  function appendLine(text) {
    const follow = atBottom();
    log.appendChild(document.createTextNode(`${jorsQuote(text)}\n`));
    log.dataset.lines = String(streamed.length);
    if (follow) log.scrollTop = log.scrollHeight;
  }
  async function showStored() {
    let text;
    try {
      text = await api('GET', `/jobs/${id}/log`);
    } catch (e) {
      if (e.status === 401) return;
      if (e.status === 410) { logNote.textContent = 'The log was purged (retention).'; log.dataset.state = 'purged'; }
      else if (e.status === 409) { logNote.textContent = 'The log is stored when the job ends.'; }
      else logNote.textContent = `The log cannot be read: ${e.detail}`;
      return;
    }
    if (!alive) return;
    const { header: h, body } = splitLog(text);
    // the streamed lines were the stored ones: nothing moves on screen but the header
    const live = streamed.map((m) => `${jorsQuote(m)}\n`).join('');
    log.dataset.replaced = String(!!streamed.length && !body.startsWith(live));
    header.textContent = h;
    const follow = atBottom();
    log.textContent = body;
    if (follow) log.scrollTop = log.scrollHeight;
    stored = true;
    log.dataset.state = 'stored';
    logNote.textContent = 'The stored log.';
  }
  function startStream() {
    header.textContent = headerFromDocument(doc, server);
    log.textContent = '';
    log.dataset.state = 'live';
    logNote.textContent = 'Live: new lines appear as the job writes them.';
    stopStream = jobLogStream(id, {
      onMessage: (m) => { streamed.push(m.text); appendLine(m.text); },
      onEnd: async (end) => {
        stopStream = null;
        if (end.log_purged) { logNote.textContent = 'The log was purged (retention).'; return; }
        await refresh();
        await showStored();
      },
      onError: () => { logNote.textContent = 'The live log stopped; reload the page to resume.'; },
    });
  }

  // ---- actions --------------------------------------------------------------------------
  async function kill() {
    const ok = await confirmDialog({
      title: `Kill job ${doc.id}?`,
      text: `The daemon asks the AMT Batch Server to kill ${doc.name} (BatchRequestId ` +
            `${doc.batch_request_id ?? 'not yet started'}). A queued job is taken off the queue.`,
      ok: 'Kill', danger: true });
    if (!ok) return;
    try {
      await api('POST', `/jobs/${id}/kill`);
      killResult.hidden = false;
      killResult.className = 'muted';
      killResult.dataset.state = 'requested';
      killResult.textContent = 'Kill requested; waiting for the server to confirm…';
      await refresh();
    } catch (e) {
      if (e.status === 401) return;
      killResult.hidden = false;
      killResult.className = 'error';
      killResult.dataset.state = 'refused';
      killResult.textContent = `Kill refused: ${e.detail}`;
    }
  }
  async function rerun() {
    const ok = await confirmDialog({
      title: `Run job ${doc.id} again?`,
      text: `A new job with the same connection, name, parameters and reference is queued; ` +
            `it links back to job ${doc.id}.`, ok: 'Run again' });
    if (!ok) return;
    try {
      const r = await api('POST', `/jobs/${id}/rerun`);
      notify(`Job ${r.id} queued (a rerun of ${r.rerun_of}).`, 'ok');
      ctx.navigate(`#/jobs/${r.id}`);
    } catch (e) {
      if (e.status !== 401) notify(`Run again refused: ${e.detail}`, 'error');
    }
  }
  function resolveForm() {
    const act = el('select', { id: 'resolve-action', 'data-test': 'resolve-action' },
      el('option', { value: 'restart' }, 'restart: queue it again'),
      el('option', { value: 'fail' }, 'fail: end it with code 19'),
      el('option', { value: 'follow' }, 'follow: it runs on the server as…'));
    const brid = el('input', { id: 'resolve-brid', inputmode: 'numeric', 'data-test': 'resolve-brid',
                               size: 10 });
    const f = el('form', { class: 'filters', 'data-test': 'resolve-form' },
      el('label', { for: 'resolve-action' }, 'Resolve (in doubt)', act),
      el('label', { for: 'resolve-brid' }, 'BatchRequestId (follow)', brid),
      el('button', { type: 'submit', 'data-test': 'resolve' }, 'Resolve'));
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { action: act.value };
      if (act.value === 'follow') body.batch_request_id = Number(brid.value);
      const ok = await confirmDialog({ title: `Resolve job ${doc.id}: ${act.value}?`,
        text: act.value === 'restart' ? 'The job is queued and started again: make sure it did not run on the server.'
          : act.value === 'fail' ? 'The job ends as failed (19 UNDEFINED) and is not run again.'
            : `The daemon follows BatchRequestId ${brid.value || '?'} as this job's run.`,
        ok: 'Resolve' });
      if (!ok) return;
      try {
        const r = await api('POST', `/jobs/${id}/resolve`, body);
        notify(`Job ${r.id} resolved (${r.action}); it is ${r.state} now.`, 'ok');
        await refresh();
      } catch (err) {
        if (err.status !== 401) notify(`Resolve refused: ${err.detail}`, 'error');
      }
    });
    return f;
  }

  // ---- drawing the document -------------------------------------------------------------
  function drawActions(ended, key) {
    actions.dataset.key = key;
    actions.replaceChildren();
    if (ctx.can.operate && !ended) {
      actions.appendChild(el('button', { type: 'button', class: 'danger', 'data-test': 'kill',
                                         onclick: kill }, doc.kill_requested_at ? 'Kill again' : 'Kill'));
    }
    if (ctx.can.operate && doc.state === 'in_doubt') actions.appendChild(resolveForm());
    if (ctx.can.operate && ended) {
      actions.appendChild(el('button', { type: 'button', 'data-test': 'rerun', onclick: rerun },
                             'Run again'));
    }
    if (doc.log === 'available') {
      actions.appendChild(el('a', { class: 'button', href: `/api/v1/jobs/${doc.id}/log`,
                                    download: `job-${doc.id}.log`, 'data-test': 'download-log' },
                             'Download the log'));
    }
  }

  function draw() {
    const ended = doc.state === 'finished';
    badge.replaceChildren(stateBadge(doc.state, doc.result,
                                     { test: 'job-badge', killRequested: !!doc.kill_requested_at }));
    badge.dataset.state = doc.state;
    const code = doc.completion_name || (ended ? codeName(doc.completion_code) : (doc.amt_state || ''));
    codeEl.textContent = code;
    codeEl.hidden = !code;
    codeEl.className = `badge ${ended ? (doc.result === 'success' ? 'ok' : 'bad') : 'busy'}`;

    // what the server said about a kill
    if (doc.kill_requested_at || !killResult.hidden) {
      killResult.hidden = false;
      if (ended && doc.completion_code === 3) {
        killResult.className = 'ok'; killResult.dataset.state = 'killed';
        killResult.textContent = 'Killed: the server reports 3 KILLED.';
      } else if (ended) {
        killResult.className = 'muted'; killResult.dataset.state = 'ended';
        killResult.textContent = `The job ended before the kill took effect: ${code}.`;
      } else if (doc.kill_error) {
        killResult.className = 'error'; killResult.dataset.state = 'failed';
        killResult.textContent = `Kill failed, still running: ${doc.kill_error}`;
      } else if (doc.kill_sent_at) {
        killResult.className = 'muted'; killResult.dataset.state = 'sent';
        killResult.textContent = `Kill sent to the server at ${fmtTime(doc.kill_sent_at)}; waiting for it to confirm…`;
      }
    }

    // rebuilt only when they change: a form being filled in stays as it is
    const actionsKey = [doc.state, !!doc.kill_requested_at, doc.log].join('|');
    if (actions.dataset.key !== actionsKey) drawActions(ended, actionsKey);

    links.replaceChildren();
    if (doc.rerun_of) {
      links.append('A rerun of ', el('a', { href: `#/jobs/${doc.rerun_of}`, 'data-test': 'rerun-of' },
                                     `job ${doc.rerun_of}`), '. ');
    }
    if (Array.isArray(doc.reruns) && doc.reruns.length) {
      links.append('Run again as ', ...doc.reruns.flatMap((r, i) => [
        i ? ', ' : '', el('a', { href: `#/jobs/${r}`, 'data-test': 'rerun-link' }, `job ${r}`)]), '.');
    }

    fields.replaceChildren();
    dlRow(fields, 'Connection', doc.connection, 'field-connection');
    dlRow(fields, 'Kind', doc.kind);
    dlRow(fields, 'Application', doc.application);
    dlRow(fields, doc.kind === 'script' ? 'Script' : 'Job', doc.name, 'field-name');
    dlRow(fields, 'Parameters', Array.isArray(doc.parameters) ? doc.parameters.join(' ') : '');
    dlRow(fields, 'Reference', doc.external_ref, 'field-ref');
    dlRow(fields, 'Queue', doc.queue_name);
    dlRow(fields, 'RunAs user', doc.amt_user);
    dlRow(fields, 'Submit user / station', `${doc.submit_user || ''} / ${doc.station || ''}`);
    dlRow(fields, 'Task id', doc.task_id);
    dlRow(fields, 'BatchRequestId', doc.batch_request_id, 'field-brid');
    dlRow(fields, 'Server state', doc.amt_code !== null && doc.amt_code !== undefined
      ? `${doc.amt_code} ${doc.amt_state || codeName(doc.amt_code)}` : '');
    dlRow(fields, 'Completion code', doc.completion_code !== null && doc.completion_code !== undefined
      ? `${doc.completion_code} ${code}` : '', 'field-code');
    dlRow(fields, 'Result', doc.result, 'field-result');
    dlRow(fields, 'Error', doc.error, 'field-error');
    dlRow(fields, 'Duration', doc.started_at ? fmtDuration(doc.started_at, doc.finished_at) : '');
    dlRow(fields, 'Kill requested', fmtTime(doc.kill_requested_at));
    dlRow(fields, 'Kill sent', fmtTime(doc.kill_sent_at));
    dlRow(fields, 'Kill error', doc.kill_error, 'field-kill-error');
    dlRow(fields, 'Log', doc.log);

    drawChoice();

    // the timeline: what the document holds (fields added later are shown when present)
    const steps = [];
    const step = (at, text, test) => { if (at) steps.push({ at, text, test }); };
    step(doc.enqueued_at, 'enqueued', 'tl-enqueued');
    if (doc.claimed_at) {
      const by = [doc.owner ? `by ${doc.owner}` : '', doc.attempt ? `attempt ${doc.attempt}` : '']
        .filter(Boolean).join(', ');
      step(doc.claimed_at, `claimed${by ? ` (${by})` : ''}`, 'tl-claimed');
    }
    step(doc.started_at, `started${doc.batch_request_id ? ` (BatchRequestId ${doc.batch_request_id})` : ''}`,
         'tl-started');
    const reported = Array.isArray(doc.states) ? doc.states
      : Array.isArray(doc.states_reported) ? doc.states_reported : [];
    for (const s of reported) {
      const c = s.code ?? s.amt_code;
      step(s.at || s.seen_at || s.reported_at,
           `server reported ${c ?? ''} ${s.name || s.amt_state || codeName(c)}`.replace(/\s+/g, ' '),
           'tl-reported');
    }
    step(doc.kill_requested_at, 'kill requested', 'tl-kill');
    step(doc.finished_at, `ended: ${code}`, 'tl-ended');
    steps.sort((a, b) => new Date(a.at) - new Date(b.at));
    timeline.replaceChildren(el('h2', {}, 'Timeline'),
      el('ol', { class: 'timeline' }, ...steps.map((s) =>
        el('li', { 'data-test': s.test }, el('time', { datetime: s.at }, fmtTime(s.at)), ` ${s.text}`))));

    extra.replaceChildren();
    if (Array.isArray(doc.children) && doc.children.length) {
      extra.appendChild(el('section', { class: 'panel', 'data-test': 'job-children' },
        el('h2', {}, 'Children'),
        el('ul', {}, ...doc.children.map((c) => {
          if (typeof c !== 'object' || c === null) return el('li', {}, String(c));
          const label = [c.batch_request_id ?? c.id, c.name || c.job_name,
                         c.code !== undefined ? `${c.code} ${c.code_name || codeName(c.code)}` : c.state]
            .filter((x) => x !== undefined && x !== null && x !== '').join(' · ');
          return el('li', { 'data-test': 'job-child' }, label);
        }))));
    }
    if (doc.alert && typeof doc.alert === 'object') {
      const a = doc.alert;
      extra.appendChild(el('section', { class: 'panel', 'data-test': 'job-alert' },
        el('h2', {}, 'Alert'),
        el('p', {}, el('a', { href: '#/alerts', 'data-test': 'job-alert-link' },
                       `${a.code || a.name || 'alert'}${a.id ? ` #${a.id}` : ''}`),
           a.raised_at ? ` raised ${fmtTime(a.raised_at)}` : '',
           a.acknowledged_at ? `, acknowledged ${fmtTime(a.acknowledged_at)}` : ', not acknowledged'),
        a.message ? el('p', {}, a.message) : null));
    }
  }

  // Integration Selection: the connections the job lists in order (or its
  // group), the one that holds, ran or will run it, and each one that was
  // given it and could not start it, with why. Shown when there was a choice.
  function drawChoice() {
    const listed = Array.isArray(doc.listed) ? doc.listed : [];
    const tried = Array.isArray(doc.tried) ? doc.tried : [];
    choice.hidden = !listed.length && !doc.group && !tried.length;
    if (choice.hidden) { choice.replaceChildren(); return; }
    const ended = doc.state === 'finished';
    const verb = doc.state === 'queued' ? 'waits for' : ended ? (doc.started_at ? 'ran on' : 'ended on')
      : 'runs on';
    const here = doc.state === 'queued' ? 'the job waits for it' : ended ? `the job ${doc.started_at ? 'ran' : 'ended'} here`
      : 'the job runs here';
    const failedOn = new Set(tried.map((t) => t.connection));
    const parts = [el('h2', {}, 'Connection choice')];
    if (doc.group) {
      parts.push(el('p', { 'data-test': 'choice-group' }, 'Submitted to group ',
                    el('strong', {}, doc.group), ': it goes to a member that is up, least in flight first.'));
    }
    if (listed.length) {
      parts.push(el('p', {}, 'The primary connection, then its alternates, in the order they are tried:'),
        el('ol', { 'data-test': 'choice-listed' }, ...listed.map((c, i) =>
          el('li', { 'data-test': 'choice-listed-item', 'data-name': c,
                     'aria-current': c === doc.connection ? 'true' : null },
             c, i ? ' (alternate)' : ' (primary)',
             c === doc.connection ? ` — ${here}` : failedOn.has(c) ? ' — tried, could not start it' : ''))));
    }
    parts.push(el('p', { 'data-test': 'choice-connection' }, `The job ${verb} `, el('strong', {}, doc.connection), '.'));
    if (tried.length) {
      parts.push(el('h3', {}, 'Tried, could not start it'),
        el('ol', { 'data-test': 'choice-tries' }, ...tried.map((t) =>
          el('li', { 'data-test': 'choice-try', 'data-connection': t.connection },
             el('strong', {}, t.connection), ' at ', el('time', { datetime: t.at }, fmtTime(t.at)),
             `: ${t.error || 'no reason recorded'}`))));
    }
    choice.replaceChildren(...parts);
  }

  let refreshing = null;
  async function refresh() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      try {
        const d = await api('GET', `/jobs/${id}`);
        if (alive) { doc = d; draw(); }
      } catch (e) { /* a 401 is handled by the shell; otherwise the next event tries again */ }
      refreshing = null;
    })();
    return refreshing;
  }

  draw();
  if (doc.state === 'finished') {
    if (doc.log === 'available') await showStored();
    else { header.textContent = headerFromDocument(doc, server); logNote.textContent = 'The log was purged (retention).'; log.dataset.state = 'purged'; }
  } else {
    startStream();
  }

  const offJob = ctx.events.on('job', (ev) => { if (String(ev.id) === String(id)) refresh(); });
  const offReset = ctx.events.on('reset', () => refresh());
  // a kill in progress is watched also without events (kill_sent_at, kill_error change no state)
  const poll = setInterval(() => {
    if (doc.state !== 'finished' && doc.kill_requested_at) refresh();
  }, 2000);
  return () => {
    alive = false;
    offJob(); offReset();
    clearInterval(poll);
    if (stopStream) stopStream();
  };
}
