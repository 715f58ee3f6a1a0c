// The client's state, and how it changes: apply(state, frame) takes a
// server frame (PROTOCOL.md) or one of the page's own actions ("local/…")
// and updates the state, which the views render from. It touches no DOM,
// no storage, no timers and no clock (the time comes with the frame), so
// `node --test webtest/` checks it.
//
// apply updates state in place and returns it; state.changed then says
// what the frame did, for the views: { key, added, ownSend, took }.
// Frames may carry what only the page knows, beside their data:
//   seen     (message frames) the reader was looking at the newest message
//   mode     (history) 'newest', 'older' or 'around', as requested
//   now      (frames that add a system line) its ISO time; without it, the
//            current time
// Selectors at the end read the state for the views.

import { Conversation, dmKey, roomKey } from './conversation.js';
import { mentions } from './format.js';
import { eventText, serverEventText } from './moderation.js';

// QUOTE_CHARS: the server cuts a reply's quote of its parent to this.
export const QUOTE_CHARS = 200;

export function initialState() {
  return {
    me: null, // { userId, username, isAdmin }
    convs: new Map(), // key -> Conversation
    online: new Map(), // userId -> username
    names: new Map(), // userId -> username, of everyone met
    current: null, // key of the open conversation
    thread: null, // { key, id, parent, replies, loading, error, justOpened }
    maxUploadBytes: 0,
    changed: null,
  };
}

// apply changes state by one frame: { type, data, …annotations }.
export function apply(state, frame) {
  state.changed = { key: null, added: [], ownSend: false, took: false };
  const fn = HANDLERS[frame.type];
  if (fn && (state.me || frame.type === 'authenticated' || frame.type.startsWith('local/'))) fn(state, frame.data || {}, frame);
  return state;
}

// --- conversations ---

export function ensureRoom(state, roomId) {
  const key = roomKey(roomId);
  let conv = state.convs.get(key);
  if (!conv) {
    conv = new Conversation('room', roomId, roomId);
    state.convs.set(key, conv);
  }
  return conv;
}

export function ensureDM(state, userId, username) {
  const key = dmKey(userId);
  let conv = state.convs.get(key);
  if (!conv) {
    conv = new Conversation('dm', userId, username);
    state.convs.set(key, conv);
  } else if (username && conv.name !== username) {
    conv.name = username;
  }
  return conv;
}

export function learnName(state, userId, username) {
  if (userId && username) state.names.set(userId, username);
}

export function setReadState(conv, lastRead, unread, mentionCount) {
  conv.lastRead = lastRead || '';
  conv.readSent = conv.lastRead; // the server has it: no need to say it again
  conv.unread = unread;
  conv.mentions = mentionCount;
}

// --- handlers ---

const HANDLERS = {
  authenticated(state, d) {
    if (state.me?.userId !== d.userId) {
      const fresh = initialState();
      Object.assign(state, fresh);
      state.changed = { key: null, added: [], ownSend: false, took: false };
    }
    state.me = { userId: d.userId, username: d.username, isAdmin: !!d.isAdmin, guest: !!d.guest, bot: !!d.bot };
    state.maxUploadBytes = d.maxUploadBytes || 0;
    state.vapidPublicKey = d.vapidPublicKey || '';
    state.online = new Map((d.onlineUsers || []).map((u) => [u.userId, u.username]));
    // The server's list of my rooms is the truth: I may have joined or
    // left elsewhere while this page was away.
    const mine = new Set((d.rooms || []).map((r) => r.roomId));
    for (const conv of [...state.convs.values()]) {
      if (conv.isRoom && !mine.has(conv.id)) state.convs.delete(conv.key);
    }
    for (const r of d.rooms || []) {
      const conv = ensureRoom(state, r.roomId);
      conv.memberCount = r.memberCount;
      conv.hasMessages = !!r.lastMessageAt;
      conv.topic = r.topic || '';
      conv.private = !!r.private;
      conv.group = !!r.group;
      conv.notify = r.notify || 'mentions';
      conv.role = r.role || 'member';
      if (r.lastMessageAt && r.lastMessageAt > conv.lastActivity) conv.lastActivity = r.lastMessageAt;
      setReadState(conv, r.lastRead, r.unread ?? 0, r.mentions ?? 0);
    }
    // Direct conversations: the server lists every one, with what is
    // unread, so each device shows the same list. One opened on this page
    // that has no message yet stays until the page closes.
    const directs = new Map((d.directs || []).map((c) => [c.userId, c]));
    for (const conv of state.convs.values()) {
      if (!conv.isRoom && !directs.has(conv.id)) setReadState(conv, conv.lastRead, 0, 0);
    }
    for (const c of directs.values()) {
      const conv = ensureDM(state, c.userId, c.username);
      setReadState(conv, c.lastRead, c.unread, 0);
      if (c.lastMessageAt > conv.lastActivity) conv.lastActivity = c.lastMessageAt;
      if (c.online) state.online.set(c.userId, c.username);
    }
    if (state.current && !state.convs.has(state.current)) state.current = null;
  },

  joined(state, d) {
    const conv = ensureRoom(state, d.roomId);
    state.changed.key = conv.key;
    conv.joining = false;
    conv.members = new Map((d.users || []).map((u) => [u.userId, { ...u }]));
    for (const u of d.users || []) learnName(state, u.userId, u.username);
    conv.membersLoaded = true;
    conv.memberCount = conv.members.size;
    conv.topic = d.topic || '';
    conv.private = !!d.private;
    conv.group = !!d.group;
    conv.notify = d.notify || 'mentions';
    conv.role = d.role || 'member';
    syncMyMute(state, conv);
    if (d.lastRead && d.lastRead > conv.lastRead) setReadState(conv, d.lastRead, conv.unread, conv.mentions);
    const msgs = d.history || [];
    takeEvents(state, conv, d.events, msgs);
    mergePage(state, conv, msgs, !!d.hasMore, true, !!d.trimmed);
  },

  history(state, d, frame) {
    const key = d.roomId ? roomKey(d.roomId) : dmKey(d.withUserId);
    const conv = state.convs.get(key);
    if (!conv) return;
    state.changed.key = key;
    const msgs = d.messages || [];
    const mode = frame.mode || 'newest';
    if (mode === 'around') {
      takeOwn(state, conv, msgs);
      conv.prepareAround(msgs, !!d.hasMore, !!d.hasNewer, !!d.trimmed);
      takeEvents(state, conv, d.events, msgs);
      receive(state, conv, msgs, false, false);
      return;
    }
    if (mode === 'older') conv.loadingOlder = false;
    else conv.syncing = false;
    takeEvents(state, conv, d.events, msgs);
    mergePage(state, conv, msgs, !!d.hasMore, mode !== 'older', !!d.trimmed);
  },

  message(state, m, frame) {
    const conv = ensureRoom(state, m.roomId);
    receive(state, conv, [m], true, !!frame.seen);
  },

  privateMessage(state, m, frame) {
    const mine = m.senderId === state.me.userId;
    const conv = mine ? ensureDM(state, m.targetUserId, m.targetUsername) : ensureDM(state, m.senderId, m.senderName);
    receive(state, conv, [m], true, !!frame.seen);
  },

  privateMessageSent(state, m, frame) {
    HANDLERS.privateMessage(state, m, frame);
  },

  messageEdited(state, d) {
    const conv = convOfRef(state, d);
    if (!conv) return;
    state.changed.key = conv.key;
    for (const m of copiesOf(state, conv, d.id)) {
      m.content = d.content;
      m.mentions = d.mentions || []; // recomputed by the server from the new text
      m.editedAt = d.editedAt;
      m.editPending = false;
      delete m.editRevert;
    }
    for (const m of quotesOf(state, conv, d.id)) m.replyTo = { ...m.replyTo, content: d.content.slice(0, QUOTE_CHARS) };
  },

  messageDeleted(state, d) {
    const conv = convOfRef(state, d);
    if (!conv) return;
    state.changed.key = conv.key;
    let counted = false;
    for (const m of copiesOf(state, conv, d.id)) {
      if (!counted && !m.deleted && m.id > conv.lastRead && m.senderId !== state.me.userId && conv.unread > 0) {
        conv.unread--;
        if (mentionsMe(state, m)) conv.mentions = Math.max(0, conv.mentions - 1);
        counted = true;
      }
      Object.assign(m, { deleted: true, content: '', files: [], reactions: [], mentions: [], editedAt: '', editPending: false });
    }
    for (const m of quotesOf(state, conv, d.id)) m.replyTo = { ...m.replyTo, deleted: true, content: '' };
  },

  reaction(state, d) {
    const conv = convOfRef(state, d);
    if (!conv) return;
    state.changed.key = conv.key;
    learnName(state, d.userId, d.username);
    for (const m of copiesOf(state, conv, d.id)) {
      const list = [...(m.reactions || [])];
      const i = list.findIndex((r) => r.emoji === d.emoji);
      const r = { emoji: d.emoji, count: d.count, userIds: d.userIds || [] };
      if (!d.count) {
        if (i >= 0) list.splice(i, 1);
      } else if (i >= 0) {
        list[i] = r;
      } else {
        list.push(r);
      }
      m.reactions = list;
    }
  },

  thread(state, d) {
    const t = state.thread;
    const key = d.roomId ? roomKey(d.roomId) : dmKey(d.withUserId);
    if (!t || t.key !== key || t.id !== d.messageId) return;
    const conv = state.convs.get(key);
    // The timeline's objects where it has them, so events change both.
    t.parent = conv?.byId.get(d.parent.id) || d.parent;
    const replies = new Map(t.replies.map((r) => [r.id, r]));
    for (const r of d.replies || []) if (!replies.has(r.id)) replies.set(r.id, conv?.byId.get(r.id) || r);
    t.replies = [...replies.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const r of t.replies) learnName(state, r.senderId, r.senderName);
    t.loading = false;
    t.error = '';
    state.changed.key = key;
  },

  userOnline(state, d) {
    state.online.set(d.userId, d.username);
    setPresence(state, d.userId, true);
  },

  userOffline(state, d) {
    state.online.delete(d.userId);
    setPresence(state, d.userId, false);
  },

  userJoined(state, d, frame) {
    const conv = state.convs.get(roomKey(d.roomId));
    if (!conv) return;
    state.changed.key = conv.key;
    learnName(state, d.userId, d.username);
    if (!conv.members.has(d.userId)) conv.memberCount++;
    conv.members.set(d.userId, {
      userId: d.userId, username: d.username, online: state.online.has(d.userId), role: 'member', muted: false,
      guest: !!d.guest, bot: !!d.bot,
    });
    if (d.invitedBy) {
      learnName(state, d.invitedBy.userId, d.invitedBy.username);
      conv.addEvent(eventText('invited', { ...d, by: d.invitedBy }, state.me), false, { type: 'joined', userId: d.userId }, frame.now);
    } else {
      conv.addEvent(eventText('joined', d, state.me), false, { type: 'joined', userId: d.userId }, frame.now);
    }
  },

  userLeft(state, d, frame) {
    const conv = state.convs.get(roomKey(d.roomId));
    if (!conv) return;
    state.changed.key = conv.key;
    if (conv.members.delete(d.userId) || !conv.membersLoaded) conv.memberCount = Math.max(0, conv.memberCount - 1);
    conv.addEvent(eventText('left', d, state.me), false, { type: 'left', userId: d.userId }, frame.now);
  },

  // left: the user is no longer in a room.
  left(state, d) {
    const key = roomKey(d.roomId);
    state.changed.key = key;
    state.convs.delete(key);
    if (state.thread?.key === key) state.thread = null;
  },

  notifyUpdated(state, d) {
    const conv = state.convs.get(roomKey(d.roomId));
    if (!conv) return;
    conv.notify = d.level;
    state.changed.key = conv.key;
  },

  invited(state, d, frame) {
    const r = d.room;
    const conv = ensureRoom(state, r.roomId);
    state.changed.key = conv.key;
    conv.topic = r.topic || '';
    conv.private = !!r.private;
    conv.group = !!r.group;
    conv.memberCount = r.memberCount;
    conv.role = 'member';
    conv.hasMessages = !!r.lastMessageAt;
    learnName(state, d.by.userId, d.by.username);
    conv.addEvent(`${d.by.username} added you to the room`, false, { type: 'joined', userId: state.me.userId }, frame.now);
  },

  readUpdated(state, d) {
    const conv = state.convs.get(d.roomId ? roomKey(d.roomId) : dmKey(d.withUserId));
    if (!conv || !d.messageId || d.messageId <= conv.lastRead) return;
    state.changed.key = conv.key;
    conv.lastRead = d.messageId;
    if (d.messageId > (conv.readSent || '')) conv.readSent = d.messageId;
    const c = conv.countAfter(d.messageId, state.me.userId);
    if (conv.loaded && c.known) {
      conv.unread = c.unread;
      conv.mentions = c.mentions;
    } else if (!conv.loaded) {
      // Nothing here to count with: the other device most likely read to
      // the end (the next sign-in has the exact counts).
      conv.unread = 0;
      conv.mentions = 0;
    }
  },

  kicked: (state, d, frame) => moderation(state, 'kicked', d, frame),
  banned: (state, d, frame) => moderation(state, 'banned', d, frame),
  unbanned: (state, d, frame) => moderation(state, 'unbanned', d, frame),
  muted: (state, d, frame) => moderation(state, 'muted', d, frame),
  unmuted: (state, d, frame) => moderation(state, 'unmuted', d, frame),
  roleChanged: (state, d, frame) => moderation(state, 'roleChanged', d, frame),
  roomUpdated: (state, d, frame) => moderation(state, 'roomUpdated', d, frame),

  // error: an own message the server refused (clientMsgId) failed.
  error(state, d) {
    if (!d.clientMsgId) return;
    for (const conv of state.convs.values()) {
      const p = conv.findPending(d.clientMsgId);
      if (!p) continue;
      p.status = 'failed';
      p.error = d.message || d.code;
      state.changed.key = conv.key;
      state.changed.took = true;
      return;
    }
  },

  // --- the page's own actions ---

  // local/send queues an own message: { key, pending }.
  'local/send'(state, d) {
    const conv = state.convs.get(d.key);
    if (!conv) return;
    conv.pending.push({ status: 'queued', error: '', replyTo: null, files: [], ...d.pending });
    state.changed.key = conv.key;
    state.changed.took = true;
  },

  // local/sending: an own message went out on the socket: { clientMsgId }.
  // last moves it after the others (a retry).
  'local/sending'(state, d) {
    for (const conv of state.convs.values()) {
      const p = conv.findPending(d.clientMsgId);
      if (!p) continue;
      p.status = 'sending';
      p.error = '';
      if (d.last) conv.pending.push(...conv.pending.splice(conv.pending.indexOf(p), 1));
      state.changed.key = conv.key;
      state.changed.took = true;
    }
  },

  // local/discard drops an own message that was not sent: { clientMsgId }.
  'local/discard'(state, d) {
    for (const conv of state.convs.values()) {
      if (conv.takePending(d.clientMsgId)) {
        state.changed.key = conv.key;
        state.changed.took = true;
      }
    }
  },

  // local/disconnected: the socket closed. What was sent and not
  // acknowledged may or may not be stored: it waits in the outbox until
  // the next newest page says (by clientMsgId).
  'local/disconnected'(state) {
    for (const conv of state.convs.values()) {
      conv.membersLoaded = false;
      conv.joining = false;
      conv.syncing = false;
      conv.loadingOlder = false;
      conv.synced = false;
      if (conv.loaded && !conv.resumeFrom) conv.resumeFrom = conv.newestId();
      conv.typing.clear();
      for (const p of conv.pending) {
        if (p.status === 'sending') p.status = 'queued';
      }
    }
    state.changed.took = true;
  },

  // local/outbox takes back own messages an earlier page did not send
  // (storage.js takeOutbox): { items }.
  'local/outbox'(state, d) {
    for (const it of d.items || []) {
      const conv = it.kind === 'room' ? state.convs.get(roomKey(it.id)) : ensureDM(state, it.id, it.name);
      if (!conv || conv.findPending(it.clientMsgId)) continue; // a room left since
      conv.pending.push({ clientMsgId: it.clientMsgId, content: it.content || '', timestamp: it.timestamp,
        status: it.status === 'failed' ? 'failed' : 'queued', error: it.error || '', replyTo: it.replyTo || null, files: it.files || [] });
    }
    state.changed.took = true;
  },
};

// mergePage merges a page of history: own messages in it leave the
// outbox (they were stored), the page is fitted to what is held
// (Conversation.preparePage), and its messages are added.
function mergePage(state, conv, msgs, hasMore, newest, trimmed) {
  takeOwn(state, conv, msgs);
  conv.preparePage(msgs, hasMore, newest, trimmed);
  receive(state, conv, msgs, false, false);
}

function takeOwn(state, conv, msgs) {
  for (const m of msgs) {
    if (m.senderId === state.me.userId && conv.takePending(m.clientMsgId)) state.changed.took = true;
  }
}

// receive merges messages into a conversation. live: they just
// happened (count them, unless seen: the reader was looking).
function receive(state, conv, msgs, live, seen) {
  const ch = state.changed;
  ch.key = conv.key;
  for (const m of msgs) {
    learnName(state, m.senderId, m.senderName);
    if (m.senderId === state.me.userId && conv.takePending(m.clientMsgId)) {
      ch.took = true;
      if (live) ch.ownSend = true;
    }
  }
  for (const m of msgs) {
    // Shown a stretch of older history: newer messages wait for the
    // newest page ("Jump to latest").
    if (live && conv.hasNewer) {
      if (!conv.byId.has(m.id)) ch.added.push(m);
    } else if (conv.add(m)) {
      ch.added.push(m);
    }
  }
  if (!live) return;
  for (const m of ch.added) {
    if (m.senderId !== state.me.userId) conv.typing.delete(m.senderId);
    if (m.replyTo) countReply(state, conv, m);
    if (m.senderId === state.me.userId) {
      // Sending reads the conversation up to one's own message.
      if (m.id > conv.lastRead) conv.lastRead = conv.readSent = m.id;
      conv.unread = 0;
      conv.mentions = 0;
    } else if (!seen && !m.deleted) {
      conv.unread++;
      if (mentionsMe(state, m)) conv.mentions++;
    }
  }
}

// countReply: a reply arrived; its parent has one more, and an open
// thread of that parent lists it.
function countReply(state, conv, m) {
  const parentId = m.replyTo.id;
  for (const p of copiesOf(state, conv, parentId)) p.replyCount = (p.replyCount || 0) + 1;
  const t = state.thread;
  if (t && t.key === conv.key && t.id === parentId && !t.replies.some((r) => r.id === m.id)) {
    t.replies.push(m);
    t.replies.sort((a, b) => (a.id < b.id ? -1 : 1));
  }
}

// takeEvents adds the room events a page lists (absent from servers
// that do not send them: then there are none).
function takeEvents(state, conv, events, msgs) {
  if (!conv.isRoom || !Array.isArray(events)) return;
  for (const ev of events) {
    learnName(state, ev.userId, ev.username);
    learnName(state, ev.by?.userId, ev.by?.username);
  }
  conv.addServerEvents(events, msgs[0]?.id || '', (ev) => serverEventText(ev, state.me));
}

function setPresence(state, userId, online) {
  for (const conv of state.convs.values()) {
    const m = conv.members.get(userId);
    if (m) m.online = online;
    if (!online) conv.typing.delete(userId);
  }
}

// syncMyMute takes the user's muted state from the member list: the
// server sends mutedUntil for a timed mute and leaves it out for a mute
// that lasts until a moderator lifts it ('' here).
export function syncMyMute(state, conv) {
  const mine = conv.members.get(state.me.userId);
  if (!mine?.muted) {
    conv.mute = null;
    return;
  }
  conv.mute = { ...(conv.mute || { reason: '', by: '' }), until: mine.mutedUntil || '' };
}

// moderation applies a moderation or room event to the room and adds its
// line. A server-wide ban (global) touches every room the user was in.
function moderation(state, type, d, frame) {
  learnName(state, d.userId, d.username);
  learnName(state, d.by?.userId, d.by?.username);
  if (type === 'banned' && d.global) {
    if (d.userId === state.me.userId) return; // loggedOut follows
    for (const conv of state.convs.values()) {
      if (!conv.isRoom || !conv.members.has(d.userId)) continue;
      conv.members.delete(d.userId);
      conv.memberCount = Math.max(0, conv.memberCount - 1);
      conv.typing.delete(d.userId);
      conv.addEvent(eventText('banned', d, state.me), true, { type: 'banned', userId: d.userId }, frame.now);
      state.changed.key = conv.key;
    }
    return;
  }
  const conv = d.roomId ? state.convs.get(roomKey(d.roomId)) : null;
  if (!conv) return;
  state.changed.key = conv.key;
  const me = d.userId === state.me.userId;
  const member = conv.members.get(d.userId);
  switch (type) {
    case 'kicked':
    case 'banned':
      if (conv.members.delete(d.userId) || !conv.membersLoaded) conv.memberCount = Math.max(0, conv.memberCount - 1);
      conv.typing.delete(d.userId);
      break;
    case 'muted':
      if (member) Object.assign(member, { muted: true, mutedUntil: d.until || '' });
      if (me) conv.mute = { until: d.until || '', reason: d.reason || '', by: d.by?.username || '' };
      break;
    case 'unmuted':
      if (member) Object.assign(member, { muted: false, mutedUntil: '' });
      if (me) conv.mute = null;
      break;
    case 'roleChanged':
      if (member) member.role = d.role;
      if (me) conv.role = d.role;
      break;
    case 'roomUpdated':
      conv.topic = d.topic || '';
      conv.private = !!d.private;
      break;
  }
  conv.addEvent(eventText(type, d, state.me), type === 'kicked' || type === 'banned',
    { type: type === 'roomUpdated' ? 'topic' : type, userId: type === 'roomUpdated' ? '' : d.userId }, frame.now);
}

// --- selectors ---

export function rooms(state) {
  return [...state.convs.values()].filter((c) => c.isRoom)
    .sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' }));
}

export function dms(state) {
  return [...state.convs.values()].filter((c) => !c.isRoom)
    .sort((a, b) => (b.lastActivity || '').localeCompare(a.lastActivity || '') || a.name.localeCompare(b.name));
}

// sidebarOrder: rooms by name, then direct conversations, latest first.
export function sidebarOrder(state) {
  return [...rooms(state), ...dms(state)];
}

export function currentConv(state) {
  return state.current ? state.convs.get(state.current) || null : null;
}

export function unreadTotal(state) {
  let total = 0;
  for (const conv of state.convs.values()) total += conv.unread;
  return total;
}

// convOfRef finds the conversation an event names: roomId, or the two
// parties of a direct conversation.
export function convOfRef(state, d) {
  if (d.roomId) return state.convs.get(roomKey(d.roomId)) || null;
  const peer = d.senderId === state.me.userId ? d.targetUserId : d.senderId;
  return state.convs.get(dmKey(peer)) || null;
}

// copiesOf returns every object the state holds for a message: the
// conversation's, and the open thread's when it has its own.
export function copiesOf(state, conv, id) {
  const out = new Set();
  const m = conv.byId.get(id);
  if (m) out.add(m);
  const t = state.thread;
  if (t && t.key === conv.key) {
    if (t.parent?.id === id) out.add(t.parent);
    for (const r of t.replies) if (r.id === id) out.add(r);
  }
  return out;
}

// quotesOf returns the replies that quote a message.
export function quotesOf(state, conv, id) {
  const out = new Set(conv.messages.filter((m) => m.replyTo?.id === id));
  if (state.thread?.key === conv.key) for (const r of state.thread.replies) if (r.replyTo?.id === id) out.add(r);
  return out;
}

// mentionsMe: the server says the message mentions the user (rooms), or
// its text does (direct messages, edits).
export function mentionsMe(state, m) {
  const me = state.me;
  return !!me && m.senderId !== me.userId && !m.deleted &&
    (!!m.mentions?.includes(me.userId) || mentions(m.content || '', me.username));
}

export function nameOf(state, userId, conv) {
  if (userId === state.me?.userId) return state.me.username;
  return conv?.members.get(userId)?.username || state.names.get(userId) || state.online.get(userId) ||
    state.convs.get(dmKey(userId))?.name || 'someone';
}

// isMuted: the user cannot send in conv at time now (ms). A mute whose
// end is unknown (until null) does not count: it may be over already.
export function isMuted(conv, now) {
  const until = conv?.isRoom ? conv.mute?.until : null;
  if (until == null) return false;
  return until === '' || new Date(until).getTime() > now;
}

// outboxItems lists every own message not acknowledged, as storage.js
// keeps them across a reload.
export function outboxItems(state) {
  const items = [];
  for (const conv of state.convs.values()) {
    for (const p of conv.pending) {
      items.push({ kind: conv.kind, id: conv.id, name: conv.name, clientMsgId: p.clientMsgId, content: p.content,
        timestamp: p.timestamp, status: p.status === 'failed' ? 'failed' : 'queued', error: p.error,
        replyTo: p.replyTo, files: p.files });
    }
  }
  return items;
}
