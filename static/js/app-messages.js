// What can be done with a message once it is sent: edit and delete it,
// react to it (replies, threads and jumps are app-threads.js), and
// attaching files to a new one; the composer's state. Events about
// messages (messageEdited, messageDeleted, reaction) are applied to every
// copy the page shows. Methods of App (app.js).

import { QUOTE_CHARS, target } from './app-threads.js';
import { dmKey, roomKey } from './conversation.js';
import { byId } from './dom.js';
import { snippet } from './format.js';
import { editorView } from './message-view.js';
import { canModerate } from './moderation.js';

export const messageMethods = {
  initMessages() {
    this.editing = null; // { key, id, where: 'timeline'|'thread', draft }
    this.editsInFlight = []; // { key, id } per unanswered edit, in order
    this.replies = new Map(); // conversation key -> the quote of the message being replied to
    this.thread = null; // { key, id, parent, replies, loading, error, justOpened }
    this.revealing = null; // { key, id }: a jump waiting for its page

    byId('reply-cancel').addEventListener('click', () => {
      this.clearReply();
      this.composer.focus();
    });
    byId('thread-close').addEventListener('click', () => this.closeThread(true));
    const input = byId('attach-input');
    byId('attach').addEventListener('click', () => input.click());
    input.addEventListener('change', () => {
      this.attachFiles([...input.files]);
      input.value = '';
    });
    this.wireDrop();
  },

  resetMessageState() {
    this.editing = null;
    this.editsInFlight = [];
    this.replies.clear();
    this.revealing = null;
    this.closeThread(false);
    this.picker.close(false);
    this.menu.close(false);
    this.renderComposerState();
  },

  // leaveConversation lets go of what belonged to the conversation the
  // user is leaving for another.
  leaveConversation(conv) {
    if (this.editing?.key === conv.key) this.editing = null;
    if (this.thread?.key === conv.key) this.closeThread(false);
    if (this.revealing?.key === conv.key) this.revealing = null;
    this.picker.close(false);
  },

  learnName(userId, username) {
    if (userId && username) this.names.set(userId, username);
  },

  nameOf(userId, conv) {
    if (userId === this.me?.userId) return this.me.username;
    return conv?.members.get(userId)?.username || this.names.get(userId) || this.online.get(userId) ||
      this.convs.get(dmKey(userId))?.name || 'someone';
  },

  // mentionCandidates: whom "@" can name in the open conversation.
  mentionCandidates() {
    const conv = this.currentConv();
    if (!conv) return [];
    if (!conv.isRoom) return [conv.name];
    return [...conv.members.values()].filter((m) => m.userId !== this.me.userId).map((m) => m.username)
      .sort((a, b) => a.localeCompare(b, undefined, { sensitivity: 'base' }));
  },

  // findMessage finds a message of conv, in the timeline or the thread.
  findMessage(conv, id) {
    return [...this.copiesOf(conv, id)][0] || null;
  },

  // copiesOf returns every object the page holds for a message: the
  // timeline's, and the thread panel's when it has its own.
  copiesOf(conv, id) {
    const out = new Set();
    const m = conv.byId.get(id);
    if (m) out.add(m);
    const t = this.thread;
    if (t && t.key === conv.key) {
      if (t.parent?.id === id) out.add(t.parent);
      for (const r of t.replies) if (r.id === id) out.add(r);
    }
    return out;
  },

  // quotesOf returns the replies that quote a message.
  quotesOf(conv, id) {
    const out = new Set(conv.messages.filter((m) => m.replyTo?.id === id));
    if (this.thread?.key === conv.key) for (const r of this.thread.replies) if (r.replyTo?.id === id) out.add(r);
    return out;
  },

  // convOfRef finds the conversation an event names: roomId, or the two
  // parties of a direct conversation.
  convOfRef(d) {
    if (d.roomId) return this.convs.get(roomKey(d.roomId)) || null;
    const peer = d.senderId === this.me.userId ? d.targetUserId : d.senderId;
    return this.convs.get(dmKey(peer)) || null;
  },

  renderMessageViews(conv) {
    if (conv.key !== this.current) return;
    this.timeline.update();
    this.renderThread();
  },

  messageContext(conv, where) {
    const editing = this.editing && this.editing.key === conv.key && this.editing.where === where ? this.editing : null;
    return {
      me: this.me,
      showReplies: where === 'timeline',
      hideQuote: where === 'thread' ? this.thread?.id : null,
      editingId: editing?.id || null,
      mentionsMe: (m) => this.mentionsMe(m),
      nameOf: (id) => this.nameOf(id, conv),
      onQuote: (m) => this.jumpTo(conv, m.replyTo.id),
      onThread: (m) => this.openThread(conv, m.id),
      onToggleReaction: (m, emoji) => this.react(conv, m.id, emoji),
      onAddReaction: (m, button) => this.pickReaction(conv, m.id, button, button),
      onRetry: (clientMsgId) => this.retry(clientMsgId),
      onDiscard: (clientMsgId) => this.discard(clientMsgId),
      editor: (m) => editorView(this.editing.draft, {
        onInput: (text) => {
          if (this.editing) this.editing.draft = text;
        },
        onSave: (text) => this.saveEdit(conv, m.id, text),
        onCancel: () => this.cancelEdit(true),
      }),
    };
  },

  // messageActions: what the user may do with a message (message-tools.js).
  messageActions(conv, id, where) {
    const m = conv && this.findMessage(conv, id);
    if (!m || m.deleted || this.editing?.id === id) return null;
    const mine = m.senderId === this.me.userId;
    return {
      react: (button, li) => this.pickReaction(conv, id, button, li),
      reply: where === 'timeline' ? () => this.startReply(conv, id) : () => this.threadComposer.focus(),
      thread: where === 'timeline' ? () => this.openThread(conv, id) : null,
      edit: mine && !this.isMuted(conv) ? () => this.startEdit(conv, id, where) : null,
      delete: mine || canModerate(conv, this.me) ? () => this.confirmDelete(conv, id) : null,
    };
  },

  // composerKey: the mention list first, then Escape drops the reply
  // being written, and Up in an empty composer edits one's last message.
  composerKey(e) {
    if (this.mentionPicker.onKeyDown(e)) return true;
    if (e.key === 'Escape' && this.replies.has(this.current)) {
      e.preventDefault();
      this.clearReply();
      return true;
    }
    if (e.key === 'ArrowUp' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && !this.composer.input.value) {
      const conv = this.currentConv();
      const m = conv && [...conv.messages].reverse().find((x) => x.senderId === this.me.userId && !x.deleted);
      if (m && !this.isMuted(conv)) {
        e.preventDefault();
        this.startEdit(conv, m.id, 'timeline', true);
        return true;
      }
    }
    return false;
  },

  // --- edit ---

  // startEdit opens the inline editor; fromComposer: Up in the composer
  // did, and Enter or Escape go back there.
  startEdit(conv, id, where, fromComposer = false) {
    const m = this.findMessage(conv, id);
    if (!m || m.deleted || m.senderId !== this.me.userId) return;
    this.editing = { key: conv.key, id, where, draft: m.content, fromComposer };
    this.renderMessageViews(conv);
    this.timeline.flush();
    const list = where === 'thread' ? byId('thread-messages') : byId('messages');
    const input = list.querySelector(`.msg[data-id="${id}"] .msg-edit-input`);
    if (!input) return;
    input.focus({ preventScroll: true });
    input.setSelectionRange(input.value.length, input.value.length);
    input.closest('.msg').scrollIntoView({ block: 'nearest' });
  },

  cancelEdit(refocus) {
    const e = this.editing;
    if (!e) return;
    this.editing = null;
    const conv = this.convs.get(e.key);
    if (!conv) return;
    this.renderMessageViews(conv);
    this.timeline.flush();
    if (!refocus) return;
    if (e.fromComposer) return this.composer.focus();
    const list = e.where === 'thread' ? byId('thread-messages') : byId('messages');
    const row = list.querySelector(`.msg[data-id="${e.id}"]`);
    if (row) row.focus({ preventScroll: true });
    else this.composer.focus();
  },

  saveEdit(conv, id, text) {
    const m = this.findMessage(conv, id);
    const content = text.replace(/^\s*\n/, '').trimEnd();
    if (!m || m.deleted) return this.cancelEdit(true);
    if (!content.trim()) {
      this.cancelEdit(false);
      this.confirmDelete(conv, id);
      return;
    }
    if (content === m.content) return this.cancelEdit(true);
    if (!this.authed || !this.send('edit', { ...target(conv), messageId: id, content })) {
      this.shell.toast('You are not connected; your edit is still here to save.', 'error');
      return;
    }
    // Shown at once; taken back if the server refuses it.
    for (const c of this.copiesOf(conv, id)) {
      c.editRevert ??= { content: c.content, editedAt: c.editedAt };
      c.content = content;
      c.editedAt = new Date().toISOString();
      c.editPending = true;
    }
    this.editsInFlight.push({ key: conv.key, id });
    this.cancelEdit(true);
  },

  onMessageEdited(d) {
    const conv = this.convOfRef(d);
    if (!conv) return;
    const i = this.editsInFlight.findIndex((e) => e.key === conv.key && e.id === d.id);
    if (i >= 0) this.editsInFlight.splice(i, 1);
    for (const m of this.copiesOf(conv, d.id)) {
      m.content = d.content;
      m.mentions = d.mentions || []; // recomputed by the server from the new text
      m.editedAt = d.editedAt;
      m.editPending = false;
      delete m.editRevert;
    }
    for (const m of this.quotesOf(conv, d.id)) m.replyTo = { ...m.replyTo, content: d.content.slice(0, QUOTE_CHARS) };
    this.renderMessageViews(conv);
  },

  // --- delete ---

  async confirmDelete(conv, id) {
    const m = this.findMessage(conv, id);
    if (!m || m.deleted) return;
    const mine = m.senderId === this.me.userId;
    const files = m.files?.length ? ` and ${m.files.length === 1 ? 'its file' : `its ${m.files.length} files`}` : '';
    const returnTo = document.activeElement;
    const ok = await this.shell.confirm({
      title: 'Delete message',
      text: mine
        ? `Delete this message${files} for everyone? This cannot be undone.`
        : `Delete ${m.senderName}'s message${files} for everyone? This cannot be undone.`,
      preview: m.content || (m.files || []).map((f) => f.name).join(', '),
      ok: 'Delete',
    });
    if (!ok) {
      if (returnTo?.isConnected) returnTo.focus({ preventScroll: true });
      return;
    }
    if (!this.authed || !this.send('delete', { ...target(conv), messageId: id })) {
      this.shell.toast('You are not connected; the message was not deleted.', 'error');
    }
    const row = this.timeline.row(id);
    (row || byId('composer-input')).focus({ preventScroll: true });
  },

  onMessageDeleted(d) {
    const conv = this.convOfRef(d);
    if (!conv) return;
    let counted = false;
    for (const m of this.copiesOf(conv, d.id)) {
      if (!counted && !m.deleted && m.id > conv.lastRead && m.senderId !== this.me.userId && conv.unread > 0) {
        conv.unread--;
        if (this.mentionsMe(m)) conv.mentions = Math.max(0, conv.mentions - 1);
        counted = true;
      }
      Object.assign(m, { deleted: true, content: '', files: [], reactions: [], mentions: [], editedAt: '', editPending: false });
    }
    for (const m of this.quotesOf(conv, d.id)) m.replyTo = { ...m.replyTo, deleted: true, content: '' };
    if (this.editing?.key === conv.key && this.editing.id === d.id) this.editing = null;
    if (this.replies.get(conv.key)?.id === d.id) {
      this.replies.delete(conv.key);
      this.renderComposerState();
    }
    this.renderMessageViews(conv);
    this.renderSidebar();
    this.renderTitle();
  },

  // --- reactions ---

  react(conv, id, emoji) {
    if (!this.authed || !this.send('react', { ...target(conv), messageId: id, emoji })) {
      this.shell.toast('You are not connected; try again in a moment.', 'error');
    }
  },

  pickReaction(conv, id, anchor, returnTo) {
    this.picker.open(anchor, (emoji) => this.react(conv, id, emoji), returnTo);
  },

  onReaction(d) {
    const conv = this.convOfRef(d);
    if (!conv) return;
    this.learnName(d.userId, d.username);
    for (const m of this.copiesOf(conv, d.id)) {
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
    this.renderMessageViews(conv);
  },

  // --- files ---

  attachFiles(files) {
    const conv = this.currentConv();
    if (!conv || !files.length) return;
    if (this.isMuted(conv)) {
      this.shell.toast('You are muted in this room.', 'error');
      return;
    }
    const problem = this.attachments.add(files);
    if (problem) this.shell.toast(problem, 'error');
    this.composer.focus();
  },

  // wireDrop lets files be dropped on the conversation, and keeps a file
  // dropped anywhere else from replacing the page.
  wireDrop() {
    const area = document.querySelector('.conv-main');
    const overlay = byId('drop-overlay');
    const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
    let depth = 0;
    const hide = () => {
      depth = 0;
      overlay.hidden = true;
    };
    area.addEventListener('dragenter', (e) => {
      const conv = this.currentConv();
      if (!hasFiles(e) || !conv || this.isMuted(conv)) return;
      e.preventDefault();
      depth++;
      byId('drop-text').textContent = `Drop files to send them to ${conv.title}`;
      overlay.hidden = false;
    });
    area.addEventListener('dragover', (e) => {
      if (!hasFiles(e) || overlay.hidden) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
    });
    area.addEventListener('dragleave', () => {
      depth = Math.max(0, depth - 1);
      if (!depth) hide();
    });
    area.addEventListener('drop', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      const wanted = !overlay.hidden;
      hide();
      if (wanted) this.attachFiles([...e.dataTransfer.files]);
    });
    for (const type of ['dragover', 'drop']) {
      window.addEventListener(type, (e) => {
        if (hasFiles(e)) e.preventDefault();
      });
    }
  },

  // messageRequestsLost: the socket closed with edits unanswered. Whether
  // they were saved shows in the pages fetched after reconnecting.
  messageRequestsLost() {
    for (const e of this.editsInFlight) {
      const conv = this.convs.get(e.key);
      if (!conv) continue;
      for (const m of this.copiesOf(conv, e.id)) {
        delete m.editRevert;
        m.editPending = false;
      }
    }
    this.editsInFlight = [];
  },

  // onMessageError handles errors of the frames above; false for others.
  onMessageError(d) {
    switch (d.type) {
      case 'edit': {
        const e = this.editsInFlight.shift();
        const conv = e && this.convs.get(e.key);
        if (conv) {
          for (const m of this.copiesOf(conv, e.id)) {
            if (!m.editRevert) continue;
            Object.assign(m, m.editRevert, { editPending: false });
            delete m.editRevert;
          }
          this.renderMessageViews(conv);
        }
        this.shell.toast(`Your edit was not saved: ${d.message || d.code}`, 'error');
        return true;
      }
      case 'delete':
        this.shell.toast(`The message was not deleted: ${d.message || d.code}`, 'error');
        return true;
      case 'react':
        this.shell.toast(d.code === 'limit_reached' ? d.message : `The reaction was not saved: ${d.message || d.code}`, 'error');
        return true;
      case 'thread':
        if (this.thread) {
          this.thread.loading = false;
          this.thread.error = d.code === 'not_found' ? 'This message is no longer in the history.' : d.message || d.code;
          this.renderThread();
        }
        return true;
      case 'search':
        this.onSearchError(d);
        return true;
      default:
        return false;
    }
  },

  // renderComposerState shows the reply being written, and turns the
  // composer off where the user is muted.
  renderComposerState() {
    const { replyBar, replyLabel, replyQuote, composerNotice } = this.els;
    const conv = this.currentConv();
    const reply = conv && this.replies.get(conv.key);
    replyBar.hidden = !reply;
    if (reply) {
      replyLabel.textContent = `Replying to ${reply.senderName}`;
      replyQuote.textContent = snippet(reply.content || 'a file', 90);
    }
    const muted = !!conv && this.isMuted(conv);
    this.composer.setDisabled(muted, muted ? 'You cannot send messages here while muted' : conv ? `Message ${conv.title}` : '');
    byId('attach').disabled = muted;
    const notice = this.muteNotice(conv);
    composerNotice.hidden = !notice;
    composerNotice.textContent = notice;
  },
};
