// The API client. The login token lives in this module's memory only (never a cookie or web storage):
// a reload logs out, and there is nothing a cross-site request could ride on.
let token = null;
// `notice`: a message for the next page (navigating clears the message line, then shows it);
// `returnTo`: where a login that expired was ({user, hash}), to go back there when that user logs in again.
export const session = { user: null, info: null, notice: null, returnTo: null };

export const EXPIRED = 'Your session has expired; log in again.';

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// A request made with a login the server no longer accepts (expired), or without one: the page goes back
// to the login page, which says why; pages drop this error instead of showing it over that message.
export class SessionExpired extends ApiError {
  constructor(message) { super(401, 'Unauthorized', message); }
}

export function setToken(value) { token = value; }
export function loggedIn() { return token !== null; }

// `cookies`: only the end of a single sign-on login sends one (the cookie that binds it to this browser).
export async function api(method, path, body, { cookies = false } = {}) {
  const headers = { Accept: 'application/json' };
  const sent = token;
  if (sent) headers.Authorization = `Bearer ${sent}`;
  const init = { method, headers, credentials: cookies ? 'same-origin' : 'omit', cache: 'no-store' };
  if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
  let response;
  try { response = await fetch(`/api/v1${path}`, init); }
  catch (e) { throw new ApiError(0, 'Unreachable', 'the wio API cannot be reached'); }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!response.ok) {
    const err = (data && data.error) || {};
    // The login expired (or, for a request still under way when it did or after a logout, is gone):
    // back to the login page, with the reason, once; the error itself is for pages to drop.
    if (response.status === 401 && (sent || err.code === 'Unauthorized')) {
      if (sent && token === sent) {   // once, for the first such answer
        const user = session.user && session.user.username;
        token = null; session.user = null;
        if (!location.hash.startsWith('#/link/')) {
          session.notice = [EXPIRED, 'error']; session.returnTo = { user, hash: location.hash };
          location.hash = '#/login';
        }
      }
      throw new SessionExpired(err.message || EXPIRED);
    }
    throw new ApiError(response.status, err.code || 'HTTPError', err.message || `HTTP ${response.status}`);
  }
  return data;
}

export function q(params) {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') s.set(k, v);
  const text = s.toString();
  return text ? `?${text}` : '';
}

export function enc(s) { return encodeURIComponent(s); }

export function formatBytes(n) {
  if (n === null || n === undefined) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0; let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function formatTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}
