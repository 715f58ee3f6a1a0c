// Rendering of everything around the timeline from App's state: sidebar,
// header, member list, typing line, tab title, connection status.
// Methods of App (app.js).

import { notificationsEnabled } from './notify.js';
import { avatarClass, initials, plural, typingText } from './format.js';
import { canInvite } from './moderation.js';
import { renderDMs, renderMembers, renderRooms } from './sidebar.js';

export const renderMethods = {
  renderConnection() {
    const status = this.conn.status;
    if (this.me) this.shell.setConnection(status, this.authed, this.everAuthed);
    else if (this.token) this.shell.setBootText(status.state === 'waiting' ? 'Cannot reach the server; retrying…' : 'Signing you in…');
    // Under the sign-in and reset forms.
    let text = '';
    if (status.state === 'waiting') text = 'Cannot reach the server; retrying…';
    else if (status.state === 'connecting' && !this.greeted && (this.signInRequest || this.resetRequest)) text = 'Connecting…';
    this.els.signinConn.textContent = text;
    this.acct.resetConn.textContent = text;
  },

  renderAll() {
    this.renderSidebar();
    this.renderHeader();
    this.renderMembers();
    this.renderTyping();
    this.renderTitle();
    this.renderConnection();
    this.renderComposerState();
  },

  renderMe() {
    const { meAvatar, meName } = this.els;
    meAvatar.className = `avatar avatar-sm ${avatarClass(this.me.username)}`;
    meAvatar.textContent = initials(this.me.username);
    meName.textContent = this.me.username;
    this.renderNotifyToggle();
  },

  renderNotifyToggle() {
    const on = notificationsEnabled();
    const btn = this.els.notifyToggle;
    btn.setAttribute('aria-pressed', String(on));
    btn.title = on ? 'Notifications are on for direct messages and mentions' : 'Turn on notifications for direct messages and mentions';
    btn.classList.toggle('is-on', on);
  },

  renderSidebar() {
    if (!this.me) return;
    const { roomList, roomsEmpty, dmList, dmsEmpty, menuDot } = this.els;
    const rooms = this.rooms();
    const dms = this.dms();
    const open = (key) => this.open(key);
    renderRooms(roomList, rooms, this.current, open);
    renderDMs(dmList, dms, this.current, this.online, open);
    roomsEmpty.hidden = rooms.length > 0;
    dmsEmpty.hidden = dms.length > 0;
    menuDot.hidden = !this.sidebarOrder().some((c) => c.unread > 0 && c.key !== this.current);
  },

  renderHeader() {
    const conv = this.currentConv();
    const { title, counts, topic, lock, leave, welcome, welcomeTitle, composerWrap, timeline, membersCount, roomSettings, inviteOpen } = this.els;
    welcome.hidden = !!conv;
    timeline.hidden = !conv;
    composerWrap.hidden = !conv;
    leave.hidden = !conv?.isRoom;
    roomSettings.hidden = !conv?.isRoom;
    inviteOpen.hidden = !canInvite(conv, this.me);
    lock.hidden = !conv?.private;
    this.acct.resetPeer.hidden = !conv || conv.isRoom || !this.me?.isAdmin;
    this.shell.setMembersAvailable(!!conv?.isRoom);
    topic.hidden = !conv?.topic;
    topic.textContent = conv?.topic || '';
    topic.title = conv?.topic || '';
    if (!conv) {
      title.textContent = 'parley';
      counts.textContent = '';
      welcomeTitle.textContent = this.me ? `Welcome, ${this.me.username}!` : 'Welcome!';
      this.els.welcomeText.textContent = this.convs.size
        ? 'Pick a room or a conversation on the left, or join another room.'
        : 'Rooms are where conversations happen. Join one to get started.';
      return;
    }
    title.textContent = conv.title;
    timeline.setAttribute('aria-label', `Messages in ${conv.title}`);
    if (conv.isRoom) {
      const onlineCount = [...conv.members.values()].filter((m) => m.online).length;
      counts.textContent = conv.membersLoaded
        ? `${plural(conv.memberCount, 'member')} · ${onlineCount} online`
        : plural(conv.memberCount, 'member');
      membersCount.textContent = String(conv.memberCount);
    } else {
      counts.textContent = this.online.has(conv.id) ? 'Online' : 'Offline';
    }
  },

  renderMembers() {
    const conv = this.currentConv();
    const { membersOnline, membersOffline, onlineHeading, offlineHeading } = this.els;
    const members = conv?.isRoom ? [...conv.members.values()] : [];
    const resetPassword = this.me?.isAdmin ? (name) => this.openResetLinkDialog(name) : null;
    renderMembers(membersOnline, membersOffline, members, this.me || {}, {
      openDM: (id, name) => this.openDM(id, name),
      resetPassword,
      powers: (m) => this.memberPowers(m),
      openMenu: (button, m) => this.openMemberMenu(button, m),
    });
    const on = members.filter((m) => m.online).length;
    onlineHeading.textContent = `Online — ${on}`;
    offlineHeading.textContent = `Offline — ${members.length - on}`;
    offlineHeading.hidden = members.length - on === 0;
  },

  renderTyping() {
    const conv = this.currentConv();
    const names = conv ? [...conv.typing.values()].map((t) => t.username) : [];
    this.els.typing.textContent = typingText(names);
  },

  renderTitle() {
    let total = 0;
    for (const conv of this.convs.values()) total += conv.unread;
    const conv = this.currentConv();
    const name = conv ? `${conv.title} · parley` : 'parley';
    document.title = total ? `(${total}) ${name}` : name;
  },
};
