// Small UI helpers shared by every page: a DOM builder, tables, the message line, error wording.
import { ApiError, SessionExpired, session } from './api.js';
import { S3Failure } from './s3.js';

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export function say(text, kind = 'info') {
  const box = document.getElementById('message');
  box.className = kind; box.textContent = text || '';
  if (kind === 'error') box.setAttribute('role', 'alert'); else box.setAttribute('role', 'status');
}

// Navigating clears the message line, then shows the message left for the next page, if any.
export function navigated() {
  const notice = session.notice;
  session.notice = null;
  say(...(notice || ['']));
}

// Say `text` on the page `hash` leads to.
export function goAndSay(hash, text, kind = 'info') {
  session.notice = [text, kind];
  go(hash);
}

export function table(caption, headers, rows) {
  return h('table', {}, h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: headers.length, class: 'meta' }, 'None.'))));
}

// Show an error on the message line; an expired login says so on the login page instead.
export function report(err, what) {
  if (err instanceof SessionExpired) return;
  if (what) say(`${what}: ${sentence(err)}`, 'error');
  else say(describe(err), 'error');
}

// An API refusal as a sentence (for a form whose failure needs no error code, e.g. a node the API
// would not register).
function sentence(err) {
  const text = String(err && err.message ? err.message : err).replace(/[.\s]+$/, '');
  return `${text}.`;
}

export function describe(err) {
  if (err instanceof S3Failure) return err.message;
  if (err instanceof ApiError) {
    if (err.status === 403) return `Access denied: ${err.message}`;
    return `${err.message} (${err.code})`;
  }
  return String(err && err.message ? err.message : err);
}

// Run an action; show its error (an API or S3 refusal) instead of failing silently. `what` words
// the failure ("The node was not registered: <why>.") instead of the API's message and code.
export async function attempt(action, success, what) {
  try { const out = await action(); if (success) say(success, 'ok'); return out; }
  catch (err) { report(err, what); return undefined; }
}

export function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

export function labelled(label, input) {
  const id = `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

