// Conversation holds one room's or one direct conversation's messages:
// confirmed messages from the server, deduplicated by id and kept in id
// order, and the user's own messages still waiting for their
// acknowledgement (or failed).

// Message ids are 12-digit zero-padded decimals, so they sort as strings.
export const MAX_ID = '999999999999';

export const roomKey = (roomId) => `room:${roomId}`;
export const dmKey = (userId) => `dm:${userId}`;

export class Conversation {
  constructor(kind, id, name) {
    this.kind = kind; // 'room' or 'dm'
    this.id = id; // roomId, or the peer's userId
    this.name = name; // room id, or the peer's username
    this.key = kind === 'room' ? roomKey(id) : dmKey(id);
    this.messages = []; // confirmed, ascending id
    this.byId = new Map();
    this.pending = []; // own: { clientMsgId, content, timestamp, status: 'sending'|'failed', error }
    this.hasMore = false; // older messages can be fetched
    this.loaded = false; // a page of history has arrived at least once
    this.loadingOlder = false;
    this.unread = 0;
    this.lastActivity = '';
    // Rooms only.
    this.members = new Map(); // userId -> { userId, username, online }
    this.membersLoaded = false; // members came with a joined frame on this connection
    this.joining = false; // a join is unanswered
    this.syncing = false; // a newest-page history request is queued or unanswered
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

  get title() {
    return this.isRoom ? `#${this.name}` : this.name;
  }

  newestId() {
    return this.messages.at(-1)?.id || '';
  }

  oldestId() {
    return this.messages[0]?.id || '';
  }

  // add inserts a confirmed message; false when it was already there.
  add(msg) {
    if (this.byId.has(msg.id)) return false;
    this.byId.set(msg.id, msg);
    let i = this.messages.length;
    while (i > 0 && this.messages[i - 1].id > msg.id) i--;
    this.messages.splice(i, 0, msg);
    if (msg.timestamp > this.lastActivity) this.lastActivity = msg.timestamp;
    return true;
  }

  // preparePage readies the conversation for a history page (oldest
  // first); the caller then adds its messages. newest says the page is the
  // conversation's newest (no "before"): after a reconnect it may not reach
  // back to what we had, and then the messages before it are dropped, so
  // the timeline never shows a silent gap ("load older" fills it).
  preparePage(msgs, hasMore, newest) {
    if (!newest) {
      this.hasMore = hasMore;
      return;
    }
    if (this.resumeFrom && hasMore && msgs.length && msgs[0].id > this.resumeFrom) {
      const first = msgs[0].id;
      this.messages = this.messages.filter((m) => m.id >= first);
      this.byId = new Map(this.messages.map((m) => [m.id, m]));
      this.hasMore = true;
    } else if (!this.loaded || !hasMore) {
      this.hasMore = hasMore;
    }
    this.resumeFrom = '';
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

  // unreadSince counts others' messages newer than id.
  unreadSince(id, myId) {
    let n = 0;
    for (let i = this.messages.length - 1; i >= 0 && this.messages[i].id > id; i--) {
      if (this.messages[i].senderId !== myId) n++;
    }
    return n;
  }
}
