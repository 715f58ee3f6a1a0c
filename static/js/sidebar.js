// Rendering of the lists around the timeline: rooms and direct messages
// in the sidebar, and the room's members. Names go in through
// textContent only.

import { h, svgIcon, syncList } from './dom.js';
import { avatar, avatarClass, initials, plural } from './format.js';

// KEY_ICON is the path of the key icon of password actions (index.html
// has the same one on the "Change password" button).
const KEY_ICON = 'M21 2l-2 2m-7.61 7.61a5.5 5.5 0 11-7.78 7.78 5.5 5.5 0 017.78-7.78zm0 0L15.5 7.5m0 0l3 3L22 7l-3-3m-3.5 3.5L19 4';

const badgeText = (n) => (n > 99 ? '99+' : String(n));

function setBadge(el, n) {
  const badge = el.querySelector('.badge');
  badge.hidden = n === 0;
  badge.textContent = n ? badgeText(n) : '';
}

function setAvatar(el, name) {
  el.className = el.className.replace(/\bavatar-c\d+\b/, '').trim() + ' ' + avatarClass(name);
  el.firstChild.textContent = initials(name);
}

export function renderRooms(ul, rooms, currentKey, open) {
  syncList(ul, rooms, (c) => c.key,
    (c) => h('li', {},
      h('button', { type: 'button', class: 'nav-item', dataset: { room: c.id }, onclick: () => open(c.key) },
        h('span', { class: 'nav-icon', 'aria-hidden': 'true', text: '#' }),
        h('span', { class: 'nav-label', text: c.name }),
        h('span', { class: 'badge', 'aria-hidden': 'true', hidden: true }))),
    (li, c) => {
      const btn = li.firstElementChild;
      btn.classList.toggle('active', c.key === currentKey);
      btn.classList.toggle('has-unread', c.unread > 0);
      if (c.key === currentKey) btn.setAttribute('aria-current', 'page');
      else btn.removeAttribute('aria-current');
      btn.setAttribute('aria-label', c.unread ? `${c.name}, ${plural(c.unread, 'unread message')}` : c.name);
      setBadge(btn, c.unread);
    });
}

export function renderDMs(ul, dms, currentKey, online, open) {
  syncList(ul, dms, (c) => c.key,
    (c) => {
      const av = h('span', { class: `avatar avatar-xs ${avatarClass(c.name)}`, 'aria-hidden': 'true' }, h('span', { text: initials(c.name) }), h('span', { class: 'presence' }));
      return h('li', {},
        h('button', { type: 'button', class: 'nav-item', dataset: { peer: c.name }, onclick: () => open(c.key) },
          av,
          h('span', { class: 'nav-label', text: c.name }),
          h('span', { class: 'badge', 'aria-hidden': 'true', hidden: true })));
    },
    (li, c) => {
      const btn = li.firstElementChild;
      const isOnline = online.has(c.id);
      btn.classList.toggle('active', c.key === currentKey);
      btn.classList.toggle('has-unread', c.unread > 0);
      btn.classList.toggle('is-online', isOnline);
      if (c.key === currentKey) btn.setAttribute('aria-current', 'page');
      else btn.removeAttribute('aria-current');
      const status = isOnline ? 'online' : 'offline';
      btn.setAttribute('aria-label', c.unread ? `${c.name} (${status}), ${plural(c.unread, 'unread message')}` : `${c.name} (${status})`);
      setAvatar(btn.querySelector('.avatar'), c.name);
      setBadge(btn, c.unread);
    });
}

// renderMembers fills the online and offline lists of a room. Clicking
// someone else opens a direct conversation with them. resetPassword, given
// to admins only, adds a "Reset password…" action for everyone else.
export function renderMembers(onlineUl, offlineUl, members, me, openDM, resetPassword) {
  const sorted = [...members].sort((a, b) => a.username.localeCompare(b.username, undefined, { sensitivity: 'base' }));
  const fill = (ul, list) => syncList(ul, list, (m) => m.userId,
    (m) => {
      const isMe = m.userId === me.userId;
      const av = avatar(m.username, 'avatar-sm');
      av.append(h('span', { class: 'presence' }));
      const label = h('span', { class: 'member-name', text: m.username });
      if (isMe) label.append(h('span', { class: 'member-you', text: ' (you)' }));
      const inner = [av, label];
      return h('li', { class: 'member-row' }, isMe
        ? h('div', { class: 'member' }, ...inner)
        : h('button', { type: 'button', class: 'member', dataset: { user: m.username }, onclick: () => openDM(m.userId, m.username) }, ...inner));
    },
    (li, m) => {
      const el = li.firstElementChild;
      el.classList.toggle('is-online', m.online);
      if (el.tagName === 'BUTTON') el.setAttribute('aria-label', `Message ${m.username} (${m.online ? 'online' : 'offline'})`);
      const action = el.nextElementSibling;
      const wanted = resetPassword && m.userId !== me.userId;
      if (wanted && !action) {
        li.append(h('button', {
          type: 'button', class: 'icon-btn icon-btn-sm member-action', dataset: { reset: m.username },
          'aria-label': `Reset password for ${m.username}…`, title: 'Reset password…',
          onclick: () => resetPassword(m.username),
        }, svgIcon(KEY_ICON)));
      } else if (!wanted && action) {
        action.remove();
      }
    });
  fill(onlineUl, sorted.filter((m) => m.online));
  fill(offlineUl, sorted.filter((m) => !m.online));
}

// renderAllRooms lists every room of the server in the join dialog.
export function renderAllRooms(ul, rooms, isMember, choose) {
  const sorted = [...rooms].sort((a, b) => (b.onlineCount - a.onlineCount) || (b.memberCount - a.memberCount) || a.roomId.localeCompare(b.roomId));
  syncList(ul, sorted, (r) => r.roomId,
    (r) => h('li', { class: 'room-row' },
      h('span', { class: 'room-row-hash', 'aria-hidden': 'true', text: '#' }),
      h('span', { class: 'room-row-text' },
        h('span', { class: 'room-row-name', text: r.roomId }),
        h('span', { class: 'room-row-meta' })),
      h('button', { type: 'button', class: 'btn btn-small', dataset: { join: r.roomId }, onclick: () => choose(r.roomId) })),
    (li, r) => {
      li.querySelector('.room-row-meta').textContent = `${plural(r.memberCount, 'member')} · ${r.onlineCount} online`;
      const btn = li.querySelector('button');
      const member = isMember(r.roomId);
      btn.textContent = member ? 'Open' : 'Join';
      btn.classList.toggle('btn-primary', !member);
      btn.setAttribute('aria-label', `${member ? 'Open' : 'Join'} #${r.roomId}`);
    });
}
