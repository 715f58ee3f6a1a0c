// Conversation holds one room's or one direct conversation's messages:
// confirmed messages from the server, deduplicated by id and kept in id
// order, and the user's own messages still waiting for their
// acknowledgement (or failed). The confirmed messages are always one
// unbroken run of the history: from some point up to the newest message,
// or, after jumping to an old message (hasNewer), a run around it.

// Message ids are 12-digit zero-padded decimals, so they sort as strings.
export const MAX_ID = '999999999999';

export const roomKey = (roomId) => `room:${roomId}`;
export const dmKey = (userId) => `dm:${userId}`;

// CHANGING are the fields of a message that change after it is sent.
const CHANGING = ['content', 'editedAt', 'deleted', 'reactions', 'replyCount', 'files', 'replyTo', 'mentions'];

// MAX_EVENTS bounds the system lines (joins, kicks, topic changes…) a
// conversation keeps. Those from the server's pages (events) come back
// after a reload; those seen only live last as long as the page.
const MAX_EVENTS = 200;

export class Conversation {
  constructor(kind, id, name) {
    this.kind = kind; // 'room' or 'dm'
    this.id = id; // roomId, or the peer's userId
    this.name = name; // room id, or the peer's username
    this.key = kind === 'room' ? roomKey(id) : dmKey(id);
    this.group = false; // a group conversation: a private room named by its people (topic)
    this.notify = 'mentions'; // push when away: 'all', 'mentions' or 'nothing'
    this.messages = []; // confirmed, ascending id
    this.byId = new Map();
    this.gen = 0; // counts resets: views holding ids of the old run start over
    // own: { clientMsgId, content, timestamp, status: 'queued'|'sending'|'failed', error, replyTo, files }
    this.pending = [];
    this.hasMore = false; // older messages can be fetched
    // With hasMore false: older messages existed, but the server no
    // longer keeps them (PROTOCOL.md, "trimmed").
    this.trimmed = false;
    this.hasNewer = false; // the messages shown stop short of the newest (a jump)
    this.loaded = false; // a page of history has arrived at least once
    this.loadingOlder = false;
    // Read state, from the server (authenticated, joined, readUpdated):
    // the newest id read, and what came after it from others.
    this.lastRead = '';
    this.unread = 0;
    this.mentions = 0;
    this.lastActivity = '';
    this.events = []; // system lines: { key, afterId, text, timestamp, warn }
    // Rooms only.
    this.topic = '';
    this.private = false;
    this.role = 'member'; // mine: 'owner', 'moderator' or 'member'
    this.mute = null; // mine, when muted here: { until (ISO, '' = until unmuted), reason, by }
    this.members = new Map(); // userId -> { userId, username, online, role, muted, mutedUntil }
    this.membersLoaded = false; // members came with a joined frame on this connection
    this.joining = false; // a join is unanswered
    this.syncing = false; // a newest-page history request is queued or unanswered
    // A newest page arrived on this connection: own messages may go out
    // (the outbox waits for it, app.js flushOutbox).
    this.synced = false;
    this.hasMessages = false; // the server listed a last message time
    this.memberCount = 0;
    this.typing = new Map(); // userId -> { username, timer }
    // Set when the connection drops: the newest id we had, so the first
    // page after reconnecting can tell whether it leaves a gap.
    this.resumeFrom = '';
  }

  get isRoom() {
    return this.kind === 'room';
  }

  // title is how the conversation is named: #room, a group's people (its
  // topic), or the peer's name.
  get title() {
    if (this.group) return this.topic || 'Group';
    return this.isRoom ? `#${this.name}` : this.name;
  }

  newestId() {
    return this.messages.at(-1)?.id || '';
  }

  oldestId() {
    return this.messages[0]?.id || '';
  }

  // add inserts a confirmed message; false when it was already there,
  // and then the copy held takes what may have changed since (edits,
  // deletion, reactions, replies), as a page fetched after a reconnect
  // knows.
  add(msg) {
    const held = this.byId.get(msg.id);
    if (held) {
      if (!held.editPending) {
        for (const k of CHANGING) {
          if (k in msg) held[k] = msg[k];
          else delete held[k];
        }
      }
      return false;
    }
    this.byId.set(msg.id, msg);
    let i = this.messages.length;
    while (i > 0 && this.messages[i - 1].id > msg.id) i--;
    this.messages.splice(i, 0, msg);
    if (msg.timestamp > this.lastActivity) this.lastActivity = msg.timestamp;
    return true;
  }

  // reset forgets the confirmed messages, before a page that replaces them.
  reset() {
    this.messages = [];
    this.byId = new Map();
    this.gen++;
    this.hasNewer = false;
    this.trimmed = false;
    this.resumeFrom = '';
  }

  // preparePage readies the conversation for a history page (oldest
  // first); the caller then adds its messages. newest says the page is the
  // conversation's newest (no "before"): after a reconnect it may not reach
  // back to what we had, and then the messages before it are dropped, so
  // the timeline never shows a silent gap ("load older" fills it). A jump
  // to an old message is left for the newest page.
  preparePage(msgs, hasMore, newest, trimmed = false) {
    if (!newest) {
      this.hasMore = hasMore;
      this.trimmed = !hasMore && trimmed;
      return;
    }
    if (this.hasNewer) this.reset();
    if (this.resumeFrom && hasMore && msgs.length && msgs[0].id > this.resumeFrom) {
      const first = msgs[0].id;
      this.messages = this.messages.filter((m) => m.id >= first);
      this.byId = new Map(this.messages.map((m) => [m.id, m]));
      this.hasMore = true;
    } else if (!this.loaded || !hasMore || !this.messages.length) {
      this.hasMore = hasMore;
      this.trimmed = !hasMore && trimmed;
    }
    this.resumeFrom = '';
    this.loaded = true;
  }

  // prepareAround readies the conversation for a page around a message
  // (history {around}). A page that overlaps what is shown extends it;
  // one that does not replaces it, and then the newest messages are
  // missing (hasNewer) until the reader jumps back to them.
  prepareAround(msgs, hasMore, hasNewer, trimmed = false) {
    if (!msgs.length) return;
    const first = msgs[0].id;
    const last = msgs.at(-1).id;
    const overlaps = this.messages.length && last >= this.oldestId() && first <= this.newestId();
    if (!overlaps) {
      this.reset();
      this.hasMore = hasMore;
      this.trimmed = !hasMore && trimmed;
      this.hasNewer = hasNewer;
    } else {
      if (first < this.oldestId()) {
        this.hasMore = hasMore;
        this.trimmed = !hasMore && trimmed;
      }
      if (last > this.newestId()) this.hasNewer = hasNewer;
    }
    this.loaded = true;
  }

  // takePending removes and returns the own message with clientMsgId.
  takePending(clientMsgId) {
    if (!clientMsgId) return null;
    const i = this.pending.findIndex((p) => p.clientMsgId === clientMsgId);
    return i < 0 ? null : this.pending.splice(i, 1)[0];
  }

  findPending(clientMsgId) {
    return this.pending.find((p) => p.clientMsgId === clientMsgId) || null;
  }

  // countAfter counts others' messages newer than id, and of those the
  // ones that mention myId. known: id is within what is loaded, so the
  // counts are exact.
  countAfter(id, myId) {
    let unread = 0;
    let mentions = 0;
    for (let i = this.messages.length - 1; i >= 0 && this.messages[i].id > id; i--) {
      const m = this.messages[i];
      if (m.senderId === myId || m.deleted) continue;
      unread++;
      if (m.mentions?.includes(myId)) mentions++;
    }
    const known = !this.hasMore || (this.messages.length > 0 && id >= this.oldestId());
    return { unread, mentions, known };
  }

  // addEvent records a system line after the newest message shown, as
  // it happens. kind: { type, userId } of the event, to recognise it when
  // the server lists it in a page (addServerEvents).
  addEvent(text, warn = false, kind = {}, at = new Date().toISOString()) {
    this.eventSeq = (this.eventSeq || 0) + 1;
    this.events.push({ key: `e:${this.eventSeq}`, afterId: this.newestId(), text, timestamp: at, warn,
      type: kind.type || '', userId: kind.userId || '', live: true });
    if (this.events.length > MAX_EVENTS) this.events.shift();
  }

  // addServerEvents takes the events of a joined or history page
  // (PROTOCOL.md, "events"), oldest first: each goes after the message
  // it follows (after), or just before the page's first message (after
  // ""). A line shown live for the same event is replaced; one seen in an
  // earlier page is kept once. describe(ev) is the line's text and
  // whether it is a warning: { text, warn }.
  addServerEvents(events, firstId, describe) {
    if (!Array.isArray(events) || !events.length) return;
    const before = firstId ? String(BigInt(firstId) - 1n).padStart(firstId.length, '0') : '';
    const have = new Set(this.events.map((e) => e.key));
    for (const ev of events) {
      if (!ev || typeof ev.type !== 'string') continue;
      const afterId = ev.after || before;
      const key = `s:${ev.type}:${ev.at}:${ev.userId || ''}`;
      if (have.has(key)) continue;
      const line = describe(ev);
      if (!line?.text) continue;
      const i = this.events.findIndex((e) => e.live && e.type === ev.type && e.userId === (ev.userId || '') && e.afterId === afterId);
      if (i >= 0) this.events.splice(i, 1);
      have.add(key);
      this.events.push({ key, afterId, text: line.text, timestamp: ev.at || new Date().toISOString(), warn: !!line.warn,
        type: ev.type, userId: ev.userId || '', live: false });
    }
    // In place of the messages they follow; events of one place in time order.
    this.events.sort((a, b) => (a.afterId < b.afterId ? -1 : a.afterId > b.afterId ? 1 : a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0));
    while (this.events.length > MAX_EVENTS) this.events.shift();
  }
}
