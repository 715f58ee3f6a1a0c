// Rendering of the lists around the timeline: rooms and direct messages
// in the sidebar, and the room's members. Names go in through
// textContent only.

import { h, svgIcon, syncList } from './dom.js';
import { avatar, avatarClass, initials, plural } from './format.js';

// KEY_ICON is the path of the key icon of password actions (index.html
// has the same one on the "Change password" button).
const KEY_ICON = 'M21 2l-2 2m-7.61 7.61a5.5 5.5 0 11-7.78 7.78 5.5 5.5 0 017.78-7.78zm0 0L15.5 7.5m0 0l3 3L22 7l-3-3m-3.5 3.5L19 4';

const badgeText = (n) => (n > 99 ? '99+' : String(n));

// setBadge shows a count; its accessible text says what it counts, so
// the button's name is its visible text (no aria-label to disagree with).
function setBadge(badge, n, what) {
  badge.hidden = n === 0;
  badge.replaceChildren(...(n ? [badgeText(n), h('span', { class: 'visually-hidden', text: ` ${what}` })] : []));
}

function setAvatar(el, name) {
  el.className = el.className.replace(/\bavatar-c\d+\b/, '').trim() + ' ' + avatarClass(name);
  el.firstChild.textContent = initials(name);
}

const LOCK_ICON = 'M6 11h12v10H6zM8.5 11V7.5a3.5 3.5 0 017 0V11';
const MORE_ICON = 'M5 12h.01M12 12h.01M19 12h.01';

export function renderRooms(ul, rooms, currentKey, open) {
  syncList(ul, rooms, (c) => c.key,
    (c) => h('li', {},
      h('button', { type: 'button', class: 'nav-item', dataset: { room: c.id }, onclick: () => open(c.key) },
        h('span', { class: 'nav-icon', 'aria-hidden': 'true', text: '#' }),
        h('span', { class: 'nav-label', text: c.group ? c.title : c.name }),
        h('span', { class: 'visually-hidden nav-private' }),
        h('span', { class: 'nav-mention', hidden: true }),
        // Red is for mentions; a room's unread count is quiet.
        h('span', { class: 'badge badge-quiet', hidden: true }))),
    (li, c) => {
      const btn = li.firstElementChild;
      btn.classList.toggle('active', c.key === currentKey);
      btn.classList.toggle('has-unread', c.unread > 0);
      if (c.key === currentKey) btn.setAttribute('aria-current', 'page');
      else btn.removeAttribute('aria-current');
      btn.querySelector('.nav-private').textContent = c.group ? ' (group)' : c.private ? ' (private)' : '';
      btn.querySelector('.nav-label').textContent = c.group ? c.title : c.name;
      const icon = btn.querySelector('.nav-icon');
      if (icon.dataset.private !== String(c.private)) {
        icon.dataset.private = String(c.private);
        icon.replaceChildren(c.private ? svgIcon(LOCK_ICON) : '#');
      }
      const mention = btn.querySelector('.nav-mention');
      mention.hidden = !c.mentions;
      mention.replaceChildren(...(c.mentions ? [`@${badgeText(c.mentions)}`, h('span', { class: 'visually-hidden', text: c.mentions === 1 ? ' mention' : ' mentions' })] : []));
      setBadge(btn.querySelector('.badge'), c.unread, 'unread');
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
          h('span', { class: 'visually-hidden nav-status' }),
          h('span', { class: 'badge', hidden: true })));
    },
    (li, c) => {
      const btn = li.firstElementChild;
      const isOnline = online.has(c.id);
      btn.classList.toggle('active', c.key === currentKey);
      btn.classList.toggle('has-unread', c.unread > 0);
      btn.classList.toggle('is-online', isOnline);
      if (c.key === currentKey) btn.setAttribute('aria-current', 'page');
      else btn.removeAttribute('aria-current');
      btn.querySelector('.nav-status').textContent = isOnline ? ' (online)' : ' (offline)';
      setAvatar(btn.querySelector('.avatar'), c.name);
      setBadge(btn.querySelector('.badge'), c.unread, 'unread');
    });
}

// renderMembers fills the online and offline lists of a room. Clicking
// someone else opens a direct conversation with them. acts: openDM(id,
// name); resetPassword(name), given to admins only, adds a "Reset
// password…" button for everyone else; powers(member) (moderation.js)
// and openMenu(button, member) add a menu of moderation actions.
export function renderMembers(onlineUl, offlineUl, members, me, acts) {
  const { openDM, resetPassword, powers, openMenu } = acts;
  const sorted = [...members].sort((a, b) => a.username.localeCompare(b.username, undefined, { sensitivity: 'base' }));
  const fill = (ul, list) => syncList(ul, list, (m) => m.userId,
    (m) => {
      const isMe = m.userId === me.userId;
      const av = avatar(m.username, 'avatar-sm');
      av.append(h('span', { class: 'presence' }));
      const label = h('span', { class: 'member-name', text: m.username });
      if (isMe) label.append(h('span', { class: 'member-you', text: ' (you)' }));
      const inner = [av, label, h('span', { class: 'visually-hidden member-state' }), h('span', { class: 'member-badges' })];
      return h('li', { class: 'member-row' }, isMe
        ? h('div', { class: 'member' }, ...inner)
        : h('button', { type: 'button', class: 'member', dataset: { user: m.username }, onclick: () => openDM(m.userId, m.username) }, ...inner));
    },
    (li, m) => {
      const el = li.firstElementChild;
      el.classList.toggle('is-online', m.online);
      const badges = [];
      // One badge, the highest: a server admin outranks the room's owner.
      if (m.admin) {
        const also = m.role === 'owner' ? ', owner of this room' : m.role === 'moderator' ? ', moderator of this room' : '';
        badges.push(h('span', { class: 'role-badge role-admin', text: 'Admin', title: `Server admin${also}` }));
      } else if (m.role === 'owner' || m.role === 'moderator') {
        badges.push(h('span', { class: `role-badge role-${m.role}`, text: m.role === 'owner' ? 'Owner' : 'Mod', title: m.role === 'owner' ? 'Owner' : 'Moderator' }));
      }
      if (m.muted) badges.push(h('span', { class: 'muted-badge', text: 'Muted', title: 'Muted in this room' }));
      if (m.guest) badges.push(h('span', { class: 'member-tag', text: 'guest', title: 'Signed in as a guest, without an account' }));
      if (m.bot) badges.push(h('span', { class: 'member-tag', text: 'bot', title: 'A bot or an incoming webhook' }));
      el.querySelector('.member-badges').replaceChildren(...badges);
      // The name is the visible text with the state in words: badges
      // such as "Mod" are read as they show.
      el.querySelector('.member-state').textContent = ` (${m.online ? 'online' : 'offline'})`;
      if (el.tagName === 'BUTTON') el.title = `Message ${m.username}`;

      const isMe = m.userId === me.userId;
      let reset = li.querySelector('[data-reset]');
      const wantReset = resetPassword && !isMe;
      if (wantReset && !reset) {
        reset = h('button', {
          type: 'button', class: 'icon-btn icon-btn-sm member-action', dataset: { reset: m.username },
          'aria-label': `Reset password for ${m.username}…`, title: 'Reset password…',
          onclick: () => resetPassword(m.username),
        }, svgIcon(KEY_ICON));
        li.append(reset);
      } else if (!wantReset && reset) {
        reset.remove();
      }
      let menu = li.querySelector('[data-menu]');
      const wantMenu = powers(m).any;
      if (wantMenu && !menu) {
        menu = h('button', {
          type: 'button', class: 'icon-btn icon-btn-sm member-menu-btn', dataset: { menu: m.username },
          'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-label': `Moderate ${m.username}`, title: 'Moderate…',
        }, svgIcon(MORE_ICON));
        li.append(menu);
      } else if (!wantMenu && menu) {
        menu.remove();
        menu = null;
      }
      // The member may have changed (role, mute): the menu reads it fresh.
      if (menu) menu.onclick = () => openMenu(menu, m);
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
        h('span', { class: 'room-row-topic', text: r.topic || '', hidden: !r.topic }),
        h('span', { class: 'room-row-meta' })),
      h('button', { type: 'button', class: 'btn btn-small', dataset: { join: r.roomId }, onclick: () => choose(r.roomId) })),
    (li, r) => {
      li.querySelector('.room-row-meta').textContent = `${r.private ? 'Private · ' : ''}${plural(r.memberCount, 'member')} · ${r.onlineCount} online`;
      const topic = li.querySelector('.room-row-topic');
      topic.textContent = r.topic || '';
      topic.hidden = !r.topic;
      const btn = li.querySelector('button');
      const member = isMember(r.roomId);
      btn.textContent = member ? 'Open' : 'Join';
      btn.classList.toggle('btn-primary', !member);
      btn.setAttribute('aria-label', `${member ? 'Open' : 'Join'} #${r.roomId}`);
    });
}
