// What can be done with a message once it is sent: edit and delete it,
// react to it (replies, threads and jumps are app-threads.js), and
// attaching files to a new one; the composer's state. Events about
// messages (messageEdited, messageDeleted, reaction) are applied to every
// copy the page shows. Methods of App (app.js).

import { target } from './app-threads.js';
import { byId } from './dom.js';
import { snippet } from './format.js';
import { editorView } from './message-view.js';
import { canModerate } from './moderation.js';
import { convOfRef, copiesOf, learnName, nameOf } from './state.js';

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
    learnName(this.state, userId, username);
  },

  nameOf(userId, conv) {
    return nameOf(this.state, userId, conv);
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

  copiesOf(conv, id) {
    return copiesOf(this.state, conv, id);
  },

  convOfRef(d) {
    return convOfRef(this.state, d);
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
    const conv = this.convs.get(this.dispatch('messageEdited', d).key);
    if (!conv) return;
    const i = this.editsInFlight.findIndex((e) => e.key === conv.key && e.id === d.id);
    if (i >= 0) this.editsInFlight.splice(i, 1);
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
    const conv = this.convs.get(this.dispatch('messageDeleted', d).key);
    if (!conv) return;
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
    const conv = this.convs.get(this.dispatch('reaction', d).key);
    if (conv) this.renderMessageViews(conv);
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
