// Small UI helpers shared by every page: a DOM builder, the message line, error wording.
import { ApiError } from './api.js';
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

export function describe(err) {
  if (err instanceof S3Failure) return err.message;
  if (err instanceof ApiError) {
    if (err.status === 403) return `Access denied: ${err.message}`;
    return `${err.message} (${err.code})`;
  }
  return String(err && err.message ? err.message : err);
}

// Run an action; show its error (an API or S3 refusal) instead of failing silently.
export async function attempt(action, success) {
  try { const out = await action(); if (success) say(success, 'ok'); return out; }
  catch (err) { say(describe(err), 'error'); return undefined; }
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

