// Read state: the server keeps each user's read marker per room and
// direct conversation (PROTOCOL.md, "Read state"), and the unread and
// mention counts at sign-in come from it, so every device shows the same
// badges. The page moves the marker (read) when the newest message of the
// open conversation is on screen, at most once per READ_EVERY_MS, and
// follows the markers the user's other devices move (readUpdated).
// Methods of App (app.js).

import { dmKey, roomKey } from './conversation.js';

// READ_EVERY_MS throttles read frames per conversation while messages
// keep arriving in front of the reader.
const READ_EVERY_MS = 1000;

export const readMethods = {
  // setReadState takes the server's word on a conversation's marker and
  // counts.
  setReadState(conv, lastRead, unread, mentions) {
    conv.lastRead = lastRead || '';
    conv.readSent = conv.lastRead; // the server has it: no need to say it again
    conv.unread = unread;
    conv.mentions = mentions;
  },

  // seesNewest: the user is looking at the newest message of conv.
  seesNewest(conv) {
    return this.isVisible(conv) && this.timeline.atNewest();
  },

  // countLive counts messages that just arrived in conv. seen: the
  // reader was looking at the newest message when they came.
  countLive(conv, added, seen) {
    for (const m of added) {
      if (m.senderId === this.me.userId) {
        // Sending reads the conversation up to one's own message.
        if (m.id > conv.lastRead) conv.lastRead = conv.readSent = m.id;
        conv.unread = 0;
        conv.mentions = 0;
      } else if (!seen && !m.deleted) {
        conv.unread++;
        if (this.mentionsMe(m)) conv.mentions++;
      }
    }
  },

  // markRead records that the open conversation has been seen up to its
  // newest message, if the reader is looking at it.
  markRead() {
    const conv = this.currentConv();
    if (!conv || !this.me || !conv.loaded || document.visibilityState !== 'visible' || !this.timeline.atNewest()) return;
    const newest = conv.newestId();
    if (newest > conv.lastRead) {
      conv.lastRead = newest;
      this.queueRead(conv);
    }
    if (conv.unread || conv.mentions) {
      conv.unread = 0;
      conv.mentions = 0;
      this.renderSidebar();
      this.renderTitle();
    }
  },

  queueRead(conv) {
    if (this.readTimers.has(conv.key)) return; // the scheduled one sends the newest
    const wait = READ_EVERY_MS - (Date.now() - (conv.readSentAt || 0));
    const send = () => {
      this.readTimers.delete(conv.key);
      this.sendRead(conv);
    };
    if (wait <= 0) send();
    else this.readTimers.set(conv.key, setTimeout(send, wait));
  },

  sendRead(conv) {
    if (!this.authed || !conv.lastRead || conv.lastRead <= (conv.readSent || '') || !this.convs.has(conv.key)) return;
    const data = conv.isRoom ? { roomId: conv.id } : { withUserId: conv.id };
    data.messageId = conv.lastRead;
    if (this.send('read', data)) {
      conv.readSent = conv.lastRead;
      conv.readSentAt = Date.now();
    }
  },

  // onReadUpdated: another device of the user read further.
  onReadUpdated(d) {
    const conv = this.convs.get(d.roomId ? roomKey(d.roomId) : dmKey(d.withUserId));
    if (!conv || !d.messageId || d.messageId <= conv.lastRead) return;
    conv.lastRead = d.messageId;
    if (d.messageId > (conv.readSent || '')) conv.readSent = d.messageId;
    const c = conv.countAfter(d.messageId, this.me.userId);
    if (conv.loaded && c.known) {
      conv.unread = c.unread;
      conv.mentions = c.mentions;
    } else if (!conv.loaded) {
      // Nothing here to count with: the other device most likely read to
      // the end (the next sign-in has the exact counts).
      conv.unread = 0;
      conv.mentions = 0;
    }
    this.renderSidebar();
    this.renderTitle();
  },
};
