// api.js: every call of the console to amtacs-web's /api/v1. JSON in and out,
// the CSRF token on unsafe methods, errors as ApiError from the problem+json.
// A 401 on any call but the login itself ends the console's session: the
// shell (app.js) sends the user to #/login?next=<where they were>.

export class ApiError extends Error {
  constructor(status, detail, title) {
    super(detail || title || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.detail = detail || title || `HTTP ${status}`;
    this.title = title || '';
  }
}

const state = { csrf: null, onUnauthorized: null };

// The shell sets the session's CSRF token (null when logged out) and what a
// 401 does.
export function setCsrf(token) { state.csrf = token || null; }
export function onUnauthorized(fn) { state.onUnauthorized = fn; }

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export async function api(method, path, body) {
  method = method.toUpperCase();
  const headers = { 'Accept': 'application/json, text/plain' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined && body !== null) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (UNSAFE.has(method) && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  let res;
  try {
    res = await fetch('/api/v1' + path, init);
  } catch (e) {
    throw new ApiError(0, 'amtacs-web cannot be reached; check the network and try again',
                       'Network error');
  }
  const ct = res.headers.get('Content-Type') || '';
  let data = null;
  if (res.status !== 204 && method !== 'HEAD') {
    if (ct.includes('json')) {
      try { data = await res.json(); } catch (e) { data = null; }
    } else {
      data = await res.text();
    }
  }
  if (res.ok) return data;
  const detail = data && typeof data === 'object' ? data.detail : (data || '');
  const title = data && typeof data === 'object' ? data.title : res.statusText;
  const err = new ApiError(res.status, detail, title);
  const retry = res.headers.get('Retry-After');
  if (retry) err.retryAfter = Number(retry);
  if (res.status === 401 && path !== '/login' && state.onUnauthorized) state.onUnauthorized(err);
  throw err;
}
