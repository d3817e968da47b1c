// The login page: POST /api/v1/login. Says plainly what went wrong: a wrong
// name or password (401), too many tries (429: the server's message, with the
// wait counted down), the session that ended (?expired=1). After login, back
// to ?next= (a hash of this console only) or the jobs.
import { api } from '../api.js';
import { el } from '../ui.js';

// Only a route of this console: never a URL elsewhere.
function target(params) {
  const next = params.get('next') || '';
  return /^#\/(?!login)[A-Za-z0-9/_?=&%.:+-]*$/.test(next) ? next : '#/jobs';
}

export async function render(main, ctx) {
  const next = target(ctx.route.params);
  if (ctx.me) { ctx.navigate(next); return undefined; }

  const user = el('input', { id: 'login-user', name: 'user', autocomplete: 'username',
                             required: true, 'data-test': 'login-user' });
  const pass = el('input', { id: 'login-password', name: 'password', type: 'password',
                             autocomplete: 'current-password', required: true,
                             'data-test': 'login-password' });
  const submit = el('button', { type: 'submit', class: 'primary', 'data-test': 'login-submit' },
                    'Log in');
  const message = el('p', { class: 'message', role: 'alert', 'data-test': 'login-message',
                            hidden: true });
  const form = el('form', { class: 'login', 'data-test': 'login-form', novalidate: true },
    el('h1', {}, 'Log in to amtacs'),
    message,
    el('label', { for: 'login-user' }, 'User name', user),
    el('label', { for: 'login-password' }, 'Password', pass),
    submit);
  main.appendChild(form);

  let timer = null;
  function show(text, kind = 'error', state = '') {
    message.hidden = false;
    message.className = `message ${kind}`;
    message.dataset.state = state;
    message.textContent = text;
  }
  if (ctx.route.params.get('expired')) {
    show('Your session has ended; log in again.', 'info', 'expired');
  }

  function throttled(err) {
    // The server's own words ("... try again in N seconds"), and a countdown
    // on the button so nobody tries again in vain.
    let left = Number.isFinite(err.retryAfter) ? err.retryAfter : 0;
    show(err.detail, 'error', 'throttled');
    clearInterval(timer);
    if (left <= 0) return;
    submit.disabled = true;
    const tick = () => {
      if (left <= 0) {
        clearInterval(timer);
        submit.disabled = false;
        submit.textContent = 'Log in';
        return;
      }
      submit.textContent = `Wait ${left} s`;
      left -= 1;
    };
    tick();
    timer = setInterval(tick, 1000);
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!user.value || !pass.value) {
      show('Enter your user name and your password.', 'error', 'missing');
      (user.value ? pass : user).focus();
      return;
    }
    submit.disabled = true;
    try {
      const me = await api('POST', '/login', { user: user.value, password: pass.value });
      pass.value = '';
      ctx.loggedIn(me);
      ctx.navigate(next);
    } catch (err) {
      pass.value = '';
      submit.disabled = false;
      if (err.status === 401) {
        show('Wrong user name or password.', 'error', 'wrong');
      } else if (err.status === 429) {
        throttled(err);
      } else {
        show(`Logging in failed: ${err.detail}`, 'error', 'failed');
      }
      pass.focus();
    }
  });
  user.focus();
  return () => clearInterval(timer);
}
