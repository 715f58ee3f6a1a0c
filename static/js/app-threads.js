// Replies, threads, and jumping to a message: the quote above the
// composer, the thread panel (thread frame, kept up to date by live
// messages and events), and showing a message that may not be loaded
// (history {around}), from a quote or a search result. Methods of App
// (app.js).

import { byId } from './dom.js';

// AROUND_LIMIT is the size of the page fetched around a message jumped to.
const AROUND_LIMIT = 50;
// QUOTE_CHARS: the server cuts a reply's quote of its parent to this.
export const QUOTE_CHARS = 200;

// target names a conversation in frames about its messages.
export const target = (conv) => (conv.isRoom ? { roomId: conv.id } : { withUserId: conv.id });

export const threadMethods = {
  // --- replies ---

  // quoteOf is what a reply shows of its parent until the server's copy
  // arrives.
  quoteOf(conv, id) {
    const m = this.findMessage(conv, id);
    return { id, senderId: m?.senderId || '', senderName: m?.senderName || '', content: (m?.content || '').slice(0, QUOTE_CHARS) };
  },

  startReply(conv, id) {
    const m = this.findMessage(conv, id);
    if (!m || m.deleted || conv.key !== this.current) return;
    this.replies.set(conv.key, this.quoteOf(conv, id));
    this.renderComposerState();
    this.composer.focus();
  },

  clearReply() {
    if (!this.replies.delete(this.current)) return;
    this.renderComposerState();
  },

  // --- threads ---

  openThread(conv, id) {
    if (conv.key !== this.current) return;
    if (!(this.thread?.key === conv.key && this.thread.id === id)) {
      this.closeThread(false);
      this.thread = { key: conv.key, id, parent: this.findMessage(conv, id), replies: [], loading: true, error: '', justOpened: true };
      this.threadComposer.switchTo(`${conv.key}/${id}`, 'Reply in the thread…'); // a draft per thread
      this.requestThread();
    }
    this.shell.openPanel(this.els.thread);
    this.renderThread();
    if (this.shell.narrow) byId('thread-close').focus();
    else this.threadComposer.focus();
  },

  requestThread() {
    const t = this.thread;
    const conv = t && this.convs.get(t.key);
    if (!conv) return;
    if (!this.authed || !this.send('thread', { ...target(conv), messageId: t.id })) {
      t.loading = false;
      t.error = 'You are not connected; the thread loads when you are back.';
    }
  },

  // resumeThread asks for the open thread again after a reconnect.
  resumeThread() {
    if (!this.thread) return;
    this.thread.loading = true;
    this.thread.error = '';
    this.requestThread();
    this.renderThread();
  },

  onThread(d) {
    if (this.dispatch('thread', d).key) this.renderThread();
  },

  renderThread() {
    const t = this.thread;
    if (!t) return;
    const conv = this.convs.get(t.key);
    if (!conv) return this.closeThread(false);
    const pending = conv.pending.filter((p) => p.replyTo?.id === t.id);
    this.threadPanel.render(t, conv, pending, this.messageContext(conv, 'thread'));
  },

  closeThread(refocus) {
    if (!this.thread) return;
    const { key, id } = this.thread;
    this.thread = null;
    if (this.editing?.where === 'thread') this.editing = null;
    this.threadPanel.clear();
    this.shell.closePanel(this.els.thread);
    if (!refocus) return;
    const row = key === this.current && this.timeline.row(id);
    (row || byId('composer-input')).focus({ preventScroll: true });
  },

  sendThreadReply(text) {
    const t = this.thread;
    if (!t || t.key !== this.current) return false;
    return this.sendMessage(text, { replyTo: t.id });
  },

  // --- jumps ---

  // jumpTo shows a message of conv: scrolled to and highlighted if it is
  // loaded, else after fetching the history around it.
  jumpTo(conv, id) {
    if (conv.key !== this.current) this.open(conv.key, { focus: false });
    if (this.timeline.reveal(id)) return;
    if (!this.authed) {
      this.shell.toast('You are not connected; try again in a moment.', 'error');
      return;
    }
    this.revealing = { key: conv.key, id };
    if (this.send('history', { ...target(conv), around: id, limit: AROUND_LIMIT })) {
      this.historyQueue.push({ key: conv.key, mode: 'around', target: id });
    }
  },

  // afterAround: the page around a message arrived (or failed: error).
  afterAround(conv, id, error) {
    if (this.revealing?.key !== conv.key || this.revealing.id !== id) return;
    this.revealing = null;
    if (error) {
      this.shell.toast(`That message could not be shown: ${error}`, 'error');
      return;
    }
    if (conv.key === this.current && !this.timeline.reveal(id)) {
      this.shell.toast('That message is no longer in the history.');
    }
  },

  // jumpToLatest leaves a stretch of older history for the newest page.
  jumpToLatest(conv) {
    if (!conv) return;
    conv.reset();
    conv.loaded = false;
    conv.hasMore = false;
    if (conv.key === this.current) this.timeline.show(conv, this.me);
    if (this.authed) this.fetchNewest(conv);
    else conv.resumeFrom = '';
  },
};
