// Rooms beyond joining: topics, private rooms and invitations, roles, and
// moderation (mute, kick, ban, and for admins server-wide bans), with the
// events every member sees as lines in the timeline. Methods of App
// (app.js); the rules are in moderation.js.

import { byId } from './dom.js';
import { canInvite, canModerate, memberPowers, muteUntilText, mutedText, removedText } from './moderation.js';
import { isMuted, syncMyMute } from './state.js';

// The server announces some events twice to one connection (to the room,
// and to the actor or target directly); the same event within DUP_MS is
// shown once.
const DUP_MS = 3000;
// Longest timer a browser keeps (about 24.8 days, in ms).
const MAX_TIMER_MS = 2 ** 31 - 1;
const USERNAME = /^[A-Za-z0-9_.-]{1,32}$/;

const showIn = (el, text) => {
  el.textContent = text;
  el.hidden = !text;
};

export const moderationMethods = {
  initModeration() {
    this.recentEvents = new Map(); // signature -> time seen
    this.removedWhy = new Map(); // roomId -> why the user was removed, until "left" arrives
    this.modPending = null; // { type, event, userId, roomId, global }: the moderation dialog's unanswered frame
    this.roomPending = null; // { type, username, roomId }: the room dialog's unanswered frame
    this.muteTimers = new Map(); // `${roomId}/${userId}` -> timer ending a mute
    const m = {
      dialog: byId('mod-dialog'), form: byId('mod-form'), title: byId('mod-title'), text: byId('mod-text'),
      duration: byId('mod-duration'), reason: byId('mod-reason'), error: byId('mod-error'), submit: byId('mod-submit'),
      room: byId('room-dialog'), roomTitle: byId('room-dialog-title'), roomKind: byId('room-dialog-kind'),
      topicForm: byId('topic-form'), topic: byId('room-topic'), topicSave: byId('room-topic-save'), topicHint: byId('room-topic-hint'),
      inviteForm: byId('invite-form'), inviteName: byId('invite-name'), unbanForm: byId('unban-form'), unbanName: byId('unban-name'),
      unbanGlobal: byId('unban-global'), unbanGlobalRow: byId('unban-global-row'),
      roomStatus: byId('room-dialog-status'), roomError: byId('room-dialog-error'),
    };
    this.mod = m;
    this.els.roomSettings.addEventListener('click', () => this.openRoomDialog('topic'));
    this.els.inviteOpen.addEventListener('click', () => this.openRoomDialog('invite'));
    m.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitModeration();
    });
    m.dialog.addEventListener('close', () => {
      this.modPending = null;
      this.modAction = null;
    });
    m.room.addEventListener('close', () => {
      this.roomPending = null;
    });
    byId('room-leave').addEventListener('click', () => {
      m.room.close();
      this.leaveCurrent();
    });
    m.topicForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.roomRequest('setTopic', { topic: m.topic.value.trim() });
    });
    m.inviteForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.roomRequest('invite', { username: m.inviteName.value.trim().replace(/^@/, '') });
    });
    m.unbanForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const username = m.unbanName.value.trim().replace(/^@/, '');
      this.roomRequest('unban', m.unbanGlobal.checked ? { username, global: true } : { username });
    });
  },

  // isMuted: the user cannot send in conv. A mute whose end is unknown
  // (conv.mute.until null) does not turn the composer off: it may be over
  // already, and the server's refusal then says until when.
  isMuted(conv) {
    return isMuted(conv, Date.now());
  },

  // muteNotice says why the user cannot send, or '' when they can.
  muteNotice(conv) {
    if (!conv?.isRoom || !conv.mute) return '';
    if (conv.mute.until === null) return `You are muted in ${conv.title}; messages are refused until the mute ends.`;
    return this.isMuted(conv) ? mutedText(conv, conv.mute) : '';
  },

  // syncMyMute takes the user's muted state from the member list: the
  // server sends mutedUntil for a timed mute and leaves it out for a mute
  // that lasts until a moderator lifts it ('' here).
  syncMyMute(conv) {
    syncMyMute(this.state, conv);
    if (conv.mute) this.scheduleUnmute(conv, this.me.userId, conv.mute.until);
  },

  // learnMute: the server refused a frame because the user is muted; its
  // message ends "until TIME" or "until a moderator unmutes you".
  learnMute(conv, message = '') {
    if (!conv?.isRoom || this.isMuted(conv)) return;
    const at = /until (\d{4}-\d\d-\d\dT[\d:.]+Z)/.exec(message);
    const until = at ? at[1] : /unmutes you/.test(message) ? '' : null;
    conv.mute = { ...(conv.mute || { reason: '', by: '' }), until };
    this.scheduleUnmute(conv, this.me.userId, until);
    if (conv.key === this.current) this.renderComposerState();
  },

  // --- the member menu ---

  memberPowers(m) {
    return memberPowers(this.currentConv(), this.me, m);
  },

  openMemberMenu(button, member) {
    const conv = this.currentConv();
    const p = memberPowers(conv, this.me, member);
    if (!p.any) return;
    const items = [{ heading: member.username }];
    if (p.setRole) {
      items.push(member.role === 'moderator'
        ? { label: 'Remove as moderator', dataset: { action: 'demote' }, onSelect: () => this.modSend('setRole', conv, member, { role: 'member' }) }
        : { label: 'Make moderator', dataset: { action: 'promote' }, onSelect: () => this.modSend('setRole', conv, member, { role: 'moderator' }) });
    }
    items.push(member.muted
      ? { label: 'Unmute', dataset: { action: 'unmute' }, onSelect: () => this.modSend('unmute', conv, member, {}) }
      : { label: 'Mute…', dataset: { action: 'mute' }, onSelect: () => this.openModDialog('mute', conv, member) });
    items.push({ label: 'Remove from room…', danger: true, dataset: { action: 'kick' }, onSelect: () => this.openModDialog('kick', conv, member) });
    items.push({ label: 'Ban from room…', danger: true, dataset: { action: 'ban' }, onSelect: () => this.openModDialog('ban', conv, member) });
    if (p.globalBan) {
      items.push({ separator: true });
      items.push({ label: 'Ban from the server…', danger: true, dataset: { action: 'global-ban' }, onSelect: () => this.openModDialog('globalBan', conv, member) });
    }
    this.menu.open(button, `Moderate ${member.username}`, items);
  },

  // modSend sends a moderation frame that needs no dialog.
  modSend(type, conv, member, extra) {
    if (!this.authed || !this.send(type, { roomId: conv.id, userId: member.userId, ...extra })) {
      this.shell.toast('You are not connected; try again in a moment.', 'error');
    }
  },

  // --- the moderation dialog: mute, kick, ban ---

  openModDialog(kind, conv, member) {
    const m = this.mod;
    const room = conv.title;
    const texts = {
      mute: [`Mute ${member.username} in ${room}`, `${member.username} stays in the room and can read it, but cannot send or edit messages until the mute ends.`, 'Mute'],
      kick: [`Remove ${member.username} from ${room}`, conv.private
        ? `${member.username} leaves the room and can come back only if invited again.`
        : `${member.username} leaves the room. It is public, so they can join again.`, 'Remove'],
      ban: [`Ban ${member.username} from ${room}`, `${member.username} leaves the room and cannot join again until the ban is lifted (in the room's settings).`, 'Ban'],
      globalBan: [`Ban ${member.username} from the server`, `${member.username} is signed out everywhere and leaves every room, and cannot sign in again until an admin lifts the ban (in any room's settings).`, 'Ban from server'],
    }[kind];
    this.modAction = { kind, roomId: conv.id, userId: member.userId, username: member.username };
    this.modPending = null;
    m.form.reset();
    m.title.textContent = texts[0];
    m.text.textContent = texts[1];
    m.submit.textContent = texts[2];
    m.submit.disabled = false;
    m.submit.classList.toggle('btn-danger', kind !== 'mute');
    m.submit.classList.toggle('btn-primary', kind === 'mute');
    m.duration.hidden = kind !== 'mute';
    showIn(m.error, '');
    this.shell.closeMembers();
    m.dialog.showModal();
    (kind === 'mute' ? m.duration.querySelector('input:checked') : m.reason).focus();
  },

  submitModeration() {
    const a = this.modAction;
    const m = this.mod;
    if (!a || this.modPending) return;
    const reason = m.reason.value.trim();
    let type = a.kind;
    const data = { userId: a.userId };
    if (a.kind === 'globalBan') {
      type = 'ban';
      data.global = true;
    } else {
      data.roomId = a.roomId;
    }
    if (reason) data.reason = reason;
    if (a.kind === 'mute') data.minutes = Number(m.form.elements.minutes.value);
    if (!this.authed || !this.send(type, data)) return showIn(m.error, 'You are not connected; try again in a moment.');
    // The event that says it was done: muted, kicked or banned.
    const event = { mute: 'muted', kick: 'kicked', ban: 'banned' }[type];
    this.modPending = { type, event, userId: a.userId, roomId: a.kind === 'globalBan' ? '' : a.roomId, global: a.kind === 'globalBan' };
    m.submit.disabled = true;
    showIn(m.error, '');
  },

  // modAnswered closes the dialog when the event it waited for arrives.
  modAnswered(type, d) {
    const p = this.modPending;
    if (!p || p.event !== type || p.userId !== d.userId || (!p.global && p.roomId !== d.roomId)) return;
    this.modPending = null;
    this.mod.dialog.close();
    this.shell.toast(type === 'muted' ? `${d.username} is muted ${d.until ? muteUntilText(d.until) : 'until you unmute them'}.`
      : type === 'kicked' ? `${d.username} was removed from #${d.roomId}.`
        : d.global ? `${d.username} is banned from the server.` : `${d.username} is banned from #${d.roomId}.`);
  },

  // --- the room dialog: topic, invitations, lifting bans ---

  openRoomDialog(focus) {
    const conv = this.currentConv();
    if (!conv?.isRoom) return;
    const m = this.mod;
    const mod = canModerate(conv, this.me);
    this.roomPending = null;
    this.roomDialogKey = conv.key;
    m.roomTitle.textContent = conv.title;
    m.roomKind.textContent = conv.private
      ? 'Private room: only people who are added can join it, and it is not listed for others.'
      : 'Public room: anyone on this server can find and join it.';
    m.topic.value = conv.topic;
    m.topic.readOnly = !mod;
    m.topicSave.hidden = !mod;
    m.topicHint.textContent = mod ? 'One line, up to 250 characters; everyone in the room sees it under its name.' : 'Only the owner and moderators can change the topic.';
    m.inviteForm.hidden = !canInvite(conv, this.me);
    m.inviteName.value = '';
    m.unbanForm.hidden = !mod;
    m.unbanName.value = '';
    m.unbanGlobalRow.hidden = !this.me.isAdmin;
    m.unbanGlobal.checked = false;
    byId('room-leave-hint').textContent = conv.private
      ? 'It is private: to come back, someone has to add you again.'
      : 'You can join it again at any time.';
    showIn(m.roomStatus, '');
    showIn(m.roomError, '');
    this.openReachSections(conv);
    this.shell.closeMembers();
    this.shell.closeDrawer();
    m.room.showModal();
    const first = focus === 'invite' && !m.inviteForm.hidden ? m.inviteName : mod ? m.topic : m.inviteForm.hidden ? m.room.querySelector('[data-close]') : m.inviteName;
    first.focus();
  },

  roomRequest(type, extra) {
    const m = this.mod;
    const conv = this.convs.get(this.roomDialogKey);
    if (!conv) return;
    showIn(m.roomStatus, '');
    if ((type === 'invite' || type === 'unban') && !USERNAME.test(extra.username)) {
      showIn(m.roomError, 'Enter a username: letters, digits, _ - or ., up to 32 characters.');
      (type === 'invite' ? m.inviteName : m.unbanName).focus();
      return;
    }
    if (type === 'setTopic' && extra.topic === conv.topic) {
      showIn(m.roomError, '');
      showIn(m.roomStatus, 'The topic is unchanged.');
      return;
    }
    const data = extra.global ? extra : { roomId: conv.id, ...extra };
    if (!this.authed || !this.send(type, data)) {
      showIn(m.roomError, 'You are not connected; try again in a moment.');
      return;
    }
    showIn(m.roomError, '');
    // A server-wide unban's event names no room.
    this.roomPending = { type, roomId: extra.global ? '' : conv.id, username: (extra.username || '').toLowerCase() };
  },

  // roomAnswered shows in the room dialog that its request went through.
  roomAnswered(type, roomId, username) {
    const p = this.roomPending;
    const m = this.mod;
    if (!p || p.type !== type || p.roomId !== roomId || (p.username && p.username !== username.toLowerCase())) return;
    this.roomPending = null;
    if (type === 'setTopic') showIn(m.roomStatus, 'Topic saved.');
    if (type === 'invite') {
      showIn(m.roomStatus, `${username} was added to #${roomId}.`);
      m.inviteName.value = '';
    }
    if (type === 'unban') {
      showIn(m.roomStatus, roomId ? `${username} may join #${roomId} again.` : `${username} may sign in again.`);
      m.unbanName.value = '';
    }
  },

  // --- events ---

  // isRepeat: the same event was just handled (see DUP_MS).
  isRepeat(type, d) {
    const now = Date.now();
    for (const [k, t] of this.recentEvents) if (now - t > DUP_MS) this.recentEvents.delete(k);
    const sig = `${type}|${JSON.stringify(d)}`;
    if (this.recentEvents.has(sig)) return true;
    this.recentEvents.set(sig, now);
    return false;
  },

  onModerationEvent(type, d) {
    if (!this.me || this.isRepeat(type, d)) return;
    this.modAnswered(type, d);
    if (type === 'unbanned') this.roomAnswered('unban', d.roomId || '', d.username);
    if (type === 'roomUpdated' && d.by?.userId === this.me.userId) this.roomAnswered('setTopic', d.roomId, '');
    const global = type === 'banned' && d.global;
    const touched = global ? [...this.convs.values()].filter((c) => c.isRoom && c.members.has(d.userId)) : [];
    for (const c of touched) this.clearTyping(c, d.userId);
    const changed = this.dispatch(type, d);
    if (global) {
      for (const c of touched) this.renderRoomChange(c);
      return;
    }
    const conv = changed.key && this.convs.get(changed.key);
    const me = d.userId === this.me.userId;
    if (!conv) {
      if (type === 'unbanned' && me) this.shell.toast(`${d.by.username} lifted your ban from #${d.roomId}; you may join it again.`);
      return;
    }
    if ((type === 'kicked' || type === 'banned')) {
      this.clearTyping(conv, d.userId);
      if (me) this.removedWhy.set(d.roomId, removedText(type, d, conv.private));
    }
    if (type === 'muted') {
      if (me) this.composer.stopTyping();
      this.scheduleUnmute(conv, d.userId, d.until);
    }
    this.renderRoomChange(conv);
  },

  renderRoomChange(conv) {
    if (conv.key !== this.current) return this.renderSidebar();
    this.timeline.update();
    this.renderAll();
  },

  // scheduleUnmute ends a timed mute on screen when its time is up.
  scheduleUnmute(conv, userId, until) {
    const key = `${conv.id}/${userId}`;
    clearTimeout(this.muteTimers.get(key));
    this.muteTimers.delete(key);
    if (!until) return;
    const wait = new Date(until) - Date.now() + 500;
    if (wait > MAX_TIMER_MS) return;
    this.muteTimers.set(key, setTimeout(() => {
      this.muteTimers.delete(key);
      const member = conv.members.get(userId);
      if (member?.mutedUntil === until) Object.assign(member, { muted: false, mutedUntil: '' });
      if (userId === this.me?.userId && conv.mute?.until === until) conv.mute = null;
      if (conv.key === this.current) this.renderAll();
    }, Math.max(0, wait)));
  },

  // onInvited: someone added the user to a room.
  onInvited(d) {
    const r = d.room;
    const conv = this.convs.get(this.dispatch('invited', d).key);
    this.shell.toast(`${d.by.username} added you to ${r.private ? 'the private room ' : ''}#${r.roomId}.`);
    // Nothing open (the welcome screen): show the room at once.
    if (!this.current) return this.open(conv.key, { focus: false });
    if (conv.hasMessages && this.authed) this.background(() => this.fetchNewest(conv));
    this.renderAll();
  },

  // removedFrom: why the user left a room, when a moderator did it.
  removedFrom(roomId) {
    const why = this.removedWhy.get(roomId);
    this.removedWhy.delete(roomId);
    return why || '';
  },

  // --- errors and lost requests ---

  onModerationError(d) {
    const m = this.mod;
    const modTypes = ['kick', 'ban', 'mute'];
    if (modTypes.includes(d.type) && this.modPending && m.dialog.open) {
      this.modPending = null;
      m.submit.disabled = false;
      showIn(m.error, d.message || d.code);
      return true;
    }
    if (['setTopic', 'invite', 'unban'].includes(d.type) && this.roomPending && m.room.open) {
      this.roomPending = null;
      showIn(m.roomStatus, '');
      showIn(m.roomError, d.message || d.code);
      return true;
    }
    if ([...modTypes, 'unmute', 'unban', 'setRole', 'setTopic', 'invite'].includes(d.type)) {
      this.shell.toast(d.message || d.code, 'error');
      return true;
    }
    return false;
  },

  moderationRequestsLost() {
    if (this.modPending) {
      this.modPending = null;
      this.mod.submit.disabled = false;
      showIn(this.mod.error, 'The connection was lost before the server answered; check the room, then try again.');
    }
    if (this.roomPending) {
      this.roomPending = null;
      showIn(this.mod.roomError, 'The connection was lost before the server answered; try again.');
    }
  },
};
