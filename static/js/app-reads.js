// Read state: the server keeps each user's read marker per room and
// direct conversation (PROTOCOL.md, "Read state"), and the unread and
// mention counts at sign-in come from it, so every device shows the same
// badges. The page moves the marker (read) when the newest message of the
// open conversation is on screen, at most once per READ_EVERY_MS, and
// follows the markers the user's other devices move (readUpdated).
// Methods of App (app.js).

// READ_EVERY_MS throttles read frames per conversation while messages
// keep arriving in front of the reader.
const READ_EVERY_MS = 1000;

export const readMethods = {
  // seesNewest: the user is looking at the newest message of conv.
  seesNewest(conv) {
    return this.isVisible(conv) && this.timeline.atNewest();
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
    if (!this.dispatch('readUpdated', d).key) return;
    this.renderSidebar();
    this.renderTitle();
  },
};
