// Operator pages: users, nodes, roots, quotas, the audit trail, and "Why can't X do Y?" (explain).
import { api, enc, formatBytes, formatTime, q, session } from './api.js';
import { attempt, h, labelled, say, table } from './ui.js';

async function usersPage(main) {
  main.append(h('h1', {}, 'Users'));
  const box = h('div', {});
  const load = async () => {
    const { users } = await api('GET', '/users');
    box.replaceChildren(table('Users', ['Username', 'Email', 'Administrator', 'State', 'Created', 'Actions'], users.map((u) => h('tr', {},
      h('td', {}, u.username), h('td', {}, u.email || ''), h('td', {}, u.is_admin ? 'yes' : 'no'),
      h('td', {}, u.disabled ? 'disabled' : 'active'), h('td', {}, formatTime(u.created_at)),
      h('td', {}, u.username === session.user.username ? '(you)' : h('button', { type: 'button', class: u.disabled ? '' : 'danger', 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.username}`,
        onclick: async () => {
          if (await attempt(() => api('POST', `/users/${enc(u.username)}/${u.disabled ? 'enable' : 'disable'}`),
            `${u.username} ${u.disabled ? 'enabled' : 'disabled'}.`)) await attempt(load);
        } }, u.disabled ? 'Enable' : 'Disable'))))));
  };
  main.append(box);
  await attempt(load);
}

// Register a node: the API checks the endpoint (the SSRF guard: no link-local, metadata or, unless the
// operator allows it, private address) and the credentials (a ListBuckets) before recording it.
async function nodesPage(main) {
  const name = h('input', { name: 'name', required: true, autocomplete: 'off' });
  const endpoint = h('input', { name: 'endpoint', required: true, inputmode: 'url', autocomplete: 'off', placeholder: 'http(s)://host:port' });
  const region = h('input', { name: 'region', required: true, value: 'us-east-1' });
  const access = h('input', { name: 'access_key', required: true, autocomplete: 'off' });
  const secret = h('input', { name: 'secret_key', type: 'password', required: true, autocomplete: 'new-password' });
  const submit = h('button', { type: 'submit' }, 'Register node');
  const list = h('div', {});
  // The list holds the nodes the caller manages (their own; an administrator's: all), so each can be removed.
  const load = async () => {
    const { nodes } = await api('GET', '/nodes');
    list.replaceChildren(table('Storage nodes', ['Name', 'Endpoint', 'Region', 'Owner', 'Created', 'Actions'], nodes.map((n) => h('tr', {},
      h('td', {}, n.name), h('td', {}, n.endpoint), h('td', {}, n.region), h('td', {}, n.owner), h('td', {}, formatTime(n.created_at)),
      h('td', {}, h('button', { type: 'button', class: 'danger', 'aria-label': `Remove node ${n.name}`, onclick: async () => {
        if (!window.confirm(`Remove node ${n.name}? wio forgets it, with its roots and every workspace on them `
          + '(their shares go too, and wio stops serving them at once). The buckets and their data stay on the node.')) return;
        if (await attempt(() => api('DELETE', `/nodes/${enc(n.name)}`).then(() => true),
          `Node ${n.name} removed; its data stays on the node.`, 'The node was not removed')) await attempt(load);
      } }, 'Remove'))))));
  };
  main.append(h('h1', {}, 'Nodes'), h('details', { class: 'panel' }, h('summary', {}, 'Register a node'),
    h('p', { class: 'meta' }, 'An S3 server (MinIO, SeaweedFS, …) wio stores workspaces on. wio checks that it answers with these credentials before registering it.'),
    h('form', { 'aria-label': 'Register a node', class: 'grid', onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      say(`Checking ${endpoint.value} …`);
      try {
        const node = await attempt(() => api('POST', '/nodes', { name: name.value, endpoint: endpoint.value, region: region.value,
          access_key: access.value, secret_key: secret.value }), `Node ${name.value} registered.`, 'The node was not registered');
        if (node) { secret.value = ''; await attempt(load); }
      } finally { submit.disabled = false; }
    } }, labelled('Node name', name), labelled('Endpoint', endpoint), labelled('Region', region),
    labelled('Access key', access), labelled('Secret key', secret), submit)), list);
  await attempt(load);
}

// A root: a bucket (and prefix) on a node that workspaces are made in. The API creates the bucket.
async function rootsPage(main) {
  const name = h('input', { name: 'name', required: true, autocomplete: 'off' });
  const node = h('select', { name: 'node', required: true });
  const bucket = h('input', { name: 'bucket', required: true, autocomplete: 'off' });
  const prefix = h('input', { name: 'prefix', placeholder: 'e.g. wio/ (optional)' });
  const type = h('select', { name: 'type' }, [['private', 'private (workspaces of their owners)'], ['public', 'public (readable by every user)'],
    ['unmanaged', 'unmanaged (existing data, imported)']].map(([v, text]) => h('option', { value: v }, text)));
  const submit = h('button', { type: 'submit' }, 'Create root');
  const list = h('div', {});
  const load = async () => {
    const [{ roots }, { nodes }] = await Promise.all([api('GET', '/roots'), api('GET', '/nodes')]);
    const chosen = node.value;
    node.replaceChildren(...nodes.map((n) => h('option', { value: n.name }, `${n.name} (${n.endpoint})`)));
    if (nodes.some((n) => n.name === chosen)) node.value = chosen;
    const usage = await Promise.all(roots.map((r) => api('GET', `/roots/${enc(r.name)}/usage`).catch(() => null)));
    // Roots are removed by their node's owner or an administrator: the nodes the caller is listed.
    const managed = new Set(nodes.map((n) => n.name));
    list.replaceChildren(table('Roots', ['Name', 'Node', 'Bucket', 'Prefix', 'Type', 'Usage', 'Actions'], roots.map((r, i) => h('tr', {},
      h('td', {}, r.name), h('td', {}, r.node), h('td', {}, r.bucket), h('td', {}, r.prefix), h('td', {}, r.type),
      h('td', {}, usage[i] ? `${formatBytes(usage[i].bytes)}${usage[i].max_bytes ? ` of ${formatBytes(usage[i].max_bytes)}` : ''}, ${usage[i].objects} objects` : ''),
      h('td', {}, managed.has(r.node) ? h('button', { type: 'button', class: 'danger', 'aria-label': `Remove root ${r.name}`, onclick: async () => {
        if (!window.confirm(`Remove root ${r.name}? wio forgets it; this is refused while it holds workspaces. `
          + `The bucket ${r.bucket} and its data stay on ${r.node}.`)) return;
        if (await attempt(() => api('DELETE', `/roots/${enc(r.name)}`).then(() => true),
          `Root ${r.name} removed; bucket ${r.bucket} stays on ${r.node}.`, 'The root was not removed')) await attempt(load);
      } }, 'Remove') : h('span', { class: 'meta' }, 'managed by the node\'s owner'))))));
  };
  main.append(h('h1', {}, 'Roots'), h('details', { class: 'panel' }, h('summary', {}, 'Create a root'),
    h('p', { class: 'meta' }, 'A bucket (and optional prefix) on a node where workspaces are stored. wio creates the bucket if the node has none of that name.'),
    h('form', { 'aria-label': 'Create a root', class: 'grid', onsubmit: async (e) => {
      e.preventDefault();
      submit.disabled = true;
      say(`Creating bucket ${bucket.value} on ${node.value} …`);
      try {
        const root = await attempt(() => api('POST', '/roots', { name: name.value, node: node.value, bucket: bucket.value,
          prefix: prefix.value, type: type.value }), `Root ${name.value} created on ${node.value}.`, 'The root was not created');
        if (root) await attempt(load);
      } finally { submit.disabled = false; }
    } }, labelled('Root name', name), labelled('Node', node), labelled('Bucket', bucket), labelled('Prefix', prefix),
    labelled('Type', type), submit)), list);
  await attempt(load);
}

function parseSize(text) {
  const t = text.trim();
  if (!t) return null;
  const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?$/i.exec(t);
  if (!m) throw new Error('sizes look like 500 MiB, 2 GiB or 1048576');
  const mult = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 }[(m[2] || 'b').toLowerCase()];
  return Math.round(Number(m[1]) * mult);
}

async function quotasPage(main) {
  const kind = h('select', { name: 'kind' }, ['workspace', 'user', 'root'].map((k) => h('option', { value: k }, k)));
  const name = h('input', { name: 'name', required: true });
  const bytes = h('input', { name: 'bytes', placeholder: 'e.g. 10 GiB; empty: no limit' });
  const objects = h('input', { name: 'objects', type: 'number', min: 0 });
  const shown = h('div', {});
  const path = () => `/${kind.value === 'workspace' ? 'workspaces' : `${kind.value}s`}/${enc(name.value)}`;
  main.append(h('h1', {}, 'Quotas'), h('form', { 'aria-label': 'Set a quota', class: 'grid', onsubmit: async (e) => {
    e.preventDefault();
    const out = await attempt(() => api('PUT', `${path()}/quota`, { max_bytes: parseSize(bytes.value), max_objects: objects.value ? Number(objects.value) : null }),
      `Quota of ${kind.value} ${name.value} set.`);
    if (out) await attempt(show);
  } }, labelled('Quota of', kind), labelled('Name', name), labelled('Maximum size', bytes), labelled('Maximum objects', objects),
  h('button', { type: 'submit' }, 'Set quota'), h('button', { type: 'button', onclick: () => attempt(show) }, 'Show usage')), shown);
  const show = async () => {
    const u = await api('GET', `${path()}/usage`);
    shown.replaceChildren(h('p', {}, `${kind.value} ${name.value}: ${formatBytes(u.bytes)} in ${u.objects} objects; limit ${u.max_bytes === null ? 'none' : formatBytes(u.max_bytes)}`
      + ` / ${u.max_objects === null ? 'none' : `${u.max_objects} objects`}`));
  };
}

async function auditPage(main) {
  const fields = { workspace: h('input', { name: 'workspace' }), user: h('input', { name: 'user' }),
    decision: h('select', { name: 'decision' }, h('option', { value: '' }, 'any'), h('option', { value: 'allow' }, 'allow'), h('option', { value: 'deny' }, 'deny')),
    since: h('input', { name: 'since', type: 'datetime-local' }) };
  const box = h('div', {});
  const run = async () => {
    const params = { workspace: fields.workspace.value, user: fields.user.value, decision: fields.decision.value, limit: 200 };
    if (fields.since.value) params.since = new Date(fields.since.value).toISOString();
    const { entries } = await api('GET', `/audit${q(params)}`);
    box.replaceChildren(table('Audit trail', ['Time', 'User', 'Operation', 'Workspace', 'Key', 'Decision', 'Status', 'Why'], entries.map((x) => h('tr', {},
      h('td', {}, formatTime(x.time || x.ts || x.timestamp)), h('td', {}, x.user || ''), h('td', {}, x.operation || ''),
      h('td', {}, x.workspace || ''), h('td', {}, x.key || ''), h('td', {}, x.decision || ''), h('td', {}, x.status ?? ''),
      h('td', {}, x.reason || x.decided_by || '')))));
  };
  main.append(h('h1', {}, 'Audit trail'), h('form', { 'aria-label': 'Filter the audit trail', class: 'grid', onsubmit: (e) => { e.preventDefault(); attempt(run); } },
    labelled('Workspace', fields.workspace), labelled('User', fields.user), labelled('Decision', fields.decision), labelled('Since', fields.since),
    h('button', { type: 'submit' }, 'Filter')), box);
  await attempt(run);
}

const OPERATIONS = ['GetObject', 'HeadObject', 'ListObjectsV2', 'PutObject', 'DeleteObject', 'CopyObject', 'CreateMultipartUpload', 'DeleteObjects', 'DeleteBucket'];

async function explainPage(main) {
  const who = h('input', { name: 'user', required: true });
  const op = h('select', { name: 'operation' }, OPERATIONS.map((o) => h('option', { value: o }, o)));
  const ws = h('input', { name: 'workspace', required: true });
  const key = h('input', { name: 'key' });
  const answer = h('section', { 'aria-label': 'Answer', 'aria-live': 'polite' });
  main.append(h('h1', {}, "Why can't X do Y?"), h('p', {}, 'Ask wio how it decides a request, with the same rules the proxy applies (you need admin on the workspace).'),
    h('form', { 'aria-label': 'Explain a decision', class: 'grid', onsubmit: async (e) => {
      e.preventDefault();
      const out = await attempt(() => api('POST', '/explain', { user: who.value, operation: op.value, workspace: ws.value, key: key.value }));
      if (!out) return;
      answer.replaceChildren(h('p', { class: out.allowed ? 'ok' : 'error' },
        `${out.user} ${out.allowed ? 'may' : 'may not'} ${out.operation} on ${out.workspace}/${out.key}: ${out.decided_by} (needs ${out.permission_needed}).`),
      table('Grants considered', ['Permission', 'Prefix', 'Via'], out.grants.map((g) => h('tr', {}, h('td', {}, g.permission), h('td', {}, g.prefix || '(all)'), h('td', {}, g.via)))),
      h('p', {}, `Groups: ${out.groups.join(', ') || 'none'}`));
    } }, labelled('User', who), labelled('Operation', op), labelled('Workspace', ws), labelled('Object key', key), h('button', { type: 'submit' }, 'Explain')), answer);
}

export const adminPages = { 'admin/users': usersPage, 'admin/nodes': nodesPage, 'admin/roots': rootsPage,
  'admin/quotas': quotasPage, 'admin/audit': auditPage, 'admin/explain': explainPage };
