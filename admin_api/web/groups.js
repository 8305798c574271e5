// Groups: the caller's groups (those they own or belong to; every group for an administrator). The owner
// or an administrator adds and removes members and deletes the group; a workspace's Sharing page shares
// with a group. A member removed loses what the group was granted on the next request.
import { api, enc, session } from './api.js';
import { attempt, h, labelled, table } from './ui.js';

function manages(group) {
  return session.user.is_admin || group.owner === session.user.username;
}

async function groupsPage(main) {
  main.append(h('h1', {}, 'Groups'),
    h('p', {}, 'A group is a named set of users: share a workspace with the group (on the workspace\'s Sharing page) and every member gets that access; remove someone from the group and they lose it at once.'));
  const list = h('div', {});
  const load = async () => {
    const { groups } = await api('GET', '/groups');
    list.replaceChildren(table('Your groups', ['Group', 'Owner', 'Members', 'Actions'], groups.map((g) => groupRow(g, load))));
  };
  const name = h('input', { name: 'name', required: true, autocomplete: 'off' });
  main.append(h('form', { 'aria-label': 'New group', class: 'grid', onsubmit: async (e) => {
    e.preventDefault();
    if (await attempt(() => api('POST', '/groups', { name: name.value }), `Group ${name.value} created.`)) {
      name.value = ''; await attempt(load);
    }
  } }, labelled('Group name', name), h('button', { type: 'submit' }, 'Create group')), list);
  await attempt(load);
}

function groupRow(g, reload) {
  const mine = manages(g);
  const members = g.members.length
    ? h('ul', { class: 'members', 'aria-label': `Members of ${g.name}` }, g.members.map((m) => h('li', {}, m, mine
      ? h('button', { type: 'button', class: 'danger small', 'aria-label': `Remove ${m} from ${g.name}`, onclick: async () => {
        if (await attempt(() => api('DELETE', `/groups/${enc(g.name)}/members/${enc(m)}`).then(() => true),
          `${m} removed from ${g.name}.`)) await attempt(reload);
      } }, 'Remove')
      : null)))
    : h('span', { class: 'meta' }, 'No members yet.');
  let actions = h('span', { class: 'meta' }, `managed by ${g.owner}`);
  if (mine) {
    const user = h('input', { name: 'user', required: true, autocomplete: 'off' });
    actions = h('div', { class: 'actions' },
      h('form', { class: 'inline-row', 'aria-label': `Add a member to ${g.name}`, onsubmit: async (e) => {
        e.preventDefault();
        if (await attempt(() => api('POST', `/groups/${enc(g.name)}/members`, { user: user.value }),
          `${user.value} added to ${g.name}.`)) await attempt(reload);
      } }, labelled(`New member of ${g.name}`, user),
      h('button', { type: 'submit', 'aria-label': `Add member to ${g.name}` }, 'Add member')),
      h('button', { type: 'button', class: 'danger', 'aria-label': `Delete group ${g.name}`, onclick: async () => {
        if (!window.confirm(`Delete group ${g.name}? Its members lose every share made to it.`)) return;
        if (await attempt(() => api('DELETE', `/groups/${enc(g.name)}`).then(() => true), `Group ${g.name} deleted.`)) await attempt(reload);
      } }, 'Delete group'));
  }
  return h('tr', {}, h('td', {}, g.name), h('td', {}, g.owner), h('td', {}, members), h('td', {}, actions));
}

export const groupPages = { groups: groupsPage };
