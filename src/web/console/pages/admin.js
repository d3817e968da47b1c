// The Admin page (admins only; PostgreSQL refuses the calls to anyone else
// anyway): Batch Users (set a password, never shown back), console users
// (create, change role, set a password, disable, enable), API tokens (create:
// shown once; revoke), connection groups (set the members in order, delete)
// and the audit log, a page at a time. Sections are #/admin/batch-users,
// #/admin/users, #/admin/tokens, #/admin/groups, #/admin/audit.
// Passwords live only in their input until sent, and the input is cleared
// then, whatever the answer.
import { api } from '../api.js';
import { el, confirmDialog, notify, fmtTime } from '../ui.js';

const SECTIONS = [
  { id: 'batch-users', label: 'Batch Users' },
  { id: 'users', label: 'Console users' },
  { id: 'tokens', label: 'API tokens' },
  { id: 'groups', label: 'Connection groups' },
  { id: 'audit', label: 'Audit log' },
];
const ROLES = ['viewer', 'scheduler', 'operator', 'admin'];

let uid = 0;
// A labelled input: [label element, input element]. In a table row the
// label is for screen readers only (the column's header says it).
function field(label, attrs, inRow = false) {
  const id = `adm-${++uid}`;
  const input = el(attrs.tag || 'input', { id, ...attrs, tag: null });
  return [el('label', { for: id }, el('span', { class: inRow ? 'sr-only' : null }, label), input), input];
}
function roleSelect(label, value, test, inRow = false) {
  const id = `adm-${++uid}`;
  const s = el('select', { id, 'data-test': test },
    ...ROLES.map((r) => el('option', { value: r, selected: r === value }, r)));
  return [el('label', { for: id }, el('span', { class: inRow ? 'sr-only' : null }, label), s), s];
}
function table(head, rows, test) {
  return el('div', { class: 'table-wrap' },
    el('table', { 'data-test': test },
      el('thead', {}, el('tr', {}, ...head.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, ...rows)));
}
function failed(e) { notify(e.detail || e.message, 'error'); }

// ------------------------------------------------------------ Batch Users
async function batchUsers(box) {
  const r = await api('GET', '/batch-users');
  const rows = r.batch_users.map((b) => {
    const [lab, pw] = field(`New password for ${b.name}`, {
      type: 'password', autocomplete: 'new-password', required: true, maxlength: 1024,
      'data-test': 'bu-password' }, true);
    const send = el('button', { type: 'submit', class: 'primary', 'data-test': 'bu-set' }, 'Set password');
    const form = el('form', { class: 'row', 'data-test': 'bu-form', 'data-name': b.name }, lab, send);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const value = pw.value;
      pw.value = ''; // never kept on the page, whatever the answer
      if (!value) return;
      send.disabled = true;
      try {
        const a = await api('PUT', `/batch-users/${encodeURIComponent(b.name)}/password`, { password: value });
        notify(`Batch User ${a.name}: password set (sealed with key ${a.key_id})`, 'ok');
        show(box, 'batch-users');
      } catch (e) { failed(e); } finally { send.disabled = false; }
    });
    return el('tr', { 'data-test': 'bu-row', 'data-name': b.name },
      el('td', { 'data-test': 'bu-name' }, b.name),
      el('td', {}, (b.connections || []).join(', ')),
      el('td', {}, b.key_id),
      el('td', { 'data-test': 'bu-updated' }, fmtTime(b.updated_at)),
      el('td', {}, form));
  });
  box.replaceChildren(
    el('h2', {}, 'Batch Users'),
    el('p', { class: 'muted' }, 'The AMT users the daemon logs on as. A password set here is sealed '
      + 'by amtacs-web with the public key and never shown again; the daemon uses it at its next logon.'),
    rows.length ? table(['Name', 'Connections', 'Key', 'Changed', 'Password'], rows, 'bu-table')
      : el('p', { class: 'muted' }, 'No Batch User yet (amtacsctl batch-user set NAME).'));
}

// ------------------------------------------------------------ console users
async function users(box, ctx) {
  const r = await api('GET', '/users');
  const rows = r.users.map((u) => {
    const [rl, rs] = roleSelect(`Role of ${u.name}`, u.role, 'user-role', true);
    rs.addEventListener('change', async () => {
      const to = rs.value;
      const yes = await confirmDialog({ title: `Change the role of ${u.name}?`,
        text: `${u.name} becomes ${to} (was ${u.role}) from their next request.`, ok: `Make ${to}` });
      if (!yes) { rs.value = u.role; return; }
      try {
        await api('PUT', `/users/${encodeURIComponent(u.name)}/role`, { role: to });
        notify(`${u.name} is ${to} now`, 'ok');
        show(box, 'users', ctx);
      } catch (e) { rs.value = u.role; failed(e); }
    });
    const disabled = !!u.disabled_at;
    const toggle = el('button', { type: 'button', class: disabled ? '' : 'danger',
                                  'data-test': disabled ? 'user-enable' : 'user-disable' },
                      disabled ? 'Enable' : 'Disable');
    toggle.addEventListener('click', async () => {
      const yes = await confirmDialog({
        title: `${disabled ? 'Enable' : 'Disable'} ${u.name}?`,
        text: disabled ? `${u.name} may log in again.`
          : `${u.name} can no longer log in, and their sessions end now.`,
        ok: disabled ? 'Enable' : 'Disable', danger: !disabled });
      if (!yes) return;
      try {
        const a = await api('POST', `/users/${encodeURIComponent(u.name)}/${disabled ? 'enable' : 'disable'}`);
        notify(`${u.name} ${a.disabled ? 'disabled' : 'enabled'}${a.sessions_ended ? `; ${a.sessions_ended} session(s) ended` : ''}`, 'ok');
        show(box, 'users', ctx);
      } catch (e) { failed(e); }
    });
    const [pl, pw] = field(`New password for ${u.name}`, { type: 'password', autocomplete: 'new-password',
                                                           minlength: 12, 'data-test': 'user-password' }, true);
    const pf = el('form', { class: 'row' }, pl,
                  el('button', { type: 'submit', 'data-test': 'user-password-set' }, 'Set'));
    pf.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const value = pw.value;
      pw.value = '';
      if (!value) return;
      try {
        const a = await api('PUT', `/users/${encodeURIComponent(u.name)}/password`, { password: value });
        notify(`${u.name}: password changed; ${a.sessions_ended} session(s) ended`, 'ok');
      } catch (e) { failed(e); }
    });
    return el('tr', { 'data-test': 'user-row', 'data-name': u.name },
      el('td', { 'data-test': 'user-name' }, u.name, u.name === ctx.me.user ? ' (you)' : ''),
      el('td', {}, rl),
      el('td', { 'data-test': 'user-status' }, disabled ? `disabled ${fmtTime(u.disabled_at)}` : 'active'),
      el('td', {}, fmtTime(u.created_at), u.created_by ? ` by ${u.created_by}` : ''),
      el('td', {}, toggle), el('td', {}, pf));
  });
  const [nl, name] = field('Name', { required: true, maxlength: 64, autocomplete: 'off', 'data-test': 'new-user-name' });
  const [rl, role] = roleSelect('Role', 'viewer', 'new-user-role');
  const [pl, pw] = field('Password (12 characters or more)', { type: 'password', required: true, minlength: 12,
                                                               autocomplete: 'new-password', 'data-test': 'new-user-password' });
  const add = el('form', { class: 'row', 'data-test': 'new-user-form' }, nl, rl, pl,
                 el('button', { type: 'submit', class: 'primary', 'data-test': 'new-user-add' }, 'Create user'));
  add.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { name: name.value.trim(), role: role.value, password: pw.value };
    pw.value = '';
    try {
      await api('POST', '/users', body);
      notify(`User ${body.name} created (${body.role})`, 'ok');
      show(box, 'users', ctx);
    } catch (e) { failed(e); }
  });
  box.replaceChildren(el('h2', {}, 'Console users'),
    table(['Name', 'Role', 'Status', 'Created', '', 'Password'], rows, 'users-table'),
    el('h3', {}, 'New user'), add);
}

// ------------------------------------------------------------ API tokens
async function tokens(box, ctx) {
  const r = await api('GET', '/tokens');
  const rows = r.tokens.map((t) => {
    const revoked = !!t.revoked_at;
    const b = revoked ? el('span', { class: 'muted' }, `revoked ${fmtTime(t.revoked_at)}`)
      : el('button', { type: 'button', class: 'danger', 'data-test': 'token-revoke' }, 'Revoke');
    if (!revoked) {
      b.addEventListener('click', async () => {
        const yes = await confirmDialog({ title: `Revoke token ${t.name}?`,
          text: `Programs using ${t.name} are refused from their next request. This cannot be undone; the name stays taken.`,
          ok: 'Revoke', danger: true });
        if (!yes) return;
        try {
          await api('DELETE', `/tokens/${encodeURIComponent(t.name)}`);
          notify(`Token ${t.name} revoked`, 'ok');
          show(box, 'tokens', ctx);
        } catch (e) { failed(e); }
      });
    }
    return el('tr', { 'data-test': 'token-row', 'data-name': t.name },
      el('td', {}, t.name), el('td', {}, t.role),
      el('td', {}, fmtTime(t.created_at), t.created_by ? ` by ${t.created_by}` : ''),
      el('td', {}, t.last_used_at ? fmtTime(t.last_used_at) : 'never'), el('td', {}, b));
  });
  const shown = el('div', { 'data-test': 'token-shown-box' });
  const [nl, name] = field('Name', { required: true, maxlength: 64, autocomplete: 'off', 'data-test': 'new-token-name' });
  const [rl, role] = roleSelect('Role', 'scheduler', 'new-token-role');
  const add = el('form', { class: 'row', 'data-test': 'new-token-form' }, nl, rl,
                 el('button', { type: 'submit', class: 'primary', 'data-test': 'new-token-add' }, 'Create token'));
  add.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const a = await api('POST', '/tokens', { name: name.value.trim(), role: role.value });
      name.value = '';
      const code = el('code', { 'data-test': 'token-value' }, a.token);
      const copy = el('button', { type: 'button', 'data-test': 'token-copy' }, 'Copy');
      copy.addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(a.token);
          notify('Copied', 'ok');
        } catch (e) {
          const range = document.createRange();
          range.selectNodeContents(code);
          const sel = window.getSelection();
          sel.removeAllRanges();
          sel.addRange(range);
          notify('Selected: copy it with Ctrl+C', 'info');
        }
      });
      const forget = el('button', { type: 'button', 'data-test': 'token-done' }, 'I have stored it');
      forget.addEventListener('click', () => show(box, 'tokens', ctx));
      shown.replaceChildren(el('div', { class: 'panel token-once', role: 'alert' },
        el('strong', {}, `Token ${a.name} (${a.role}): shown this once.`),
        el('p', {}, 'Store it now where the program reads it. It cannot be shown again; '
          + 'if it is lost, revoke it and create another.'),
        code, el('div', { class: 'actions' }, copy, forget)));
      refreshList();
    } catch (e) { failed(e); }
  });
  const list = el('div', {}, table(['Name', 'Role', 'Created', 'Last used', ''], rows, 'tokens-table'));
  async function refreshList() {
    // the list again, without the box that shows the new token
    const t = document.createElement('div');
    await tokens(t, ctx);
    const fresh = t.querySelector('[data-test="tokens-table"]');
    if (fresh) list.replaceChildren(fresh.closest('.table-wrap'));
  }
  box.replaceChildren(el('h2', {}, 'API tokens'), shown, list, el('h3', {}, 'New token'), add);
}

// ------------------------------------------------------------ connection groups
// The members are typed in order, separated by spaces or commas; whether they
// are known, distinct and few enough is the database's to say (its message).
function memberList(text) { return text.split(/[\s,]+/).filter(Boolean); }

async function groups(box, ctx) {
  const r = await api('GET', '/groups');
  let known = [];
  try {
    known = ((await api('GET', '/connections')).connections || []).map((c) => c.name);
  } catch (e) { if (e.status === 401) throw e; }
  async function set(name, members, button) {
    button.disabled = true;
    try {
      const a = await api('PUT', `/groups/${encodeURIComponent(name)}`, { connections: members });
      notify(`Group ${a.name} ${a.result}: ${a.connections.join(', ')}`, 'ok');
      show(box, 'groups', ctx);
    } catch (e) { failed(e); } finally { button.disabled = false; }
  }
  const rows = r.groups.map((g) => {
    const [ml, members] = field(`Connections of ${g.name}, in order`, {
      value: g.connections.join(' '), required: true, autocomplete: 'off', size: 30,
      'data-test': 'group-members' }, true);
    const save = el('button', { type: 'submit', 'data-test': 'group-save' }, 'Save');
    const form = el('form', { class: 'row', 'data-test': 'group-form', 'data-name': g.name }, ml, save);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      set(g.name, memberList(members.value), save);
    });
    const del = el('button', { type: 'button', class: 'danger', 'data-test': 'group-delete' }, 'Delete');
    del.addEventListener('click', async () => {
      const yes = await confirmDialog({ title: `Delete group ${g.name}?`,
        text: g.unfinished_jobs
          ? `${g.unfinished_jobs} unfinished job(s) name ${g.name}: the database refuses to delete it until they end.`
          : `Jobs can no longer be submitted to ${g.name}. Its connections are not changed.`,
        ok: 'Delete', danger: true });
      if (!yes) return;
      try {
        await api('DELETE', `/groups/${encodeURIComponent(g.name)}`);
        notify(`Group ${g.name} deleted`, 'ok');
        show(box, 'groups', ctx);
      } catch (e) { failed(e); }
    });
    return el('tr', { 'data-test': 'group-row', 'data-name': g.name },
      el('td', { 'data-test': 'group-name' }, g.name),
      el('td', { 'data-test': 'group-connections' }, g.connections.join(', ')),
      el('td', { class: 'num', 'data-test': 'group-unfinished' }, String(g.unfinished_jobs)),
      el('td', {}, fmtTime(g.changed_at), g.changed_by ? ` by ${g.changed_by}` : ''),
      el('td', {}, form), el('td', {}, del));
  });
  const [nl, name] = field('Name', { required: true, maxlength: 64, autocomplete: 'off', 'data-test': 'new-group-name' });
  const [cl, conns] = field('Connections, in order (separated by spaces)', {
    required: true, autocomplete: 'off', size: 30, 'data-test': 'new-group-connections' });
  const addButton = el('button', { type: 'submit', class: 'primary', 'data-test': 'new-group-add' }, 'Create group');
  const add = el('form', { class: 'row', 'data-test': 'new-group-form' }, nl, cl, addButton);
  add.addEventListener('submit', (ev) => {
    ev.preventDefault();
    set(name.value.trim(), memberList(conns.value), addButton);
  });
  box.replaceChildren(el('h2', {}, 'Connection groups'),
    el('p', { class: 'muted' }, 'A job submitted to a group goes to its members that are up, least in flight first. '
      + 'A group cannot be deleted while an unfinished job names it.'),
    rows.length ? table(['Name', 'Connections (in order)', 'Unfinished jobs', 'Changed', 'Members', ''], rows, 'groups-table')
      : el('p', { class: 'muted', 'data-test': 'no-groups' }, 'No connection group yet.'),
    el('h3', {}, 'New group'),
    known.length ? el('p', { class: 'muted', 'data-test': 'known-connections' }, `Connections: ${known.join(', ')}`) : null,
    add);
}

// ------------------------------------------------------------ audit log
async function audit(box, ctx) {
  const p = ctx.route.params;
  const q = new URLSearchParams();
  for (const k of ['actor', 'action', 'before']) if (p.get(k)) q.set(k, p.get(k));
  q.set('limit', '50');
  const r = await api('GET', `/audit?${q}`);
  const [al, actor] = field('Actor', { value: p.get('actor') || '', 'data-test': 'audit-actor', autocomplete: 'off' });
  const [xl, action] = field('Action', { value: p.get('action') || '', 'data-test': 'audit-action', autocomplete: 'off' });
  const form = el('form', { class: 'row', role: 'search', 'data-test': 'audit-filters' }, al, xl,
                  el('button', { type: 'submit', class: 'primary' }, 'Filter'));
  const hashWith = (extra) => {
    const h = new URLSearchParams();
    if (actor.value.trim()) h.set('actor', actor.value.trim());
    if (action.value.trim()) h.set('action', action.value.trim());
    for (const [k, v] of Object.entries(extra)) if (v) h.set(k, v);
    const s = h.toString();
    return `#/admin/audit${s ? `?${s}` : ''}`;
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); ctx.navigate(hashWith({})); });
  const rows = r.audit.map((a) => el('tr', { 'data-test': 'audit-row', 'data-id': a.id },
    el('td', { class: 'num' }, String(a.id)), el('td', {}, fmtTime(a.at)),
    el('td', { 'data-test': 'audit-who' }, a.actor), el('td', {}, a.address || ''), el('td', {}, a.role),
    el('td', { 'data-test': 'audit-what' }, a.action), el('td', { class: 'wrap' }, a.target || ''),
    el('td', { class: 'wrap' }, a.detail ? JSON.stringify(a.detail) : '')));
  const pager = el('div', { class: 'pager' },
    p.get('before') ? el('a', { class: 'button', href: hashWith({}), 'data-test': 'audit-newest' }, 'Newest') : null,
    r.next ? el('a', { class: 'button', href: hashWith({ before: r.next }), 'data-test': 'audit-older' }, 'Older →') : null);
  box.replaceChildren(el('h2', {}, 'Audit log'), form,
    rows.length ? table(['#', 'When', 'Who', 'Address', 'Role', 'Action', 'Target', 'Detail'], rows, 'audit-table')
      : el('p', { class: 'muted', 'data-test': 'audit-empty' }, 'Nothing recorded that fits.'),
    pager);
}

async function show(box, section, ctx) {
  const f = { 'batch-users': batchUsers, users, tokens, groups, audit }[section];
  try {
    await f(box, ctx);
  } catch (e) {
    box.replaceChildren(el('p', { class: 'error', 'data-test': 'admin-error' }, e.detail || e.message));
    if (e.status === 401) throw e;
  }
}

export async function render(main, ctx) {
  main.appendChild(el('h1', {}, 'Admin'));
  if (!ctx.can.admin) {
    main.appendChild(el('p', { class: 'notice-box', 'data-test': 'admins-only', role: 'alert' },
      `Admins only: you are logged in as ${ctx.me.user} (${ctx.me.role}). `
      + 'Batch Users, console users, API tokens, connection groups and the audit log are for the admin role.'));
    return undefined;
  }
  const m = ctx.route.path.match(/^\/admin\/([a-z-]+)$/);
  const section = m && SECTIONS.some((s) => s.id === m[1]) ? m[1] : 'batch-users';
  main.appendChild(el('nav', { 'aria-label': 'Admin sections' },
    el('div', { class: 'admin-sections' }, ...SECTIONS.map((s) =>
      el('a', { href: `#/admin/${s.id}`, 'data-test': `admin-${s.id}`,
                'aria-current': s.id === section ? 'page' : null }, s.label)))));
  const box = el('section', { 'data-test': `admin-section-${section}` });
  main.appendChild(box);
  await show(box, section, ctx);
  return undefined;
}
