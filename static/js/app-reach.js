// Reaching people (issue 15): invite links (opening one, making one), a
// room's incoming webhooks, the people directory and group
// conversations, and push notifications (subscribing this device, a
// room's level). Methods of App (app.js).

import { dmKey, roomKey } from './conversation.js';
import { byId, h, syncList } from './dom.js';
import { retryText } from './format.js';
import { notificationsEnabled } from './notify.js';
import { pushSupported, registerServiceWorker, subscribePush, unsubscribePush } from './pwa.js';

// inviteTokenFromURL returns the secret of an invite link
// (https://HOST/#invite=TOKEN), or null.
function inviteTokenFromURL() {
  const m = /^#invite=(.*)$/.exec(window.location.hash);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

const showIn = (el, text) => {
  el.textContent = text;
  el.hidden = !text;
};

const errorText = (d) => (d.code === 'rate_limited' ? retryText(d.message, d.retryAfter) : d.message || d.code);

// PEOPLE_DELAY_MS waits for a pause in typing before asking the server.
const PEOPLE_DELAY_MS = 200;

export const reachMethods = {
  initReach() {
    this.inviteToken = inviteTokenFromURL();
    this.groupPending = false; // a createGroup is unanswered
    this.people = new Map(); // userId -> { userId, username }, the directory's picks
    const el = (id) => byId(id);
    this.reach = {
      notifyForm: el('notify-form'), notify: el('room-notify'),
      linkForm: el('link-form'), linkUses: el('link-uses'), linkExpiry: el('link-expiry'), linkResult: el('link-result'),
      linkURL: el('link-url'), linkCopy: el('link-copy'),
      hooksForm: el('hooks-form'), hooksList: el('hooks-list'), hookName: el('hook-name'), hookResult: el('hook-result'),
      hookURL: el('hook-url'), hookCopy: el('hook-copy'),
      peopleDialog: el('people-dialog'), peopleForm: el('people-form'), peopleQuery: el('people-query'),
      peopleList: el('people-list'), peopleEmpty: el('people-empty'), peopleError: el('people-error'), peopleStart: el('people-start'),
    };
    const r = this.reach;
    r.notify.addEventListener('change', () => {
      const conv = this.convs.get(this.roomDialogKey);
      if (conv && !this.send('setNotify', { roomId: conv.id, level: r.notify.value })) this.shell.toast('You are not connected; try again in a moment.', 'error');
    });
    r.linkForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const conv = this.convs.get(this.roomDialogKey);
      if (!conv) return;
      this.send('createInvite', { roomId: conv.id, maxUses: Number(r.linkUses.value), expiresInHours: Number(r.linkExpiry.value) });
    });
    r.hooksForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const conv = this.convs.get(this.roomDialogKey);
      if (!conv) return;
      const name = r.hookName.value.trim();
      this.send('createHook', name ? { roomId: conv.id, name } : { roomId: conv.id });
    });
    for (const [btn, input] of [[r.linkCopy, r.linkURL], [r.hookCopy, r.hookURL]]) {
      btn.addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(input.value);
          this.shell.toast('Copied to the clipboard.');
        } catch {
          input.select(); // no clipboard over plain http: Ctrl+C
        }
      });
    }
    byId('new-message').addEventListener('click', () => this.openPeople());
    let timer = 0;
    r.peopleQuery.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.searchPeople(), PEOPLE_DELAY_MS);
    });
    r.peopleForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.startConversation();
    });
    registerServiceWorker((msg) => {
      if (msg.type !== 'open' || !this.me) return;
      const key = msg.roomId ? roomKey(msg.roomId) : msg.withUserId ? dmKey(msg.withUserId) : null;
      if (key && this.convs.has(key)) this.open(key);
    });
  },

  // --- invite links: opening one ---

  // inviteOnStart: a page opened from an invite link shows "create an
  // account"; one already signed in has no use for it.
  inviteOnStart() {
    if (!this.inviteToken) return;
    if (this.token) {
      this.clearInvite();
      return;
    }
    this.setSignInMode(true);
    this.els.signinLede.textContent = 'You were invited to this parley server. Choose a username and a password.';
  },

  clearInvite() {
    this.inviteToken = null;
    if (/^#invite=/.test(window.location.hash)) history.replaceState(null, '', window.location.pathname + window.location.search);
  },

  // afterAuthenticated: the room an invite link put a new account in is
  // the one to show; push notifications follow this device's choice.
  afterAuthenticated(d) {
    if (this.inviteToken) this.clearInvite();
    this.syncPush();
    return d.invitedTo && this.convs.has(roomKey(d.invitedTo)) ? roomKey(d.invitedTo) : null;
  },

  // --- the room dialog's sections ---

  openReachSections(conv) {
    const r = this.reach;
    const owner = this.me.isAdmin || conv.role === 'owner';
    r.notify.value = conv.notify || 'mentions';
    r.notifyForm.hidden = !this.state.vapidPublicKey;
    r.linkForm.hidden = !owner || conv.group || this.me.guest;
    r.linkResult.hidden = true;
    r.hooksForm.hidden = !owner || conv.group || this.me.guest;
    r.hookResult.hidden = true;
    r.hookName.value = '';
    r.hooksList.replaceChildren();
    if (!r.hooksForm.hidden) this.send('hooks', { roomId: conv.id });
  },

  onInviteCreated(d) {
    const r = this.reach;
    r.linkURL.value = d.url;
    r.linkResult.hidden = false;
    r.linkURL.select();
  },

  onHooks(d) {
    const conv = this.convs.get(this.roomDialogKey);
    if (!conv || conv.id !== d.roomId) return;
    syncList(this.reach.hooksList, d.hooks, (k) => k.id,
      (k) => h('li', { class: 'hook-row' },
        h('span', { class: 'hook-name', text: k.name }),
        h('button', { type: 'button', class: 'btn btn-small', dataset: { hook: k.id }, text: 'Revoke', 'aria-label': `Revoke the webhook ${k.name}`,
          onclick: () => this.send('deleteHook', { id: k.id }) })),
      () => {});
  },

  onHookCreated(d) {
    const r = this.reach;
    r.hookURL.value = d.url;
    r.hookResult.hidden = false;
    r.hookName.value = '';
    r.hookURL.select();
    this.send('hooks', { roomId: d.roomId });
  },

  onHookDeleted(d) {
    if (this.mod.room.open) this.send('hooks', { roomId: d.roomId });
    this.shell.toast('The webhook was revoked.');
  },

  // --- the people directory and groups ---

  openPeople() {
    const r = this.reach;
    this.people = new Map();
    r.peopleQuery.value = '';
    r.peopleList.replaceChildren();
    showIn(r.peopleError, '');
    r.peopleEmpty.hidden = true;
    this.renderPeopleStart();
    this.shell.closeDrawer();
    r.peopleDialog.showModal();
    r.peopleQuery.focus();
    this.searchPeople();
  },

  searchPeople() {
    const q = this.reach.peopleQuery.value.trim();
    if (q && !/^[A-Za-z0-9_.-]{1,32}$/.test(q)) return;
    this.send('people', { query: q });
  },

  onPeople(d) {
    const r = this.reach;
    if (d.query !== r.peopleQuery.value.trim()) return; // an older answer
    r.peopleEmpty.hidden = d.users.length > 0;
    syncList(r.peopleList, d.users, (u) => u.userId,
      (u) => {
        const box = h('input', { type: 'checkbox', dataset: { person: u.username } });
        box.addEventListener('change', () => {
          if (box.checked) this.people.set(u.userId, u);
          else this.people.delete(u.userId);
          this.renderPeopleStart();
        });
        const tags = [];
        if (u.bot) tags.push(h('span', { class: 'member-tag', text: 'bot' }));
        if (u.guest) tags.push(h('span', { class: 'member-tag', text: 'guest' }));
        return h('li', {}, h('label', { class: 'check-row person-row' }, box, h('span', { class: 'person-name', text: u.username }), ...tags));
      },
      (li, u) => {
        li.querySelector('input').checked = this.people.has(u.userId);
      });
  },

  renderPeopleStart() {
    const n = this.people.size;
    const btn = this.reach.peopleStart;
    btn.disabled = n === 0;
    btn.textContent = n > 1 ? `Start a group of ${n + 1}` : 'Message';
  },

  startConversation() {
    const picked = [...this.people.values()];
    if (!picked.length) return;
    if (picked.length === 1) {
      this.reach.peopleDialog.close();
      this.openDM(picked[0].userId, picked[0].username);
      return;
    }
    if (!this.send('createGroup', { userIds: picked.map((u) => u.userId) })) {
      showIn(this.reach.peopleError, 'You are not connected; try again in a moment.');
      return;
    }
    this.groupPending = true;
  },

  // takeGroup: a joined answer is the group this page asked for.
  takeGroup(d) {
    if (!this.groupPending || !d.group || !d.created) return false;
    this.groupPending = false;
    if (this.reach.peopleDialog.open) this.reach.peopleDialog.close();
    return true;
  },

  // --- push ---

  // syncPush subscribes this device when notifications are on and the
  // server pushes (the bell), and ends its subscription when they are off.
  async syncPush() {
    const key = this.state.vapidPublicKey;
    if (!key || !pushSupported()) return;
    try {
      if (notificationsEnabled()) {
        const sub = await subscribePush(key);
        if (this.authed) this.send('pushSubscribe', sub);
      } else {
        const endpoint = await unsubscribePush();
        if (endpoint && this.authed) this.send('pushUnsubscribe', { endpoint });
      }
    } catch {
      // No push service here (a headless or locked-down browser): the
      // page's own notifications still work while it is open.
    }
  },

  onReachError(d) {
    const r = this.reach;
    if (['createInvite', 'createHook', 'deleteHook', 'hooks', 'setNotify'].includes(d.type)) {
      if (this.mod.room.open) showIn(this.mod.roomError, errorText(d));
      else this.shell.toast(errorText(d), 'error');
      return true;
    }
    if (d.type === 'people' || d.type === 'createGroup') {
      this.groupPending = false;
      showIn(r.peopleError, errorText(d));
      return true;
    }
    return ['pushSubscribe', 'pushUnsubscribe'].includes(d.type);
  },
};
