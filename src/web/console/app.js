// app.js: the console's shell. A hash router (#/login, #/jobs, #/jobs/ID,
// #/connections, #/alerts, #/admin[/section]), the navigation, who is logged
// in, logout, the shared event stream, and what happens when the session
// ends: any 401 sends the user to #/login?next=<where they were>&expired=1.
import { api, setCsrf, onUnauthorized } from './api.js';
import { createEvents } from './sse.js';
import { el, notify } from './ui.js';
// the Jobs page is the usual first page: its module comes with the shell
// (index.html preloads it anyway), so that its first read goes out in the
// same task as /me instead of after a dynamic import resolves
import { prefetch as prefetchJobs } from './pages/jobs.js';

const ROUTES = [
  { re: /^\/login$/, page: 'login', open: true },
  { re: /^\/jobs$/, page: 'jobs', nav: 'jobs' },
  { re: /^\/jobs\/(\d+)$/, page: 'job', nav: 'jobs' },
  { re: /^\/connections$/, page: 'connections', nav: 'connections' },
  { re: /^\/alerts$/, page: 'alerts', nav: 'alerts' },
  { re: /^\/admin(\/[a-z-]+)?$/, page: 'admin', nav: 'admin' },
];

const NAV = [
  { id: 'jobs', label: 'Jobs', hash: '#/jobs' },
  { id: 'connections', label: 'Connections', hash: '#/connections' },
  { id: 'alerts', label: 'Alerts', hash: '#/alerts' },
  { id: 'admin', label: 'Admin', hash: '#/admin', admin: true },
];

const shell = {
  me: null,          // GET /api/v1/me, null when logged out
  events: null,      // the shared stream while logged in
  cleanup: null,     // what the current page returned
  seq: 0,            // the render in progress (a later hashchange wins)
};

function parseHash() {
  const h = location.hash.slice(1);
  const q = h.indexOf('?');
  const path = q < 0 ? h : h.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : h.slice(q + 1));
  return { path: path || '/', params };
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function can(me) {
  const role = me ? me.role : '';
  return {
    operate: role === 'operator' || role === 'admin',
    admin: role === 'admin',
    submit: !!role && role !== 'viewer',
  };
}

function drawNav(active) {
  const ul = document.getElementById('nav');
  ul.replaceChildren();
  if (!shell.me) return;
  for (const item of NAV) {
    if (item.admin && shell.me.role !== 'admin') continue;
    const a = el('a', { href: item.hash, 'data-test': `nav-${item.id}`,
                        'aria-current': item.id === active ? 'page' : null }, item.label);
    ul.appendChild(el('li', {}, a));
  }
}

function drawWho() {
  const who = document.getElementById('who');
  who.hidden = !shell.me;
  document.getElementById('me').textContent =
    shell.me ? `${shell.me.user} (${shell.me.role})` : '';
}

// The user is logged in (after GET /me or the login page).
function loggedIn(me) {
  shell.me = me;
  setCsrf(me.csrf_token);
  if (shell.events) shell.events.close();
  shell.events = createEvents({ onEnded: checkSession });
  drawWho();
}

function loggedOut() {
  shell.me = null;
  setCsrf(null);
  if (shell.events) { shell.events.close(); shell.events = null; }
  drawWho();
  drawNav(null);
}

// The session ended (a 401 anywhere): to the login page, keeping the target.
function sessionEnded() {
  if (!shell.me) return;
  const { path } = parseHash();
  loggedOut();
  if (path === '/login') return;
  const next = location.hash || '#/jobs';
  navigate(`#/login?next=${encodeURIComponent(next)}&expired=1`);
}

// The event stream stopped: is the session still there? (A 401 here ends it
// through onUnauthorized; otherwise the stream is opened again.)
async function checkSession() {
  if (!shell.me) return;
  try {
    await api('GET', '/me');
    setTimeout(() => { if (shell.me && shell.events) shell.events.reopen(); }, 3000);
  } catch (e) { /* 401 handled by sessionEnded; a network error: EventSource retries */ }
}

async function logout() {
  try { await api('POST', '/logout'); } catch (e) { /* ended already: fine */ }
  loggedOut();
  notify('You are logged out.', 'info');
  navigate('#/login');
}

async function route() {
  const seq = ++shell.seq;
  if (shell.cleanup) {
    try { shell.cleanup(); } catch (e) { console.error(e); }
    shell.cleanup = null;
  }
  const r = parseHash();
  let found = null;
  let match = null;
  for (const rt of ROUTES) {
    match = r.path.match(rt.re);
    if (match) { found = rt; break; }
  }
  if (!found) { navigate('#/jobs'); return; }
  if (!found.open && !shell.me) {
    navigate(`#/login?next=${encodeURIComponent(location.hash)}`);
    return;
  }
  // a non-admin on #/admin is told why there is nothing (admin.js says so);
  // the data is PostgreSQL's to refuse either way
  drawNav(found.nav);
  const main = document.getElementById('main');
  main.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  const ctx = {
    me: shell.me,
    can: can(shell.me),
    route: { path: r.path, params: r.params, match },
    navigate,
    events: shell.events || { on() { return () => {}; } },
    loggedIn: (me) => { loggedIn(me); },
  };
  try {
    const mod = await import(`./pages/${found.page}.js`);
    if (seq !== shell.seq) return;
    main.replaceChildren();
    const cleanup = await mod.render(main, ctx);
    if (seq !== shell.seq) { if (typeof cleanup === 'function') cleanup(); return; }
    shell.cleanup = typeof cleanup === 'function' ? cleanup : null;
  } catch (e) {
    if (seq !== shell.seq) return;
    if (e && e.status === 401) return; // on its way to the login page
    main.replaceChildren(el('h1', {}, 'Something went wrong'),
      el('p', { class: 'error', 'data-test': 'page-error' }, e && e.message ? e.message : String(e)));
  }
}

function routeOf(path) {
  for (const rt of ROUTES) if (rt.re.test(path)) return rt;
  return null;
}

async function start() {
  onUnauthorized(sessionEnded);
  document.getElementById('logout').addEventListener('click', logout);
  // the first page's module loads while /me is asked, not after
  const r = parseHash();
  const first = routeOf(r.path);
  if (first && first.page === 'jobs') {
    prefetchJobs(r.params);
  } else if (first) {
    import(`./pages/${first.page}.js`)
      .then((m) => { if (typeof m.prefetch === 'function') m.prefetch(r.params); })
      .catch(() => {});
  }
  // Left for another page, the console may be kept in the back/forward
  // cache: its streams close (the page's and the shared one), and open again
  // if the user comes back to it.
  window.addEventListener('pagehide', (e) => {
    if (!e.persisted) return;
    if (shell.cleanup) { try { shell.cleanup(); } catch (err) { console.error(err); } }
    shell.cleanup = null;
    if (shell.events) shell.events.pause();
  });
  window.addEventListener('pageshow', (e) => {
    if (!e.persisted) return;
    if (shell.events) shell.events.reopen();
    route();
  });
  try {
    loggedIn(await api('GET', '/me'));
  } catch (e) {
    if (e.status !== 401) notify(`amtacs-web: ${e.message}`, 'error');
  }
  window.addEventListener('hashchange', route);
  route();
}

start();
