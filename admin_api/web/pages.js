// The pages of a workspace owner and a share recipient: workspaces, the browser, sharing, keys, search.
import { SessionExpired, api, enc, formatBytes, formatTime, q, session } from './api.js';
import * as s3 from './s3.js';
import { attempt, go, h, labelled, say, table } from './ui.js';

function usageBar(name, usage) {
  if (!usage) return h('span', {}, '');
  const limit = usage.max_bytes;
  const label = limit ? `${formatBytes(usage.bytes)} of ${formatBytes(limit)}` : `${formatBytes(usage.bytes)} (no quota)`;
  const bar = h('progress', { max: limit || 1, value: limit ? Math.min(usage.bytes, limit) : 0, 'aria-label': `Usage of ${name}` });
  return h('span', { class: 'usage' }, bar, ' ', label, usage.max_objects ? `, ${usage.objects} of ${usage.max_objects} objects` : `, ${usage.objects} objects`);
}

async function workspacesPage(main) {
  main.append(h('h1', {}, 'Workspaces'));
  const name = h('input', { name: 'name', required: true, pattern: '[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]' });
  const pub = h('input', { type: 'checkbox', name: 'public' });
  main.append(h('details', { class: 'panel' }, h('summary', {}, 'New workspace'),
    h('form', { 'aria-label': 'New workspace', onsubmit: async (e) => {
      e.preventDefault();
      const created = await attempt(() => api('POST', '/workspaces', { name: name.value, public: pub.checked }),
        `Workspace ${name.value} created.`);
      if (created) go(`#/ws/${enc(created.name)}`);
    } }, labelled('Workspace name', name), h('div', { class: 'field' }, h('label', {}, pub, ' Public (readable by every user)')),
    h('button', { type: 'submit' }, 'Create workspace'))));
  const { workspaces } = await api('GET', '/workspaces');
  const usage = await Promise.all(workspaces.map((w) => api('GET', `/workspaces/${enc(w.name)}/usage`).catch(() => null)));
  main.append(table('Your workspaces', ['Name', 'Access', 'Owner', 'Usage', 'Created'], workspaces.map((w, i) => h('tr', {},
    h('td', {}, h('a', { href: `#/ws/${enc(w.name)}` }, w.name), w.public ? h('span', { class: 'tag' }, 'public') : null),
    h('td', {}, w.permission || '—'), h('td', {}, w.owner), h('td', {}, usageBar(w.name, usage[i])),
    h('td', {}, formatTime(w.created_at))))));
  if (!workspaces.length) main.append(h('p', {}, 'No workspaces yet: create one above, or ask a colleague to share one with you.'));
}

function breadcrumbs(ws, prefix) {
  const crumbs = [h('a', { href: `#/ws/${enc(ws)}` }, ws)];
  let acc = '';
  for (const part of prefix.split('/').filter(Boolean)) {
    acc += `${part}/`;
    crumbs.push(' / ', h('a', { href: `#/ws/${enc(ws)}/${enc(acc)}` }, part));
  }
  return h('nav', { 'aria-label': 'Breadcrumbs', class: 'crumbs' }, crumbs);
}

async function browserPage(main, ws, prefix = '') {
  const info = await api('GET', `/workspaces/${enc(ws)}`);
  main.append(h('h1', {}, `Workspace ${ws}`), breadcrumbs(ws, prefix),
    h('p', { class: 'meta' }, `Your access: ${info.permission || 'administrator'} · owner ${info.owner}`,
      info.permission === 'admin' || session.user.is_admin ? [' · ', h('a', { href: `#/shares/${enc(ws)}` }, 'Sharing')] : null));
  const input = h('input', { type: 'file', multiple: true, hidden: true, 'aria-label': 'Files to upload' });
  const uploads = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const listing = h('div', {});
  const refresh = async () => {
    const { folders, objects } = await s3.list(ws, prefix);
    listing.replaceChildren(table('Contents', ['Name', 'Size', 'Modified', 'Actions'], [
      ...folders.map((f) => h('tr', {}, h('td', {}, h('a', { href: `#/ws/${enc(ws)}/${enc(f)}` }, `${f.slice(prefix.length)}`), h('span', { class: 'tag' }, 'folder')),
        h('td', {}, ''), h('td', {}, ''), h('td', {}, ''))),
      ...objects.map((o) => objectRow(ws, prefix, o, refresh, info)),
    ]));
    if (!folders.length && !objects.length) listing.append(h('p', {}, 'This folder is empty. Upload files with the button or drop them here.'));
  };
  const start = (files) => uploadAll(ws, prefix, files, uploads, refresh);
  input.addEventListener('change', () => { start([...input.files]); input.value = ''; });
  const folder = h('input', { name: 'folder' });
  const drop = h('section', { class: 'drop', 'aria-label': 'Drop files here to upload' },
    h('button', { type: 'button', onclick: () => input.click() }, 'Upload'), input,
    h('span', {}, ' or drag and drop files here'),
    h('form', { class: 'inline', 'aria-label': 'Open a folder', onsubmit: (e) => {
      e.preventDefault();
      if (folder.value) go(`#/ws/${enc(ws)}/${enc(`${prefix}${folder.value.replace(/\/+$/, '')}/`)}`);
    } }, labelled('Folder name', folder), h('button', { type: 'submit' }, 'Open folder')));
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); start([...e.dataTransfer.files]); });
  main.append(drop, uploads, listing);
  await attempt(refresh);
}

function objectRow(ws, prefix, o, refresh, info) {
  const name = o.key.slice(prefix.length);
  return h('tr', {}, h('td', {}, name), h('td', {}, formatBytes(o.size)), h('td', {}, formatTime(o.modified)),
    h('td', { class: 'actions' },
      h('button', { type: 'button', 'aria-label': `Download ${name}`, onclick: () => attempt(async () => {
        const url = await s3.downloadUrl(ws, o.key);
        window.location.assign(url);   // Content-Disposition: attachment, so the page stays
      }) }, 'Download'),
      info.permission === 'admin' || session.user.is_admin
        ? h('button', { type: 'button', 'aria-label': `Share link for ${name}`, onclick: () => go(`#/shares/${enc(ws)}/${enc(o.key)}`) }, 'Share link')
        : null,
      h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${name}`, onclick: async () => {
        if (!window.confirm(`Delete ${o.key} from ${ws}? This cannot be undone.`)) return;
        if (await attempt(() => s3.remove(ws, o.key).then(() => true), `Deleted ${name}.`)) await attempt(refresh);
      } }, 'Delete')));
}

async function uploadAll(ws, prefix, files, list, refresh) {
  let failed = 0; let expired = false;
  await Promise.all(files.map(async (file) => {
    const bar = h('progress', { max: 100, value: 0, 'aria-label': `Upload progress for ${file.name}` });
    const pct = h('span', { class: 'pct' }, '0 %');
    const state = h('span', { class: 'state' }, '');
    list.append(h('li', {}, `${file.name} (${formatBytes(file.size)}) `, bar, ' ', pct, ' ', state));
    const show = (sent) => {
      const p = file.size ? Math.floor((100 * sent) / file.size) : 100;
      bar.value = Math.min(p, 99); pct.textContent = `${Math.min(p, 99)} %`;
    };
    try {
      await s3.upload(ws, prefix + file.name, file, show);
      bar.value = 100; pct.textContent = '100 %'; state.textContent = 'done';
    } catch (err) {
      if (err instanceof SessionExpired) expired = true;
      failed++; state.textContent = err.message; state.setAttribute('role', 'alert'); state.className = 'state error';
    }
  }));
  if (expired) return;   // the login page says why
  if (failed) say(`${failed} of ${files.length} uploads failed; see the messages beside them.`, 'error');
  else say(`Uploaded ${files.length} file${files.length === 1 ? '' : 's'}.`, 'ok');
  await attempt(refresh);
}

async function sharesPage(main, ws, objectKey) {
  main.append(h('h1', {}, `Sharing ${ws}`), h('p', {}, h('a', { href: `#/ws/${enc(ws)}` }, `Back to ${ws}`)));
  const shareList = h('div', {});
  const loadShares = async () => {
    const { shares } = await api('GET', `/workspaces/${enc(ws)}/shares`);
    shareList.replaceChildren(table('Shares', ['With', 'Permission', 'Prefix', 'Expires', 'Actions'], shares.map((s) => {
      const who = s.user ? `user ${s.user}` : `group ${s.group}`;
      return h('tr', {}, h('td', {}, who), h('td', {}, s.permission), h('td', {}, s.prefix || '(whole workspace)'),
        h('td', {}, formatTime(s.expires_at) || 'never'),
        h('td', {}, h('button', { type: 'button', class: 'danger', 'aria-label': `Remove share with ${who}`, onclick: async () => {
          if (await attempt(() => api('DELETE', `/workspaces/${enc(ws)}/shares/${s.id}`).then(() => true), `Share with ${who} removed.`)) await attempt(loadShares);
        } }, 'Remove')));
    })));
  };
  const kind = h('select', { name: 'kind' }, h('option', { value: 'user' }, 'user'), h('option', { value: 'group' }, 'group'));
  const grantee = h('input', { name: 'grantee', required: true });
  const perm = h('select', { name: 'permission' }, ['read', 'write', 'admin'].map((p) => h('option', { value: p }, p)));
  const prefix = h('input', { name: 'prefix', placeholder: 'e.g. results/' });
  const expires = h('input', { name: 'expires', type: 'date' });
  main.append(h('h2', {}, 'Shares'),
    h('p', { class: 'meta' }, 'To share with several people at once, ', h('a', { href: '#/groups' }, 'make a group'), ' and share with it.'),
    h('form', { 'aria-label': 'Add a share', class: 'grid', onsubmit: async (e) => {
    e.preventDefault();
    const body = { [kind.value]: grantee.value, permission: perm.value, prefix: prefix.value };
    if (expires.value) body.expires_at = `${expires.value}T23:59:59Z`;
    if (await attempt(() => api('POST', `/workspaces/${enc(ws)}/shares`, body), `Shared ${ws} with ${kind.value} ${grantee.value}.`)) {
      grantee.value = ''; await attempt(loadShares);
    }
  } }, labelled('Share with', kind), labelled('User or group name', grantee), labelled('Permission', perm),
  labelled('Prefix (optional)', prefix), labelled('Expires (optional)', expires), h('button', { type: 'submit' }, 'Add share')), shareList);

  const linkList = h('div', {});
  const created = h('div', { class: 'secret', 'aria-live': 'polite' });
  const loadLinks = async () => {
    const { links } = await api('GET', `/workspaces/${enc(ws)}/links`);
    linkList.replaceChildren(table('Share links', ['Object or folder', 'Created by', 'Expires', 'Actions'], links.map((l) => {
      const what = l.key !== undefined ? l.key : (l.prefix || `${ws} (whole workspace)`);
      return h('tr', {},
      h('td', {}, what), h('td', {}, l.created_by), h('td', {}, formatTime(l.expires_at)),
      h('td', {}, h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke link to ${what}`, onclick: async () => {
        if (!window.confirm(`Revoke the link to ${what}? It stops working at once.`)) return;
        if (await attempt(() => api('DELETE', `/workspaces/${enc(ws)}/links/${enc(l.id)}`).then(() => true), `Link to ${what} revoked.`)) {
          created.replaceChildren(); await attempt(loadLinks);
        }
      } }, 'Revoke')));
    })));
  };
  const key = h('input', { name: 'key', required: true, value: objectKey || '' });
  const linkKind = h('select', { name: 'link-kind' }, h('option', { value: 'key' }, 'one object'), h('option', { value: 'prefix' }, 'a folder (ends with /; empty: everything)'));
  linkKind.addEventListener('change', () => { key.required = linkKind.value === 'key'; });
  const days = h('input', { name: 'days', type: 'number', min: 1, max: 7, value: 1 });
  main.append(h('h2', {}, 'Share links'),
    h('p', {}, 'Anyone with a link can download the object (or the folder\'s files), without an account, until the link expires or is revoked.'),
    h('form', { 'aria-label': 'Create a share link', class: 'grid', onsubmit: async (e) => {
      e.preventDefault();
      const link = await attempt(() => api('POST', `/workspaces/${enc(ws)}/links`, { [linkKind.value]: key.value, expires_in_seconds: Number(days.value) * 86400 }),
        'Link created: copy it now, it is shown only once.');
      if (link) {
        const field = h('input', { readonly: true, value: link.url, 'aria-label': 'Share link URL', class: 'wide' });
        created.replaceChildren(labelled('Share link', field), copyButton('Copy link', () => link.url));
        await attempt(loadLinks);
      }
    } }, labelled('Link to', linkKind), labelled('Object key or folder', key), labelled('Valid for (days)', days), h('button', { type: 'submit' }, 'Create link')),
    created, linkList);
  await attempt(loadShares);
  await attempt(loadLinks);
}

export function copyButton(label, value) {
  return h('button', { type: 'button', onclick: async () => {
    try { await navigator.clipboard.writeText(value()); say('Copied to the clipboard.', 'ok'); }
    catch (e) { say('The browser refused the clipboard; select the text and copy it.', 'error'); }
  } }, label);
}

function snippets(key) {
  const ep = (session.info && session.info.s3_endpoint) || '<s3-endpoint>';
  const region = (session.info && session.info.region) || 'us-east-1';
  return {
    aws: `export AWS_ACCESS_KEY_ID=${key.access_key_id}\nexport AWS_SECRET_ACCESS_KEY=${key.secret_access_key}\nexport AWS_DEFAULT_REGION=${region}\naws --endpoint-url ${ep} s3 ls`,
    mc: `mc alias set wio ${ep} ${key.access_key_id} ${key.secret_access_key}\nmc ls wio`,
    rclone: `rclone config create wio s3 provider=Other endpoint=${ep} region=${region} access_key_id=${key.access_key_id} secret_access_key=${key.secret_access_key}\nrclone lsd wio:`,
  };
}

async function keysPage(main) {
  main.append(h('h1', {}, 'Access keys'), h('p', {}, 'Keys for S3 tools (aws, mc, rclone, boto3 …) pointed at the wio proxy. The secret is shown once.'));
  const name = h('input', { name: 'name' });
  const days = h('input', { name: 'days', type: 'number', min: 1, max: 366 });
  const shown = h('section', { 'aria-label': 'New key', class: 'secret' });
  const list = h('div', {});
  const load = async () => {
    const { keys } = await api('GET', '/keys');
    const mine = keys.filter((k) => !k.purpose);
    list.replaceChildren(table('Your keys', ['Access key id', 'Name', 'Created', 'Expires', 'Actions'], mine.map((k) => h('tr', {},
      h('td', {}, h('code', {}, k.access_key_id)), h('td', {}, k.name || ''), h('td', {}, formatTime(k.created_at)),
      h('td', {}, formatTime(k.expires_at) || 'never'),
      h('td', {}, h('button', { type: 'button', class: 'danger', 'aria-label': `Delete key ${k.access_key_id}`, onclick: async () => {
        if (!window.confirm(`Delete key ${k.access_key_id}? Tools using it stop working at once.`)) return;
        if (await attempt(() => api('DELETE', `/keys/${enc(k.access_key_id)}`).then(() => true), 'Key deleted.')) await attempt(load);
      } }, 'Delete'))))));
  };
  main.append(h('form', { 'aria-label': 'Create an access key', class: 'grid', onsubmit: async (e) => {
    e.preventDefault();
    const body = { name: name.value || null };
    if (days.value) body.expires_in_seconds = Number(days.value) * 86400;
    const key = await attempt(() => api('POST', '/keys', body), 'Key created: copy the secret now, it is not shown again.');
    if (!key) return;
    const snip = snippets(key);
    shown.replaceChildren(h('h2', {}, 'Your new key'),
      h('dl', {}, h('dt', {}, 'Access key id'), h('dd', {}, h('code', { 'data-testid': 'access-key-id' }, key.access_key_id), ' ', copyButton('Copy access key id', () => key.access_key_id)),
        h('dt', {}, 'Secret access key'), h('dd', {}, h('code', { 'data-testid': 'secret-access-key' }, key.secret_access_key), ' ', copyButton('Copy secret access key', () => key.secret_access_key)),
        h('dt', {}, 'S3 endpoint'), h('dd', {}, h('code', {}, (session.info && session.info.s3_endpoint) || ''))),
      ...Object.entries(snip).map(([tool, text]) => h('figure', {}, h('figcaption', {}, tool), h('pre', { 'aria-label': `${tool} snippet` }, text), copyButton(`Copy ${tool} snippet`, () => text))));
    await attempt(load);
  } }, labelled('Key name', name), labelled('Expires after (days, optional)', days), h('button', { type: 'submit' }, 'Create key')), shown, list);
  await attempt(load);
}

async function searchPage(main) {
  const text = h('input', { name: 'q', type: 'search' });
  const results = h('div', {});
  const facets = h('aside', { 'aria-label': 'Facets', class: 'facets' });
  const filters = {};
  const run = async () => {
    const params = { q: text.value, ...filters };
    const [found, ...aggs] = await Promise.all([api('GET', `/search${q({ ...params, limit: 100 })}`),
      ...['workspace', 'extension', 'owner', 'content_type'].map((by) => api('GET', `/search/aggregations${q({ ...params, by })}`).catch(() => null))]);
    facets.replaceChildren(...aggs.filter(Boolean).map((a) => h('section', {}, h('h2', {}, a.by.replace('_', ' ')),
      h('ul', {}, a.buckets.slice(0, 20).map((b) => {
        const filterName = a.by === 'content_type' ? 'content_type' : a.by === 'workspace' ? 'workspace' : null;
        const label = `${b.key || '(none)'} (${b.objects}, ${formatBytes(b.bytes)})`;
        return h('li', {}, filterName ? h('button', { type: 'button', class: 'link', 'aria-pressed': filters[filterName] === b.key ? 'true' : 'false', onclick: () => {
          if (filters[filterName] === b.key) delete filters[filterName]; else filters[filterName] = b.key;
          attempt(run);
        } }, label) : label);
      })))));
    results.replaceChildren(h('p', {}, `${found.total} result${found.total === 1 ? '' : 's'}`),
      table('Results', ['Workspace', 'Key', 'Size', 'Modified', 'Type'], found.hits.map((x) => h('tr', {},
        h('td', {}, h('a', { href: `#/ws/${enc(x.workspace)}/${enc(x.key.includes('/') ? x.key.slice(0, x.key.lastIndexOf('/') + 1) : '')}` }, x.workspace)),
        h('td', {}, x.key), h('td', {}, formatBytes(x.size)), h('td', {}, formatTime(x.last_modified)), h('td', {}, x.content_type || '')))));
  };
  main.append(h('h1', {}, 'Search'), h('form', { role: 'search', 'aria-label': 'Search objects', onsubmit: (e) => { e.preventDefault(); attempt(run); } },
    labelled('Search text', text), h('button', { type: 'submit' }, 'Search')), h('div', { class: 'split' }, facets, results));
  await attempt(run);
}

// A folder link, opened by anyone (no account): list and download inside the link's folder.
async function linkPage(main, id, token, sub = '') {
  s3.signWithLink(id, token);
  let link;
  try { link = await api('POST', `/links/${enc(id)}/presign`, { token, requests: [] }); }
  catch (err) {
    main.append(h('h1', {}, 'Shared folder'), h('p', { class: 'error', role: 'alert' }, 'This link does not exist, has expired or was revoked.'));
    return;
  }
  const prefix = link.prefix + sub;
  const base = `#/link/${enc(id)}/${enc(token)}`;
  const crumbs = [h('a', { href: base }, link.prefix || link.workspace)];
  let acc = '';
  for (const part of sub.split('/').filter(Boolean)) { acc += `${part}/`; crumbs.push(' / ', h('a', { href: `${base}/${enc(acc)}` }, part)); }
  main.append(h('h1', {}, `Shared folder ${link.prefix || link.workspace}`),
    h('p', { class: 'meta' }, `Shared from workspace ${link.workspace}, until ${formatTime(link.expires_at)}. No account needed.`),
    h('nav', { 'aria-label': 'Breadcrumbs', class: 'crumbs' }, crumbs));
  const { folders, objects } = await s3.list(link.workspace, prefix);
  main.append(table('Contents', ['Name', 'Size', 'Modified', 'Actions'], [
    ...folders.map((f) => h('tr', {}, h('td', {}, h('a', { href: `${base}/${enc(f.slice(link.prefix.length))}` }, f.slice(prefix.length)), h('span', { class: 'tag' }, 'folder')),
      h('td', {}, ''), h('td', {}, ''), h('td', {}, ''))),
    ...objects.map((o) => {
      const name = o.key.slice(prefix.length);
      return h('tr', {}, h('td', {}, name), h('td', {}, formatBytes(o.size)), h('td', {}, formatTime(o.modified)),
        h('td', {}, h('button', { type: 'button', 'aria-label': `Download ${name}`, onclick: () => attempt(async () => {
          window.location.assign(await s3.downloadUrl(link.workspace, o.key));
        }) }, 'Download')));
    })]));
}

export const pages = { link: linkPage, workspaces: workspacesPage, ws: browserPage, shares: sharesPage, keys: keysPage, search: searchPage };
