// The console: a hash router, a tiny DOM builder, the login pages. Pages live in pages.js and admin.js.
import { api, loggedIn, session, setToken } from './api.js';
import { signAsUser } from './s3.js';
import { attempt, go, goAndSay, h, labelled, navigated, report, say } from './ui.js';
import { pages } from './pages.js';
import { groupPages } from './groups.js';
import { adminPages } from './admin.js';

function nav() {
  const n = document.getElementById('nav');
  n.replaceChildren();
  if (!session.user) return;
  const links = [['#/workspaces', 'Workspaces'], ['#/search', 'Search'], ['#/groups', 'Groups'], ['#/keys', 'Access keys']];
  if (session.user.is_admin) {
    links.push(['#/admin/users', 'Users'], ['#/admin/nodes', 'Nodes'], ['#/admin/roots', 'Roots'],
      ['#/admin/quotas', 'Quotas'], ['#/admin/audit', 'Audit'], ['#/admin/explain', 'Explain']);
  } else {
    links.push(['#/admin/explain', 'Explain']);
  }
  n.append(...links.map(([href, text]) => h('a', { href }, text)),
    h('span', { class: 'who' }, session.user.username),
    h('button', { type: 'button', onclick: logout }, 'Log out'));
}

async function logout() {
  setToken(null); session.user = null; session.returnTo = null; goAndSay('#/login', 'You are logged out.', 'ok');
}

async function finishLogin(token) {
  setToken(token);
  session.user = await api('GET', '/me');
  const back = session.returnTo;   // after an expired login, back where that user was
  session.returnTo = null;
  go(back && back.user === session.user.username ? back.hash : '#/workspaces');
}

function loginPage(main) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { 'aria-label': 'Log in', onsubmit: async (e) => {
    e.preventDefault();
    await attempt(async () => {
      const out = await api('POST', '/auth/login', { username: user.value, password: pass.value });
      say('');
      await finishLogin(out.access_token);
    });
  } }, labelled('Username', user), labelled('Password', pass), h('button', { type: 'submit' }, 'Log in'));
  const info = session.info || {};
  const sso = info.oidc_issuer
    ? h('p', {}, h('a', { class: 'button', href: '/api/v1/auth/oidc/login?console=1' }, `Log in with ${providerName(info.oidc_issuer)}`))
    : null;
  const passwords = info.password_login !== false;
  main.append(...[h('h1', {}, 'Log in'), passwords ? form : null, sso,
    passwords ? h('p', {}, 'No account yet? ', h('a', { href: '#/register' }, 'Register')) : null].filter(Boolean));
}

function providerName(issuer) {
  try { return new URL(issuer).host; } catch (e) { return issuer; }
}

function registerPage(main) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true });
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'email' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  main.append(h('h1', {}, 'Register'), h('form', { 'aria-label': 'Register', onsubmit: async (e) => {
    e.preventDefault();
    await attempt(async () => {
      await api('POST', '/auth/register', { username: user.value, password: pass.value, email: email.value || null });
      const out = await api('POST', '/auth/login', { username: user.value, password: pass.value });
      session.notice = [`Welcome, ${user.value}.`, 'ok'];
      await finishLogin(out.access_token);
    });
  } }, labelled('Username', user), labelled('Email (optional)', email), labelled('Password', pass),
  h('button', { type: 'submit' }, 'Register')), h('p', {}, h('a', { href: '#/login' }, 'Back to log in')));
}

async function ssoHandoff(code) {
  await attempt(async () => {
    const out = await api('POST', '/auth/oidc/console', { code }, { cookies: true });
    history.replaceState(null, '', '/#/workspaces');
    await finishLogin(out.access_token);
  });
}

const routes = { login: loginPage, register: registerPage, ...pages, ...groupPages, ...adminPages };

export async function render() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const name = parts[0] || 'workspaces';
  if (name === 'sso' && parts[1]) { await ssoHandoff(parts[1]); return; }
  if (name !== 'link') signAsUser();
  if (!loggedIn() && name !== 'register' && name !== 'link') { if (name !== 'login') { location.hash = '#/login'; return; } }
  nav();
  const main = document.getElementById('main');
  main.replaceChildren();
  const page = routes[parts[0] === 'admin' ? `admin/${parts[1]}` : name] || routes.workspaces;
  const args = parts[0] === 'admin' ? parts.slice(2) : parts.slice(1);
  try { await page(main, ...args); }
  catch (err) { report(err); }
}

window.addEventListener('hashchange', () => { navigated(); render(); });
(async () => {
  try { session.info = await api('GET', '/info'); } catch (e) { session.info = {}; }
  await render();
})();
