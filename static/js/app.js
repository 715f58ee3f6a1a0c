// App is the client's controller: server frames (PROTOCOL.md) go through
// state.js (apply), which holds the signed-in user's conversations, and
// then App renders what changed and does what only a page can (focus,
// dialogs, timers, notifications, the socket, storage); user actions
// become frames. Its methods are split by concern:
// app-session.js (signing in and out), app-account.js (passwords and reset
// links), app-rooms.js (rooms and presence), app-reads.js (read state and
// unread counts), app-messages.js (edits, deletes, reactions, files),
// app-threads.js (replies, threads, jumps to a message),
// app-moderation.js (roles, moderation, room settings, invitations),
// app-search.js (search), app-render.js (the chrome around the
// timeline). The timeline itself is timeline.js.

import { accountMethods } from './app-account.js';
import { messageMethods } from './app-messages.js';
import { moderationMethods } from './app-moderation.js';
import { reachMethods } from './app-reach.js';
import { readMethods } from './app-reads.js';
import { roomMethods } from './app-rooms.js';
import { renderMethods } from './app-render.js';
import { searchMethods } from './app-search.js';
import { threadMethods } from './app-threads.js';
import { sessionMethods } from './app-session.js';
import { MentionAutocomplete } from './autocomplete.js';
import { CLOSE_NORMAL, Connection, socketURL } from './connection.js';
import { MAX_ID, dmKey, roomKey } from './conversation.js';
import { Composer } from './composer.js';
import { byId } from './dom.js';
import { snippet } from './format.js';
import { Menu } from './menu.js';
import { notificationsSupported, notify, toggleNotifications } from './notify.js';
import { EmojiPicker } from './reactions.js';
import { Shell } from './shell.js';
import * as storage from './storage.js';
import {
  apply, currentConv, dms, ensureDM, ensureRoom, initialState, mentionsMe, outboxItems, rooms, sidebarOrder,
} from './state.js';
import { ThreadPanel } from './thread.js';
import { Timeline } from './timeline.js';
import { Attachments } from './uploads.js';

// A typing indicator disappears TYPING_TTL_MS after its last refresh; a
// typist refreshes it every 3 s.
const TYPING_TTL_MS = 6000;
// Catching up after signing in costs a request per conversation. They go
// out SYNC_BURST at once, then SYNC_PER_SECOND, well inside the server's
// per-connection allowance (limits.frames_per_second, 20 by default), so
// a member of many rooms is not told to slow down.
const SYNC_BURST = 30;
const SYNC_PER_SECOND = 8;
// OLDER_PAGE messages are fetched at a time while scrolling back (the
// server's most, PROTOCOL.md "history").
const OLDER_PAGE = 100;

// announcement is how a new message is read out: who, and what.
function announcement(m) {
  const files = m.files?.length ? ` (${m.files.length === 1 ? `file ${m.files[0].name}` : `${m.files.length} files`})` : '';
  return `${m.senderName}: ${snippet(m.content || '', 300)}${files}`;
}

export class App {
  constructor() {
    this.shell = new Shell();
    this.conn = new Connection(socketURL(), {
      onOpen: () => this.onOpen(),
      onFrame: (type, data) => this.onFrame(type, data),
      onClose: (ev) => this.onClose(ev),
      onStatus: () => this.renderConnection(),
    });
    // The user's conversations, people and the open conversation (state.js);
    // me, convs, online, names, current and thread below read and write it.
    this.state = initialState();
    this.token = storage.loadToken();
    this.prefs = null;
    this.authed = false; // signed in on the current socket
    this.everAuthed = false; // signed in at some point since the page loaded
    this.authing = null; // 'token' or 'password' while an auth is unanswered
    this.signInRequest = null; // { username, password } waiting for a socket
    this.greeted = false; // "connected" arrived on the current socket
    this.historyQueue = []; // { key, mode: 'newest'|'older'|'around' } per unanswered history, in order
    this.joinQueue = []; // { roomId, open } per unanswered join, in order
    this.readTimers = new Map(); // conversation key -> timer of a throttled read
    this.seq = 0;
    this.backlog = []; // background requests waiting for their turn
    this.tokens = SYNC_BURST;
    this.tokensAt = Date.now();
    this.pumpTimer = 0;
    this.signingOut = false; // this tab asked to sign out
    this.followTimer = 0; // signed out by a password change: waiting for another tab's token
    this.resumeOnClose = false; // a newer token is waiting for this socket to close
    this.creating = false; // the sign-in form creates an account

    const el = (id) => byId(id);
    this.els = {
      signinForm: el('signin-form'), username: el('signin-username'), password: el('signin-password'),
      signinError: el('signin-error'), signinSubmit: el('signin-submit'), signinConn: el('signin-conn'),
      signinConfirm: el('signin-confirm'), signinConfirmField: el('signin-confirm-field'), signinSwitch: el('signin-switch'),
      signinSwitchText: el('signin-switch-text'), signinTitle: el('signin-title'), signinLede: el('signin-lede'),
      signinPasswordHint: el('signin-password-hint'),
      roomList: el('room-list'), roomsEmpty: el('rooms-empty'), dmList: el('dm-list'), dmsEmpty: el('dms-empty'),
      meAvatar: el('me-avatar'), meName: el('me-name'), notifyToggle: el('notify-toggle'),
      title: el('conv-title'), subtitle: el('conv-subtitle'), membersCount: el('members-count'),
      leave: el('leave-room'), timeline: el('timeline'), welcome: el('welcome'), welcomeTitle: el('welcome-title'), welcomeText: el('welcome-text'),
      composerWrap: el('composer-wrap'), typing: el('typing'), menuDot: el('menu-dot'),
      membersOnline: el('members-online'), membersOffline: el('members-offline'),
      onlineHeading: el('online-heading'), offlineHeading: el('offline-heading'),
      joinForm: el('join-form'), joinName: el('join-name'), joinError: el('join-error'),
      allRooms: el('all-rooms'), allRoomsEmpty: el('all-rooms-empty'),
      joinPrivate: el('join-private'), joinTopic: el('join-topic'), joinOptions: el('join-options'),
      counts: el('conv-counts'), topic: el('conv-topic'), lock: el('conv-lock'), roomSettings: el('room-settings'),
      inviteOpen: el('invite-open'), composerNotice: el('composer-notice'), composerInput: el('composer-input'),
      replyBar: el('reply-bar'), replyLabel: el('reply-bar-label'), replyQuote: el('reply-bar-quote'),
      thread: el('thread'), threadInput: el('thread-input'),
    };

    this.picker = new EmojiPicker(el('emoji-picker'));
    this.menu = new Menu(el('popup-menu'));
    this.timeline = new Timeline({
      scroller: el('timeline'), list: el('messages'), loadOlder: el('load-older'), pill: el('new-pill'),
      jump: el('jump-latest'), start: el('timeline-start'), startTitle: el('timeline-start-title'),
      startText: el('timeline-start-text'), startIcon: el('timeline-start-icon'), announcer: el('announcer'),
    }, {
      onLoadOlder: () => this.loadOlder(),
      onReachBottom: () => this.markRead(),
      onJumpLatest: () => this.jumpToLatest(this.currentConv()),
      onEscape: () => this.composer.focus(),
      context: (conv) => this.messageContext(conv, 'timeline'),
      actions: (id) => this.messageActions(this.currentConv(), id, 'timeline'),
    });
    this.threadPanel = new ThreadPanel({
      panel: el('thread'), list: el('thread-messages'), status: el('thread-status'), where: el('thread-where'),
      scroller: el('thread-scroll'),
    }, (id) => this.messageActions(this.currentConv(), id, 'thread'));
    this.attachments = new Attachments(el('attachments'), {
      token: () => this.token,
      onChange: () => {},
    });
    this.composer = new Composer(el('composer'), el('composer-input'), {
      onSend: (text) => this.sendMessage(text),
      onTyping: (on) => this.sendTyping(on),
      onKeyDown: (e) => this.composerKey(e),
      canSendEmpty: () => this.attachments.items().length > 0,
      onFiles: (files) => this.attachFiles(files),
      onDrafts: (drafts) => {
        if (this.prefs) this.prefs.drafts = Object.fromEntries(drafts);
      },
    });
    this.threadComposer = new Composer(el('thread-composer'), el('thread-input'), {
      onSend: (text) => this.sendThreadReply(text),
      onTyping: () => {},
    });
    this.mentionPicker = new MentionAutocomplete(el('composer-input'), el('mention-list'), () => this.mentionCandidates());
    this.wire();
    this.initAccount();
    this.initMessages();
    this.initModeration();
    this.initSearch();
    this.initReach();
  }

  start() {
    if (!this.resetToken) this.inviteOnStart();
    if (this.resetToken) this.showReset();
    else if (this.token) this.shell.showBoot();
    else this.showSignIn();
    this.conn.start();
  }

  wire() {
    const { els } = this;
    els.signinForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.signIn();
    });
    els.signinSwitch.addEventListener('click', () => this.setSignInMode(!this.creating, true));
    byId('signout').addEventListener('click', () => this.signOut());
    byId('browse-rooms').addEventListener('click', () => this.openRoomsDialog());
    byId('welcome-browse').addEventListener('click', () => this.openRoomsDialog());
    byId('reconnect-now').addEventListener('click', () => this.conn.reconnectNow());
    byId('skip-link').addEventListener('click', (e) => {
      e.preventDefault();
      if (this.currentConv() && !this.els.composerInput.disabled) this.composer.focus();
      else (this.currentConv() ? this.els.timeline : byId('welcome-browse')).focus();
    });
    els.leave.addEventListener('click', () => this.leaveCurrent());
    els.joinForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.joinByName(els.joinName.value.trim().replace(/^#/, ''), {
        private: els.joinPrivate.checked, topic: els.joinTopic.value.trim(),
      });
    });
    els.notifyToggle.hidden = !notificationsSupported();
    els.notifyToggle.addEventListener('click', async () => {
      const res = await toggleNotifications();
      if (res.why) this.shell.toast(res.why, 'error');
      this.renderNotifyToggle();
      this.syncPush();
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.markRead();
    });
    window.addEventListener('focus', () => this.markRead());
    window.addEventListener('storage', (e) => {
      if (e.key === storage.TOKEN_KEY) this.onStoredToken(e.newValue);
    });
    // Alt+Up / Alt+Down move between conversations, as in Slack.
    document.addEventListener('keydown', (e) => {
      if (!e.altKey || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') || !this.me) return;
      const keys = this.sidebarOrder().map((c) => c.key);
      if (!keys.length) return;
      e.preventDefault();
      const i = keys.indexOf(this.current);
      const next = e.key === 'ArrowUp' ? (i <= 0 ? keys.length - 1 : i - 1) : (i + 1) % keys.length;
      this.open(keys[next]);
    });
  }

  onOpen() {
    this.greeted = false;
  }

  onClose(ev) {
    this.authed = false;
    this.greeted = false;
    this.authing = null;
    this.historyQueue = [];
    this.joinQueue = [];
    this.backlog = [];
    this.composer.forgetTyping();
    this.accountRequestsLost();
    this.moderationRequestsLost();
    this.messageRequestsLost();
    if (this.resumeOnClose) {
      // Signed out only because another tab changed the password: sign
      // in with its token at once rather than after the usual backoff
      // (after the Connection has scheduled its retry).
      this.resumeOnClose = false;
      setTimeout(() => this.conn.reconnectNow(), 0);
    }
    for (const conv of this.convs.values()) {
      for (const t of conv.typing.values()) clearTimeout(t.timer);
    }
    // What was sent and not acknowledged waits in the outbox; the newest
    // page after reconnecting says what the server has (by clientMsgId).
    this.dispatch('local/disconnected');
    this.saveOutbox();
    if (ev.code === CLOSE_NORMAL && !this.token) return; // signed out
    if (this.me) this.renderAll();
    this.timeline.update();
  }

  send(type, data) {
    return this.conn.send(type, data);
  }

  // dispatch applies a frame (or a local action) to the state and
  // returns what it changed (state.js).
  dispatch(type, data = {}, extra = {}) {
    apply(this.state, { type, data, now: new Date().toISOString(), ...extra });
    return this.state.changed;
  }

  get me() { return this.state.me; }
  set me(v) { this.state.me = v; }
  get convs() { return this.state.convs; }
  set convs(v) { this.state.convs = v; }
  get online() { return this.state.online; }
  set online(v) { this.state.online = v; }
  get names() { return this.state.names; }
  set names(v) { this.state.names = v; }
  get current() { return this.state.current; }
  set current(v) { this.state.current = v; }
  get thread() { return this.state.thread; }
  set thread(v) { this.state.thread = v; }

  onFrame(type, d) {
    const handler = {
      connected: this.onConnected,
      authenticated: this.onAuthenticated,
      userOnline: this.onUserOnline,
      userOffline: this.onUserOffline,
      joined: this.onJoined,
      left: this.onLeft,
      userJoined: this.onUserJoined,
      userLeft: this.onUserLeft,
      message: this.onRoomMessage,
      typing: this.onTyping,
      privateMessage: this.onDirectMessage,
      privateMessageSent: this.onDirectMessage,
      history: this.onHistory,
      rooms: this.onRooms,
      loggedOut: this.onLoggedOut,
      passwordChanged: this.onPasswordChanged,
      resetLink: this.onResetLink,
      messageEdited: this.onMessageEdited,
      messageDeleted: this.onMessageDeleted,
      reaction: this.onReaction,
      thread: this.onThread,
      searchResults: this.onSearchResults,
      readUpdated: this.onReadUpdated,
      kicked: (d) => this.onModerationEvent('kicked', d),
      banned: (d) => this.onModerationEvent('banned', d),
      unbanned: (d) => this.onModerationEvent('unbanned', d),
      muted: (d) => this.onModerationEvent('muted', d),
      unmuted: (d) => this.onModerationEvent('unmuted', d),
      roleChanged: (d) => this.onModerationEvent('roleChanged', d),
      roomUpdated: (d) => this.onModerationEvent('roomUpdated', d),
      invited: this.onInvited,
      people: this.onPeople,
      inviteCreated: this.onInviteCreated,
      hooks: this.onHooks,
      hookCreated: this.onHookCreated,
      hookDeleted: this.onHookDeleted,
      notifyUpdated: (d) => this.dispatch('notifyUpdated', d),
      error: this.onError,
    }[type];
    if (handler) handler.call(this, d);
  }

  onAuthenticated(d) {
    const how = this.authing;
    const sameUser = this.me?.userId === d.userId;
    if (!sameUser) this.resetUser();
    const firstAuth = !this.prefs;
    this.prefs ??= new storage.UserPrefs(d.userId);
    this.token = d.token;
    storage.saveToken(d.token);
    this.authed = true;
    this.authing = null;
    this.signInRequest = null;
    this.els.password.value = '';
    this.els.signinConfirm.value = '';
    this.conn.healthy();
    const reconnect = this.everAuthed;
    this.everAuthed = true;

    this.dispatch('authenticated', d);
    this.attachments.maxBytes = this.state.maxUploadBytes;

    if (firstAuth) this.restoreOutbox();
    this.renderMe();
    this.shell.showApp();
    if (how === 'reset') this.resetDone();
    const landed = this.afterAuthenticated(d);
    let key = landed || this.current;
    if (!key || !this.convs.has(key)) {
      const saved = this.prefs.current;
      key = saved && this.convs.has(saved) ? saved : this.sidebarOrder()[0]?.key || null;
    }
    this.syncAll(key);
    this.open(key, { focus: !reconnect });
    this.resumeThread();
  }

  // syncAll fetches what this page may have missed: the room about to be
  // shown is joined again (history and members); every other room with
  // messages and every direct conversation that has, or will show,
  // messages gets its newest page, paced in the background.
  syncAll(shown) {
    for (const conv of this.convs.values()) {
      if (conv.key === shown) {
        if (conv.isRoom) this.sendJoin(conv.id, false);
        else this.fetchNewest(conv);
      } else if (conv.loaded || conv.pending.length || (conv.isRoom ? conv.hasMessages : conv.unread > 0)) {
        conv.syncing = true;
        this.background(() => this.fetchNewest(conv));
      }
    }
  }

  // background queues a request that can wait its turn (see SYNC_BURST).
  background(request) {
    this.backlog.push(request);
    this.pump();
  }

  pump() {
    clearTimeout(this.pumpTimer);
    const now = Date.now();
    this.tokens = Math.min(SYNC_BURST, this.tokens + ((now - this.tokensAt) / 1000) * SYNC_PER_SECOND);
    this.tokensAt = now;
    while (this.backlog.length && this.tokens >= 1 && this.authed) {
      this.tokens--;
      this.backlog.shift()();
    }
    if (this.backlog.length && this.authed) this.pumpTimer = setTimeout(() => this.pump(), 1000 / SYNC_PER_SECOND);
  }

  // retryLater repeats a refused background request once the server's
  // retryAfter (seconds) has passed.
  retryLater(seconds, request) {
    setTimeout(() => this.authed && this.background(request), Math.max(0.1, seconds || 1) * 1000);
  }

  resetUser() {
    for (const conv of this.convs.values()) {
      for (const t of conv.typing.values()) clearTimeout(t.timer);
    }
    for (const t of this.readTimers.values()) clearTimeout(t);
    this.readTimers = new Map();
    this.convs = new Map();
    this.online = new Map();
    this.names = new Map();
    this.current = null;
    this.prefs?.forget();
    this.prefs = null;
    this.me = null;
    this.composer.reset();
    this.threadComposer.reset();
    this.attachments.clear();
    this.resetMessageState();
    this.timeline.clear();
  }

  ensureRoom(roomId) {
    return ensureRoom(this.state, roomId);
  }

  ensureDM(userId, username) {
    return ensureDM(this.state, userId, username);
  }

  rooms() {
    return rooms(this.state);
  }

  dms() {
    return dms(this.state);
  }

  sidebarOrder() {
    return sidebarOrder(this.state);
  }

  currentConv() {
    return currentConv(this.state);
  }

  // open shows a conversation (null: the welcome screen).
  open(key, { focus = true } = {}) {
    this.composer.stopTyping(); // reported for the room being left
    const conv = key ? this.convs.get(key) : null;
    const previous = this.currentConv();
    if (previous && previous !== conv) {
      previous.unreadMarker = null;
      this.leaveConversation(previous);
    }
    this.current = conv ? conv.key : null;
    if (this.prefs) this.prefs.current = this.current;
    this.composer.switchTo(this.current, conv ? `Message ${conv.title}` : '');
    this.attachments.switchTo(this.current);
    this.shell.closeDrawer();
    if (!conv) {
      this.timeline.clear();
      this.renderAll();
      return;
    }
    if (conv !== previous) {
      // The "New" line goes after what the server says was read.
      conv.unreadMarker = conv.unread > 0 ? conv.lastRead : null;
      this.timeline.show(conv, this.me);
    }
    if (this.authed) {
      if (conv.isRoom && !conv.membersLoaded && !conv.joining) this.sendJoin(conv.id, false);
      else if (!conv.isRoom && !conv.loaded && !conv.syncing) this.fetchNewest(conv);
    }
    this.markRead();
    this.renderAll();
    if (focus && !this.shell.narrow) this.composer.focus();
  }

  openDM(userId, username) {
    if (userId === this.me.userId) return;
    const conv = this.ensureDM(userId, username);
    this.open(conv.key);
  }

  isVisible(conv) {
    return conv.key === this.current && document.visibilityState === 'visible';
  }

  sendJoin(roomId, open, options = {}) {
    const data = { roomId };
    if (options.private) data.private = true;
    if (options.topic) data.topic = options.topic;
    if (!this.send('join', data)) return false;
    this.joinQueue.push({ roomId, open });
    const conv = this.convs.get(roomKey(roomId));
    if (conv) conv.joining = true;
    return true;
  }

  // fetchNewest asks for a conversation's newest page. For a direct
  // conversation it passes a "before" beyond every id: without "before"
  // the server marks the conversation read, and only what the user has
  // seen should be (that is what the read frame is for).
  fetchNewest(conv) {
    const data = conv.isRoom ? { roomId: conv.id } : { withUserId: conv.id, before: MAX_ID };
    if (!this.send('history', data)) return;
    conv.syncing = true;
    this.historyQueue.push({ key: conv.key, mode: 'newest' });
  }

  loadOlder() {
    const conv = this.currentConv();
    if (!conv || !conv.hasMore || conv.loadingOlder || !this.authed) return;
    const data = conv.isRoom ? { roomId: conv.id } : { withUserId: conv.id };
    data.before = conv.oldestId() || MAX_ID;
    data.limit = OLDER_PAGE;
    if (!this.send('history', data)) return;
    conv.loadingOlder = true;
    this.historyQueue.push({ key: conv.key, mode: 'older' });
    this.timeline.update();
  }

  // sendMessage sends text (and the files attached, and the reply being
  // written) to the open conversation. replyTo: reply to that message
  // instead, from its thread (no files). False leaves the text in place.
  sendMessage(text, { replyTo = null } = {}) {
    const conv = this.currentConv();
    if (!conv || this.isMuted(conv)) return false;
    const fromThread = replyTo != null;
    if (!fromThread && this.attachments.busy()) {
      this.shell.toast('Your files are still uploading; send once they are done.');
      return false;
    }
    const files = fromThread ? [] : this.attachments.take();
    if (!text.trim() && !files.length) return false;
    const reply = fromThread ? this.quoteOf(conv, replyTo) : this.replies.get(conv.key);
    if (!fromThread) this.clearReply();
    const clientMsgId = `c${Date.now().toString(36)}${(++this.seq).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    if (conv.hasNewer) this.jumpToLatest(conv);
    this.dispatch('local/send', { key: conv.key, pending: {
      clientMsgId, content: text, timestamp: new Date().toISOString(), replyTo: reply || null, files,
    } });
    this.transmit(conv, conv.findPending(clientMsgId));
    this.saveOutbox();
    this.timeline.update({ ownSend: true });
    this.renderThread();
    return true;
  }

  // transmit sends an own message, or keeps it in the outbox (queued)
  // until the connection is back and the conversation's newest page has
  // said which earlier ones the server already has (flushOutbox).
  transmit(conv, p, last = false) {
    if (!this.authed || !conv.synced) {
      if (this.authed && !conv.syncing && !conv.joining) {
        if (conv.isRoom) this.sendJoin(conv.id, false);
        else this.fetchNewest(conv);
      }
      return;
    }
    const data = conv.isRoom ? { roomId: conv.id } : { targetUserId: conv.id };
    Object.assign(data, { content: p.content, clientMsgId: p.clientMsgId });
    if (p.replyTo) data.replyTo = p.replyTo.id;
    if (p.files?.length) data.files = p.files.map((f) => f.id);
    if (this.send(conv.isRoom ? 'chat' : 'private', data)) this.dispatch('local/sending', { clientMsgId: p.clientMsgId, last });
  }

  // flushOutbox sends, in order, the messages of conv that waited for
  // the connection, once a newest page has removed those it had already
  // stored (each exactly once: matched by clientMsgId).
  flushOutbox(conv) {
    conv.synced = true;
    let sent = false;
    for (const p of [...conv.pending]) {
      if (p.status !== 'queued') continue;
      this.transmit(conv, p);
      sent = true;
    }
    if (sent) {
      this.saveOutbox();
      if (conv.key === this.current) this.timeline.update();
    }
  }

  // saveOutbox keeps every unacknowledged own message in localStorage,
  // so a reload sends (or offers again) what this one did not.
  saveOutbox() {
    if (this.prefs) this.prefs.saveOutbox(outboxItems(this.state));
  }

  // restoreOutbox takes back the messages and drafts an earlier page (a
  // reload, or a tab that closed) did not send.
  restoreOutbox() {
    this.dispatch('local/outbox', { items: this.prefs.takeOutbox() });
    this.saveOutbox();
    this.composer.setDrafts(this.prefs.drafts);
  }

  retry(clientMsgId) {
    const conv = this.currentConv();
    const p = conv?.findPending(clientMsgId);
    if (!p) return;
    // Keep the message last, where a new one would appear.
    this.transmit(conv, p, true);
    this.saveOutbox();
    this.timeline.update({ ownSend: true });
    this.renderThread();
    this.composer.focus();
  }

  discard(clientMsgId) {
    if (this.dispatch('local/discard', { clientMsgId }).took) {
      this.saveOutbox();
      this.timeline.update();
      this.renderThread();
    }
    this.composer.focus();
  }

  onRoomMessage(m) {
    this.receive('message', m, roomKey(m.roomId));
  }

  onDirectMessage(m, type = 'privateMessage') {
    const peer = m.senderId === this.me.userId ? m.targetUserId : m.senderId;
    this.receive(type, m, dmKey(peer));
  }

  // receive applies a live message, then updates everything that
  // depends on it. The reader's view decides whether it counts as unread.
  receive(type, m, key) {
    const conv = this.convs.get(key);
    const seen = !!conv && this.seesNewest(conv);
    const changed = this.dispatch(type, m, { seen });
    this.afterMessages(this.convs.get(changed.key), changed, true);
  }

  // afterMessages renders what a frame with messages changed. live:
  // they just happened (notify, announce).
  afterMessages(conv, changed, live) {
    if (!conv) return;
    if (changed.took) this.saveOutbox();
    for (const m of changed.added) {
      if (m.senderId !== this.me.userId) this.clearTyping(conv, m.senderId);
    }
    if (conv.key === this.current) {
      this.timeline.update({ ownSend: changed.ownSend });
      this.markRead();
      this.renderThread();
    }
    if (live) {
      for (const m of changed.added) {
        this.maybeNotify(conv, m);
        if (conv.key === this.current && m.senderId !== this.me.userId) this.timeline.announce(announcement(m));
      }
    }
    this.renderSidebar();
    this.renderTitle();
    if (conv.key === this.current) this.renderTyping();
  }

  // mentionsMe: the server says the message mentions the user (rooms), or
  // its text does (direct messages, edits).
  mentionsMe(m) {
    return mentionsMe(this.state, m);
  }

  maybeNotify(conv, m) {
    if (m.senderId === this.me.userId || (this.isVisible(conv) && document.hasFocus())) return;
    if (conv.isRoom && !this.mentionsMe(m)) return;
    const title = conv.isRoom ? `${m.senderName} in ${conv.title}` : m.senderName;
    const body = m.content || (m.files?.length ? `Sent ${m.files.length === 1 ? m.files[0].name : `${m.files.length} files`}` : '');
    notify(title, body, conv.key, () => this.open(conv.key));
  }

  onHistory(d) {
    const key = d.roomId ? roomKey(d.roomId) : dmKey(d.withUserId);
    const i = this.historyQueue.findIndex((r) => r.key === key);
    const req = i >= 0 ? this.historyQueue.splice(i, 1)[0] : { key, mode: 'newest' };
    const conv = this.convs.get(key);
    if (!conv) return;
    const changed = this.dispatch('history', d, { mode: req.mode });
    this.afterMessages(conv, changed, false);
    if (req.mode === 'around') return this.afterAround(conv, req.target);
    if (req.mode === 'newest') this.flushOutbox(conv);
  }

  onJoined(d) {
    const i = this.joinQueue.findIndex((r) => r.roomId === d.roomId);
    const req = i >= 0 ? this.joinQueue.splice(i, 1)[0] : { open: this.takeGroup(d) };
    const changed = this.dispatch('joined', d);
    const conv = this.convs.get(changed.key);
    if (conv.mute) this.scheduleUnmute(conv, this.me.userId, conv.mute.until);
    this.afterMessages(conv, changed, false);
    this.flushOutbox(conv);
    if (req.open) {
      this.shell.dialog.close();
      this.open(conv.key);
    } else {
      this.renderAll();
    }
  }

  onError(d) {
    if (d.type === 'auth') return this.onAuthError(d);
    if (this.onAccountError(d)) return;
    if (this.onReachError(d)) return;
    if (this.onModerationError(d)) return;
    if (this.onMessageError(d)) return;
    if (d.clientMsgId) {
      const changed = this.dispatch('error', d);
      const conv = changed.key && this.convs.get(changed.key);
      if (conv) {
        this.saveOutbox();
        if (d.code === 'muted') this.learnMute(conv, d.message);
        if (conv.key === this.current) {
          this.timeline.update();
          this.renderThread();
        }
        return;
      }
    }
    switch (d.type) {
      case 'history': {
        // Answers come in request order: the oldest unanswered one failed.
        const req = this.historyQueue.shift();
        const conv = req && this.convs.get(req.key);
        if (!conv) return;
        if (req.mode === 'around') return this.afterAround(conv, req.target, d.message);
        conv.loadingOlder = false;
        conv.syncing = false;
        if (d.code === 'rate_limited' && req.mode === 'newest') this.retryLater(d.retryAfter, () => this.fetchNewest(conv));
        if (conv.key === this.current) this.timeline.update();
        return;
      }
      case 'join': {
        const req = this.joinQueue.shift();
        const conv = req && this.convs.get(roomKey(req.roomId));
        if (conv) conv.joining = false;
        if (req?.open) this.showJoinError(d.message);
        else if (d.code === 'rate_limited' && conv) this.retryLater(d.retryAfter, () => this.sendJoin(conv.id, false));
        else this.shell.toast(d.message, 'error');
        return;
      }
      case 'typing':
        if (d.code === 'muted') this.learnMute(this.currentConv(), d.message);
        return;
      case 'read':
        return; // nothing the user can act on
      default:
        if (d.code !== 'unauthenticated' && d.code !== 'already_authenticated') this.shell.toast(d.message || d.code, 'error');
    }
  }

  sendTyping(isTyping) {
    const conv = this.currentConv();
    if (conv?.isRoom && this.authed && !this.isMuted(conv)) this.send('typing', { roomId: conv.id, isTyping });
  }

  onTyping(d) {
    const conv = this.convs.get(roomKey(d.roomId));
    if (!conv || d.userId === this.me.userId) return;
    const old = conv.typing.get(d.userId);
    if (old) clearTimeout(old.timer);
    if (d.isTyping) {
      const timer = setTimeout(() => this.clearTyping(conv, d.userId), TYPING_TTL_MS);
      conv.typing.set(d.userId, { username: d.username, timer });
    } else {
      conv.typing.delete(d.userId);
    }
    if (conv.key === this.current) this.renderTyping();
  }

  clearTyping(conv, userId) {
    const t = conv.typing.get(userId);
    if (!t) return;
    clearTimeout(t.timer);
    conv.typing.delete(userId);
    if (conv.key === this.current) this.renderTyping();
  }
}

Object.assign(App.prototype, sessionMethods, accountMethods, roomMethods, readMethods, messageMethods, reachMethods,
  threadMethods, moderationMethods, searchMethods, renderMethods);
