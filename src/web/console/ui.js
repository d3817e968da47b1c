// ui.js: the console's building blocks. Data reaches the page only as text
// (textContent, text nodes): never innerHTML, so no job name or log line can
// become markup.

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, '');
    else node.setAttribute(k, String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else if (c instanceof Node) node.appendChild(c);
    else node.appendChild(document.createTextNode(String(c)));
  }
}

// A modal <dialog>: showModal() keeps focus inside it and Esc cancels it.
export function confirmDialog({ title, text, ok = 'OK', cancel = 'Cancel', danger = false }) {
  return new Promise((resolve) => {
    const okBtn = el('button', { type: 'button', class: danger ? 'danger' : 'primary',
                                 'data-test': 'confirm-ok' }, ok);
    const cancelBtn = el('button', { type: 'button', 'data-test': 'confirm-cancel' }, cancel);
    const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
    const dlg = el('dialog', { class: 'confirm', 'data-test': 'confirm-dialog',
                               'aria-labelledby': titleId },
      el('h2', { id: titleId }, title),
      el('p', {}, text),
      el('div', { class: 'actions' }, cancelBtn, okBtn));
    let answer = false;
    okBtn.addEventListener('click', () => { answer = true; dlg.close(); });
    cancelBtn.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => { dlg.remove(); resolve(answer); });
    document.body.appendChild(dlg);
    dlg.showModal();
    cancelBtn.focus(); // the safe choice has the focus: Enter does not confirm by accident
  });
}

// A message in the aria-live region; errors stay until dismissed.
export function notify(text, kind = 'info') {
  const region = document.getElementById('notices');
  if (!region) return;
  const close = el('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss' }, '×');
  const n = el('div', { class: `notice notice-${kind}`, 'data-test': 'notice',
                        'data-kind': kind }, el('span', {}, text), close);
  close.addEventListener('click', () => n.remove());
  region.appendChild(n);
  if (kind !== 'error') setTimeout(() => n.remove(), 8000);
}

function pad(n, w = 2) { return String(n).padStart(w, '0'); }

// Local time, to the second: 2026-11-30 05:12:07.
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// Today: 05:12:07; another day: 2026-11-28 05:12 (fmtTime in full).
export function fmtShortTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const now = new Date();
  if (d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() &&
      d.getDate() === now.getDate()) {
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// From a to b (or now): "4.2 s", "3m 05s", "2h 07m", "3d 04h".
export function fmtDuration(a, b) {
  if (!a) return '';
  const ms = (b ? new Date(b) : new Date()) - new Date(a);
  if (!(ms >= 0)) return '';
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${pad(Math.floor(s % 60))}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${pad(m % 60)}m`;
  return `${Math.floor(h / 24)}d ${pad(h % 24)}h`;
}

// The AMT completion codes as the vendor names them (include/amtacs/codes.h).
export const CODE_NAMES = {
  0: 'IDLE', 1: 'QUEUED', 2: 'RUNNING', 3: 'KILLED', 4: 'DONE', 5: 'SUSPENDED',
  6: 'SKIPPED BY OPS', 7: 'RUN MANUAL', 8: 'RUN FORCED', 9: 'RUN DEBUG', 10: 'DEL QUEUE',
  11: 'ERROR', 12: 'ABORTED', 13: 'WAIT FOR FILE', 14: 'WAIT FOR INPUT', 15: 'WAIT FOR JOB',
  16: 'WAIT FOR REPORT', 18: 'RECOVER CP', 19: 'UNDEFINED', 20: 'WAIT FOR QUEUE',
  21: 'WAIT FOR DEBUGGER', 22: 'ABORTED WITH RECOVER', 23: 'WEB SERVER ERROR',
  24: 'AUTHENTICATION ERROR', 99: 'INVALID AMT USER',
};

export function codeName(code) {
  if (code === null || code === undefined) return '';
  return CODE_NAMES[code] || 'UNKNOWN';
}

// The job's state as a badge: a finished job shows its result; a failure and
// a job that waits on someone (queued, in doubt, kill requested) stand out.
export function stateBadge(state, result, opts = {}) {
  let text = state ? state.replace('_', ' ') : '?';
  let cls = `badge state-${state}`;
  if (state === 'finished') {
    text = result === 'success' ? 'done' : 'failed';
    cls += result === 'success' ? ' ok' : ' bad';
  } else if (state === 'in_doubt') {
    cls += ' warn';
  } else if (state === 'queued') {
    cls += ' wait';
  } else {
    cls += ' busy';
  }
  const b = el('span', { class: cls, 'data-test': opts.test || 'state-badge',
                         'data-state': state, 'data-result': result || '' }, text);
  if (opts.killRequested && state !== 'finished') {
    return el('span', { class: 'badges' }, b,
              el('span', { class: 'badge warn', 'data-test': 'kill-requested' }, 'kill requested'));
  }
  return b;
}
